"""Snapshot: decide what a commit writes, and pickle it (in memory; :mod:`commit` writes the files).

A service's file holds its backends (all accounts and regions) minus their sharded collections;
each touched entry of a sharded collection (a bucket) gets its own file, and each touched page of
a paged collection (1/256 of a bucket's keys) its own file.  Untouched entries and pages keep
their previous files.  Services whose models the pickled ones reference are pickled in the same
commit, so every reference resolves.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rentaliq.local.state import tracking
from rentaliq.local.state.codec import Pickler, find_unpicklable
from rentaliq.local.state.layout import PersistenceError
from rentaliq.local.state.references import Session, moto, pkg_of_bd
from rentaliq.local.state.tracking import ALL_KEYS

if TYPE_CHECKING:
    from rentaliq.local.state.core import Persistence

log = logging.getLogger("rentaliq.local.persistence")

ALL = "*"  # sentinel: snapshot every service
# service -> collection location ((acct, region, attr) or (acct, region, attr, entry, attr2)) -> keys
ShardDirty = dict[str, dict[tuple[str, ...], set[str]]]
PageFile = tuple[str, bytes, dict[str, Any]]  # page id, pickle, header


@dataclass
class PagePlan:
    markers: dict[str, Any] = field(default_factory=dict)  # attr -> PagedIndex (in the entry's file)
    writes: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)  # page id -> items
    removed: set[str] = field(default_factory=set)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)
    needs_entry: bool = False


@dataclass
class EntryWrite:
    sid: str
    loc: tuple[str, str, str, str]
    obj: Any
    prev: dict[str, Any] | None  # previous manifest entry (same object), if any
    data: bytes | None  # new entry file, or None to keep prev's
    header: dict[str, Any] | None
    pages: list[PageFile]
    removed_pages: set[str]
    kept_pages: dict[str, dict[str, Any]]


@dataclass
class ServiceWrite:
    main: bytes
    header: dict[str, Any]
    entries: list[EntryWrite]
    kept: dict[str, dict[str, Any]]  # sid -> manifest entry of unchanged entries
    # (acct, region) -> (pages written, pages kept) of the backends' own paged collections
    bpages: dict[tuple[str, str], tuple[list[PageFile], dict[str, dict[str, Any]]]]
    backend_ids: dict[tuple[str, str], int]


def pickle_all(p: Persistence, dirty: set[str] | str, shards: ShardDirty) -> tuple[dict[str, ServiceWrite], list[str], dict[str, str]]:
    """Pickle what changed. A service that cannot be pickled keeps its previous files
    and is reported in the third value; the others are still written."""
    writes: dict[str, ServiceWrite] = {}
    removed: list[str] = []
    failed: dict[str, str] = {}
    session = Session(p.names, p.manifest)
    full = dirty == ALL
    if full:
        todo = [k for k in (p.names.key(bd) for bd in list(moto().BackendDict._instances)) if k]
        todo += [k for k in p.manifest["services"] if k not in todo]
    else:
        todo = sorted(dirty)
    queued = set(todo)
    while todo:
        key = todo.pop(0)
        try:
            w = _pickle_service(p, key, session, full, shards.get(key, {}))
        except PersistenceError as exc:
            failed[key] = str(exc)
            session.deps[key] = set(p.manifest["services"].get(key, {}).get("deps", ()))
            continue
        if w is None:
            if key in p.manifest["services"]:
                removed.append(key)
            session.deps.pop(key, None)
            continue
        writes[key] = w
        refs = set(w.header["refs"])
        for e in w.entries:
            refs.update(e.header["refs"] if e.header else ())
            refs.update(r for _pid, _data, pheader in e.pages for r in pheader["refs"])
        for written, _kept in w.bpages.values():
            refs.update(r for _pid, _data, pheader in written for r in pheader["refs"])
        for ref in sorted(refs - queued):
            queued.add(ref)
            todo.append(ref)
    return writes, removed, failed


def _pickle_service(p: Persistence, key: str, session: Session, full: bool, dirty_colls: dict[tuple[str, ...], set[str]]) -> ServiceWrite | None:
    bd = p.names.by_key(key)
    backends = [(acct, region, be) for acct, asb in list(dict.items(bd)) for region, be in list(dict.items(asb))]
    if not backends:
        return None
    pkg = pkg_of_bd(bd)
    old = p.manifest["services"].get(key, {})
    old_shards: dict[str, dict[str, Any]] = old.get("shards", {})
    old_bpages: dict[str, dict[str, Any]] = old.get("bpages", {})
    kept: dict[str, dict[str, Any]] = {}
    plans: list[tuple[str, tuple[str, str, str, str], Any, dict[str, Any] | None, bool, PagePlan]] = []
    shard_roots: dict[int, tuple[str, str, str, str]] = {}
    states: dict[tuple[str, str], dict[str, Any]] = {}
    bplans: dict[tuple[str, str], PagePlan] = {}
    for acct, region, be in backends:
        bprev = old_bpages.get(f"{acct}|{region}")
        same_b = bprev is not None and p.identity.get((key, acct, region)) == id(be)
        bplan = bplans[(acct, region)] = _page_plan(key, (acct, region), be, {"pages": bprev} if same_b else None, dirty_colls, full)
        state = dict(vars(be))
        state.update(bplan.markers)
        for attr in tracking.sharded_attrs_of(type(be)):
            coll, tracked = _tracked_collection(key, acct, region, be, attr)
            if coll is None:
                continue
            keys = list(dict.keys(coll))
            state[attr] = tracking.ShardIndex(keys)
            touched = dirty_colls.get((acct, region, attr), set())
            everything = full or not tracked or ALL_KEYS in touched
            for k in keys:
                obj = dict.__getitem__(coll, k)
                loc = (acct, region, attr, k)
                sid = tracking.shard_id(loc)
                shard_roots[id(obj)] = loc
                prev = old_shards.get(sid)
                same = prev is not None and p.identity.get((key, *loc)) == id(obj)
                plan = _page_plan(key, loc, obj, prev if same else None, dirty_colls, full)
                write_entry = everything or not same or k in touched or plan.needs_entry
                if write_entry or plan.writes or plan.removed:
                    plans.append((sid, loc, obj, prev if same else None, write_entry, plan))
                else:
                    kept[sid] = prev  # type: ignore[assignment]
        states[(acct, region)] = state
    session.deps[key] = set().union(*(set(e.get("deps", ())) for e in kept.values()))
    std = {"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"}
    extra = {k: v for k, v in vars(bd).items() if k not in std}

    def dump(obj: Any, own_root: Any = None, root_override: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
        return _dump(p, key, pkg, session, obj, shard_roots, own_root, root_override)

    main, header = dump({"backends": states, "extra": extra})
    header["backends"] = sorted([a, r] for a, r in states)
    entries = []
    for sid, loc, obj, prev, write_entry, plan in plans:
        data = eheader = None
        if write_entry:
            data, eheader = dump(obj, obj, plan.markers)
            eheader["shard"] = list(loc)
        pages = []
        for pid, items in plan.writes:
            pdata, pheader = dump(items)
            pheader["page"] = [*loc, pid]
            pages.append((pid, pdata, pheader))
        entries.append(EntryWrite(sid, loc, obj, prev, data, eheader, pages, plan.removed, plan.kept))
    bpages: dict[tuple[str, str], tuple[list[PageFile], dict[str, dict[str, Any]]]] = {}
    for (acct, region), bplan in bplans.items():
        written = []
        for pid, items in bplan.writes:
            pdata, pheader = dump(items)
            pheader["page"] = [acct, region, pid]
            written.append((pid, pdata, pheader))
        bpages[(acct, region)] = (written, bplan.kept)
    backend_ids = {(acct, region): id(be) for acct, region, be in backends}
    return ServiceWrite(main, header, entries, kept, bpages, backend_ids)


def _page_plan(key: str, loc: tuple[str, ...], obj: Any, prev: dict[str, Any] | None, dirty_colls: dict[tuple[str, ...], set[str]], full: bool) -> PagePlan:
    plan = PagePlan()
    old_pages: dict[str, dict[str, Any]] = (prev or {}).get("pages", {})
    for attr2 in tracking.paged_attrs_of(type(obj)):
        store = vars(obj).get(attr2)
        want = (key, *loc, attr2)
        tracked = isinstance(store, tracking.PagedStore) and getattr(store, "_riq_loc", None) == want
        if not tracked:
            if not tracking.trackable(store):
                continue  # not pageable: stays inside the entry's own file
            if isinstance(store, tracking.PagedStore):  # tracked under another address: re-address
                store._riq_loc = want
            else:  # (under the exclusive lock: no request is running)
                vars(obj)[attr2] = store = tracking.as_tracked_store(store, want)
        base = type(store)._riq_base
        npages = tracking.PAGE_COUNTS.get(attr2, tracking.PAGES)
        plan.markers[attr2] = tracking.PagedIndex(base, npages)
        prefix = f"{attr2}/"
        mine = {pid: e for pid, e in old_pages.items() if pid.startswith(prefix)}
        if prev is not None and not mine and dict.__len__(store):
            plan.needs_entry = True  # the entry was written while this collection was empty
        touched = dirty_colls.get((*loc, attr2), set())
        index = getattr(store, "_riq_pages", None) if tracked else None
        if full or prev is None or not tracked or ALL_KEYS in touched or index is None:
            dirty_pages = None  # all
        else:
            dirty_pages = {tracking.page_of(k, npages) for k in touched}
            if not dirty_pages:
                plan.kept.update(mine)
                continue
        groups: dict[str, list[str]] = {}
        if dirty_pages is None:  # full scan; (re)build the page index
            pages_index: dict[str, set[str]] = {}
            for k in dict.keys(store):
                pg = tracking.page_of(k, npages)
                pages_index.setdefault(pg, set()).add(k)
                groups.setdefault(pg, []).append(k)
            store._riq_pages = pages_index
        else:  # only the touched pages: O(touched + page size), not O(bucket)
            for k in touched:
                index.setdefault(tracking.page_of(k, npages), set()).add(k)  # type: ignore[union-attr]
            for pg in dirty_pages:
                members = index.get(pg, set())  # type: ignore[union-attr]
                members.intersection_update([k for k in members if dict.__contains__(store, k)])
                if members:
                    groups[pg] = sorted(members)
        for pg, ks in sorted(groups.items()):
            plan.writes.append((prefix + pg, [(k, dict.__getitem__(store, k)) for k in ks]))
        considered = set(mine) if dirty_pages is None else {prefix + pg for pg in dirty_pages}
        written = {prefix + pg for pg in groups}
        plan.removed |= {pid for pid in mine if pid in considered and pid not in written}
        plan.kept.update({pid: e for pid, e in mine.items() if pid not in considered})
    return plan


def _tracked_collection(key: str, acct: str, region: str, be: Any, attr: str) -> tuple[Any, bool]:
    """(collection, was it already tracked?) for a shardable attribute, or (None, False)."""
    coll = vars(be).get(attr)
    loc = (key, acct, region, attr)
    if isinstance(coll, tracking.TrackedDict):
        tracked = getattr(coll, "_riq_loc", None) == loc
        coll._riq_loc = loc
        return coll, tracked
    if not tracking.is_plain_dict(coll) or not tracking.trackable(coll):
        return None, False
    vars(be)[attr] = tracked_coll = tracking.new_tracked_dict(dict.items(coll), loc)  # (exclusive lock held)
    return tracked_coll, False


def _dump(
    p: Persistence,
    key: str,
    pkg: str,
    session: Session,
    obj: Any,
    shard_roots: dict[int, tuple[str, str, str, str]],
    own_root: Any,
    root_override: dict[str, Any] | None,
) -> tuple[bytes, dict[str, Any]]:
    buf = io.BytesIO()
    pickler = Pickler(buf, session, key, pkg, p.blobs, shard_roots, own_root, root_override)
    try:
        pickler.dump(obj)
    except Exception as exc:
        p.stats.failures += 1
        where = find_unpicklable(obj, session, key, pkg)
        log.error("cannot snapshot %s: %s: %s (at %s)", key, type(exc).__name__, exc, where)
        raise PersistenceError(f"cannot snapshot {key}: {type(exc).__name__}: {exc}") from exc
    session.deps.setdefault(key, set()).update(pickler.deps)
    header = {"service": key, "deps": sorted(pickler.deps), "refs": sorted(pickler.refs), "blobs": sorted(pickler.blobs)}
    return buf.getvalue(), header
