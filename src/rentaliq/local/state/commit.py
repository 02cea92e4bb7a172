"""Commit: write a snapshot's files, then replace the manifest (the commit point), then delete the old files.

A commit writes new files under a new generation number, then atomically replaces
``manifest.json``, then deletes the files the new manifest no longer names.  A crash at any point
leaves the old or the new manifest, each naming complete files, so a commit covering several
services (CloudFormation creating a bucket, a role and a VPC) is atomic; orphans are removed at
the next start-up.

Test-only fault injection: with ``RENTALIQ_LOCAL_CRASH_AT=<phase>`` in its environment the server
kills itself (``SIGKILL``, as ``kill -9``) at that phase of the first commit that writes a service
file of a service whose key contains ``RENTALIQ_LOCAL_CRASH_SERVICE`` (default: any):
``files-written`` (new files on disk, manifest not replaced) or ``manifest-replaced`` (new manifest,
old files not deleted).  Unset (always, outside tests) it costs one dictionary lookup per commit.
The alarm evaluator has one more phase, ``alarm-actions``: a state change committed, its actions not yet run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rentaliq.local.state.layout import FORMAT_VERSION, atomic_write, fsync_dir, safe_name, write_manifest
from rentaliq.local.state.snapshot import ServiceWrite

if TYPE_CHECKING:
    from rentaliq.local.state.core import Persistence

CRASH_AT_ENV = "RENTALIQ_LOCAL_CRASH_AT"
CRASH_SERVICE_ENV = "RENTALIQ_LOCAL_CRASH_SERVICE"
CRASH_PHASES = ("files-written", "manifest-replaced")


@dataclass
class CommitStats:
    commits: int = 0
    services_written: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    last_ms: float = 0.0
    last_services: list[str] = field(default_factory=list)
    failures: int = 0
    files_written: int = 0
    last_files: int = 0
    lock_wait_seconds: float = 0.0


def _crash_point(phase: str, services: list[str]) -> None:
    """The test-only fault-injection point (see the module docstring)."""
    if os.environ.get(CRASH_AT_ENV) != phase:
        return
    want = os.environ.get(CRASH_SERVICE_ENV, "")
    if any(want in s for s in services):
        os.kill(os.getpid(), signal.SIGKILL)


def write_files(p: Persistence, writes: dict[str, ServiceWrite], removed: list[str], t0: float) -> None:
    """Write the new generation, replace the manifest, delete what it no longer names."""
    gen = p.manifest["generation"] + 1
    services = dict(p.manifest["services"])
    old_files: list[str] = []
    new_refs: dict[str, set[str]] = {}
    nbytes = nfiles = 0

    def write(fname: str, header: dict[str, Any], data: bytes) -> dict[str, Any]:
        nonlocal nbytes, nfiles
        hdr = json.dumps({**header, "generation": gen}, separators=(",", ":")).encode() + b"\n"
        atomic_write(p.services_dir / fname, (hdr, data), fsync=p.fsync)
        new_refs[fname] = set(header["blobs"])
        nbytes += len(hdr) + len(data)
        nfiles += 1
        return {"file": fname, "deps": header["deps"], "size": len(data)}

    for key, w in writes.items():
        safe = safe_name(key)
        old = services.get(key, {})
        fname = f"{safe}.{gen}.pkl"
        write(fname, w.header, w.main)
        shards = dict(w.kept)
        for e in w.entries:
            if e.data is not None and e.header is not None:
                efile = f"{safe}~{e.sid}.{gen}.pkl"
                write(efile, e.header, e.data)
                edeps = set(e.header["deps"])
            else:
                prev = e.prev or {}
                efile, edeps = prev["file"], set(prev["entry_deps"])
            pages = dict(e.kept_pages)
            for pid, pdata, pheader in e.pages:
                pages[pid] = write(f"{safe}~{e.sid}~{pid.replace('/', '_')}.{gen}.pkl", pheader, pdata)
            deps = edeps.union(*(set(pg["deps"]) for pg in pages.values()))
            shards[e.sid] = {"file": efile, "loc": list(e.loc), "deps": sorted(deps), "entry_deps": sorted(edeps), "pages": pages}
        if old:
            old_files.append(old["file"])
            for sid, oe in old.get("shards", {}).items():
                ne = shards.get(sid)
                if ne is oe:
                    continue
                if ne is None or ne["file"] != oe["file"]:
                    old_files.append(oe["file"])
                for pid, op in oe.get("pages", {}).items():
                    np_ = (ne or {}).get("pages", {}).get(pid)
                    if np_ is None or np_["file"] != op["file"]:
                        old_files.append(op["file"])
        bpages: dict[str, dict[str, Any]] = {}
        for (acct, region), (written, kept_pages) in w.bpages.items():
            pages = dict(kept_pages)
            for pid, pdata, pheader in written:
                pfile = f"{safe}~{safe_name(acct)}~{safe_name(region)}~{pid.replace('/', '_')}.{gen}.pkl"
                pages[pid] = write(pfile, pheader, pdata)
            if pages:
                bpages[f"{acct}|{region}"] = pages
        for bkey, opages in old.get("bpages", {}).items():
            npages = bpages.get(bkey, {})
            old_files += [op["file"] for pid, op in opages.items() if pid not in npages or npages[pid]["file"] != op["file"]]
        deps = set(w.header["deps"]).union(*(set(e["deps"]) for e in shards.values()))
        deps = deps.union(*(set(pg["deps"]) for pages in bpages.values() for pg in pages.values()))
        services[key] = {"file": fname, "deps": sorted(deps - {key}), "size": len(w.main), "shards": shards, "bpages": bpages}
    for key in removed:
        entry = services.pop(key)
        old_files.append(entry["file"])
        for e in entry.get("shards", {}).values():
            old_files.append(e["file"])
            old_files.extend(pg["file"] for pg in e.get("pages", {}).values())
        for pages in entry.get("bpages", {}).values():
            old_files.extend(pg["file"] for pg in pages.values())
    if p.fsync and nfiles:
        fsync_dir(p.services_dir)
    _crash_point("files-written", list(writes))
    manifest = {"format": FORMAT_VERSION, "generation": gen, "services": services, "written": time.time()}
    write_manifest(p.state_dir, manifest, fsync=p.fsync)
    _crash_point("manifest-replaced", list(writes))
    # committed: now update the in-memory view and drop the previous generation's files
    p.manifest = manifest
    p.blob_refs.update(new_refs)
    for key, w in writes.items():
        for e in w.entries:
            p.identity[(key, *e.loc)] = id(e.obj)
        for (acct, region), ident in w.backend_ids.items():
            p.identity[(key, acct, region)] = ident
    for f in old_files:
        p.blob_refs.pop(f, None)
        with contextlib.suppress(OSError):
            (p.services_dir / f).unlink()
    live = {(k, *tuple(e["loc"])) for k, v in services.items() for e in v.get("shards", {}).values()}
    live |= {(k, *tuple(b.split("|", 1))) for k, v in services.items() for b in v.get("bpages", {})}
    live |= {(k, a, r) for k, w in writes.items() for (a, r) in w.backend_ids}
    for ident in [i for i in p.identity if i not in live]:
        del p.identity[ident]
    dt = time.perf_counter() - t0
    st = p.stats
    st.commits += 1
    st.services_written += len(writes)
    st.files_written += nfiles
    st.bytes_written += nbytes
    st.seconds += dt
    st.last_ms = round(dt * 1000, 2)
    st.last_files = nfiles
    st.last_services = sorted(writes) + [f"-{k}" for k in removed]
