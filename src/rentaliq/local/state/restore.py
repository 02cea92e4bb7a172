"""Restore: load the last committed snapshot into moto's backends, in dependency order, and clean up.

Placeholders for referenced backends are made with ``cls.__new__`` and filled when that service's
file loads, so load order does not matter for them; model references follow a path inside a
service loaded before (the manifest's ``deps``).  After loading, files and blobs no manifest names
(a crash between writing and committing, or before garbage collection) are removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import time
from typing import TYPE_CHECKING, Any

from rentaliq.local.state import references, tracking
from rentaliq.local.state.layout import PersistenceError, StateFormatError, manifest_files

if TYPE_CHECKING:
    from rentaliq.local.state.core import Persistence

log = logging.getLogger("rentaliq.local.persistence")


class Restorer:
    def __init__(self, owner: Persistence):
        self.owner = owner
        self.placeholders: dict[int, tuple[Any, str, str, Any]] = {}
        self.filled: set[int] = set()
        self.unresolved = 0
        self.shards: dict[tuple[str, ...], Any] = {}
        self.loading: set[tuple[str, ...]] = set()

    def backend(self, key: str, acct: str, region: str) -> Any:
        bd = self.owner.names.by_key(key)
        self.owner.hooks.hook_backend_class(bd.backend)
        asb = bd[acct]  # creates the AccountSpecificBackend (and registers bd) if needed
        if dict.__contains__(asb, region):
            return dict.__getitem__(asb, region)
        obj = bd.backend.__new__(bd.backend)
        dict.__setitem__(asb, region, obj)
        self.placeholders[id(obj)] = (obj, acct, region, bd)
        return obj

    def resolve(self, kind: str, *args: Any) -> Any:
        if kind == "B":
            return self.backend(*args)
        if kind == "A":
            return self.owner.names.by_key(args[0])[args[1]]
        if kind == "D":
            return self.owner.names.by_key(args[0])
        if kind == "S":
            return self.load_shard(args[0], tuple(args[1:]))
        if kind == "M":
            key, acct, region, path, qualname = args
            try:
                obj = references.follow(self.backend(key, acct, region), path)
                if type(obj).__qualname__ != qualname:
                    raise LookupError(f"found {type(obj).__qualname__}")
                return obj
            except Exception as exc:  # noqa: BLE001 - an unresolvable reference is counted and logged, not fatal
                self.unresolved += 1
                log.warning("could not resolve %s object at %s %s %s %s: %s", qualname, key, acct, region, path, exc)
                return None
        raise PersistenceError(f"unknown reference kind {kind!r}")

    def _read(self, fname: str) -> tuple[dict[str, Any], Any]:
        with open(self.owner.services_dir / fname, "rb") as fh:
            header = json.loads(fh.readline())
            payload = pickle.load(fh)
        self.owner.blob_refs[fname] = set(header.get("blobs", ()))
        return header, payload

    def load_shard(self, key: str, loc: tuple[str, ...]) -> Any:
        full = (key, *loc)
        if full in self.shards:
            return self.shards[full]
        if full in self.loading:  # a reference cycle between entries: not produced in practice
            self.unresolved += 1
            log.warning("reference cycle through %s %s; left unresolved", key, loc)
            return None
        entry = self.owner.manifest["services"][key].get("shards", {}).get(tracking.shard_id(loc))  # type: ignore[arg-type]
        if entry is None:
            raise PersistenceError(f"{key}: no file for entry {loc}")
        self.loading.add(full)
        try:
            _header, value = self._read(entry["file"])
            self.shards[full] = value  # before its pages, which may refer back to it
            for attr2, marker in list(vars(value).items()) if hasattr(value, "__dict__") else ():
                if isinstance(marker, tracking.PagedIndex):
                    vars(value)[attr2] = self._load_pages(marker, entry.get("pages", {}), attr2, (key, *loc, attr2))
        finally:
            self.loading.discard(full)
        self.owner.identity[full] = id(value)
        return value

    def _load_pages(self, marker: tracking.PagedIndex, pages: dict[str, Any], attr: str, loc: tuple[str, ...]) -> Any:
        cls = tracking.tracked_class(marker.base)
        store = cls.__new__(cls)
        store._riq_loc = loc
        prefix = f"{attr}/"
        index: dict[str, set[str]] = {}
        for pid in sorted(p for p in pages if p.startswith(prefix)):
            _ph, items = self._read(pages[pid]["file"])
            for k, v in items:
                dict.__setitem__(store, k, v)
            index[pid[len(prefix) :]] = {k for k, _v in items}
        if marker.pages == tracking.PAGE_COUNTS.get(attr, tracking.PAGES):
            store._riq_pages = index  # else: the page count changed, the next commit re-pages it all
        return store

    def load_service(self, key: str) -> None:
        entry = self.owner.manifest["services"][key]
        _header, payload = self._read(entry["file"])
        bd = self.owner.names.by_key(key)
        for (acct, region), state in payload["backends"].items():
            obj = self.backend(key, acct, region)
            d = obj.__dict__
            d.clear()
            d.update(state)
            bpages = entry.get("bpages", {}).get(f"{acct}|{region}", {})
            for attr, value in list(state.items()):
                if isinstance(value, tracking.PagedIndex):
                    d[attr] = self._load_pages(value, bpages, attr, (key, acct, region, attr))
                elif isinstance(value, tracking.ShardIndex):
                    items = [(k, self.load_shard(key, (acct, region, attr, k))) for k in value.keys]
                    d[attr] = tracking.new_tracked_dict(items, (key, acct, region, attr))
            self.filled.add(id(obj))
            self.owner.identity[(key, acct, region)] = id(obj)
        for attr, value in payload.get("extra", {}).items():
            setattr(bd, attr, value)

    def finish(self) -> None:
        for oid, (obj, acct, region, _bd) in self.placeholders.items():
            if oid not in self.filled:
                log.warning("re-initialising %s %s %s (referenced but not persisted)", type(obj).__name__, acct, region)
                obj.__init__(region, acct)


def topo_order(deps: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(k: str) -> None:
        if state.get(k):  # done, or a cycle (not produced by the writer): break it here
            return
        state[k] = 1
        for d in sorted(deps.get(k, ())):
            if d in deps:
                visit(d)
        state[k] = 2
        order.append(k)

    for k in sorted(deps):
        visit(k)
    return order


def restore(p: Persistence) -> dict[str, Any]:
    """Load ``p``'s snapshot into moto's backends; remove orphans. Returns a small report."""
    t0 = time.perf_counter()
    services = p.manifest["services"]
    order = topo_order({k: set(v.get("deps", ())) for k, v in services.items()})
    restorer = Restorer(p)
    references.LOADER = restorer
    try:
        for key in order:
            try:
                restorer.load_service(key)
            except Exception as exc:
                raise StateFormatError(f"cannot restore {key} from {p.services_dir}: {type(exc).__name__}: {exc}") from exc
        restorer.finish()
    finally:
        references.LOADER = None
    cleanup_orphans(p)
    removed, freed = p.blobs.gc(p.referenced_blobs())
    report = {
        "services": len(order),
        "entries": len(restorer.shards),
        "seconds": round(time.perf_counter() - t0, 4),
        "unresolved_refs": restorer.unresolved,
        "blobs_removed": removed,
        "blob_bytes_freed": freed,
    }
    log.info("restored %s", report)
    return report


def cleanup_orphans(p: Persistence) -> None:
    """Remove service files the manifest does not name, and temporary files a crash left."""
    current = manifest_files(p.manifest)
    for f in p.services_dir.iterdir():
        if f.name not in current:
            with contextlib.suppress(OSError):
                f.unlink()
    for f in p.state_dir.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            f.unlink()
    for name in list(p.blob_refs):
        if name not in current:
            del p.blob_refs[name]
