"""Access tracking: what a request touched, down to the bucket and the S3 key.

A request runs with a :class:`RequestContext` in a thread-local.  Collections that can grow large
are *sharded* (one file per entry: an S3 bucket, a log group, a DynamoDB table, an SQS queue) or
*paged* (an S3 bucket's keys, EC2's AMIs: 256 or 16 hash pages per collection), and are replaced by
a tracking subclass of their own class that notes each key a request reads or writes, so a commit
rewrites only those entries and pages.  One generator (:func:`tracked_class`) builds every tracking
class, wrapping only the methods its base class has.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

from rentaliq.local.state.reducers import new_dictsub, set_dictsub_state


@dataclass
class RequestContext:
    touched: dict[int, Any] = field(default_factory=dict)  # id -> BackendDict looked up
    created_asbs: list[Any] = field(default_factory=list)  # account backends that created a region backend
    new_keys: list[Any] = field(default_factory=list)  # S3 keys whose body moto buffered itself
    extra_dirty: set[str] = field(default_factory=set)  # services marked with Persistence.mark_dirty
    shard_touch: list[tuple[Any, str]] = field(default_factory=list)  # (collection, key or ALL_KEYS)


_tls = threading.local()


def current_context() -> RequestContext | None:
    return getattr(_tls, "ctx", None)


def set_context(ctx: RequestContext | None) -> None:
    _tls.ctx = ctx


ALL_KEYS = "\x00*"  # "every entry" marker in dirty sets

SHARDED: dict[tuple[str, str], tuple[str, ...]] = {
    ("moto.s3.models", "S3Backend"): ("buckets",),
    ("moto.logs.models", "LogsBackend"): ("groups",),
    ("moto.dynamodb.models", "DynamoDBBackend"): ("tables",),
    ("moto.sqs.models", "SQSBackend"): ("queues",),
}
PAGED: dict[tuple[str, str], tuple[str, ...]] = {
    ("moto.s3.models", "FakeBucket"): ("keys",),
    # EC2's ~1 MB of default AMIs and their snapshots would otherwise be re-pickled by
    # every request that touches EC2 (each VPC, subnet, security group of a stack).
    ("moto.ec2.models", "EC2Backend"): ("amis", "snapshots"),
}
PAGES = 256
PAGE_COUNTS: dict[str, int] = {"amis": 16, "snapshots": 16}  # by attribute; default PAGES
_SHARDED_BY_TYPE: dict[type, tuple[str, ...]] = {}
_PAGED_BY_TYPE: dict[type, tuple[str, ...]] = {}


def _configured(config: dict[tuple[str, str], tuple[str, ...]], cache: dict[type, tuple[str, ...]], t: type) -> tuple[str, ...]:
    attrs = cache.get(t)
    if attrs is None:
        attrs = next((config[k] for k in ((c.__module__, c.__name__) for c in t.__mro__) if k in config), ())
        cache[t] = attrs
    return attrs


def sharded_attrs_of(cls: type) -> tuple[str, ...]:
    return _configured(SHARDED, _SHARDED_BY_TYPE, cls)


def paged_attrs_of(cls: type) -> tuple[str, ...]:
    return _configured(PAGED, _PAGED_BY_TYPE, cls)


def shard_id(loc: tuple[str, str, str, str]) -> str:
    return hashlib.sha1(json.dumps(list(loc)).encode()).hexdigest()[:20]


def page_of(k: str, pages: int = PAGES) -> str:
    return f"{zlib.crc32(k.encode('utf-8', 'surrogatepass')) % pages:03d}"


class ShardIndex:
    """Stands in the main file for a sharded collection: its keys, in order."""

    def __init__(self, keys: list[str]):
        self.keys = keys


class PagedIndex:
    """Stands in an entry's file for a paged collection (the pages are separate files)."""

    def __init__(self, base: type, pages: int = PAGES):
        self.base = base
        self.pages = pages


# ------------------------------------------------------------------ the tracking classes

_KEYED = ("__getitem__", "__setitem__", "__delitem__", "__contains__", "get", "pop", "setdefault", "getlist", "setlist")
# Whoever walks the whole collection may change any entry (moto modifies an AMI found
# through describe_images): every page is then rewritten.
_WHOLE = ("update", "clear", "popitem", "keys", "values", "items", "copy", "lists", "iteritems", "itervalues", "iterlists")


class TrackMixin:
    """Notes the keys of this collection the current request touches (see :func:`tracked_class`)."""

    _riq_loc: tuple[str, ...]
    _riq_base: type

    def _touch(self, k: Any) -> None:
        ctx = getattr(_tls, "ctx", None)
        if ctx is not None and isinstance(k, str):
            ctx.shard_touch.append((self, k))

    def _touch_all(self) -> None:
        ctx = getattr(_tls, "ctx", None)
        if ctx is not None:
            ctx.shard_touch.append((self, ALL_KEYS))

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickled inline (an alias): as the base class
        if self._riq_base is dict:
            return dict, (dict(dict.items(self)),)  # type: ignore[call-overload]
        state = (getattr(self, "__dict__", None), None, list(dict.items(self)))  # type: ignore[call-overload]
        return new_dictsub, (self._riq_base,), state, None, None, set_dictsub_state


def _keyed(orig: Any, adopt: bool) -> Any:
    def wrapper(self: Any, k: Any, *a: Any, **kw: Any) -> Any:
        self._touch(k)
        if adopt and a:
            adopt_entry(self, k, a[0])
        return orig(self, k, *a, **kw)

    return wrapper


def _whole(orig: Any) -> Any:
    def wrapper(self: Any, *a: Any, **kw: Any) -> Any:
        self._touch_all()
        return orig(self, *a, **kw)

    return wrapper


def tracked_class(base: type, *, sharded: bool = False) -> type:
    """The tracking subclass of ``base`` (cached).

    ``sharded``: a backend's sharded collection (a plain dict of buckets): a new entry gets its
    own paged collections tracked at once, and iterating it touches every entry.  A paged
    collection (S3's ``_VersionedKeyStore``) keeps ``__iter__`` untouched: overriding it would
    take CPython's ``dict(store)`` off its fast path and change what moto gets.
    """
    cache = _SHARDED_CLASSES if sharded else _PAGED_CLASSES
    cls = cache.get(base)
    if cls is None:
        ns: dict[str, Any] = {"_riq_base": base}
        for name in _KEYED:
            if hasattr(base, name):
                ns[name] = _keyed(getattr(base, name), sharded and name == "__setitem__")
        for name in _WHOLE + (("__iter__",) if sharded else ()):
            if hasattr(base, name):
                ns[name] = _whole(getattr(base, name))
        cls = type(f"_Tracked{base.__name__}", (PagedStore if not sharded else TrackMixin, base), ns)
        cache[base] = cls
    return cls


class PagedStore(TrackMixin):
    """Marker base of the paged collections' tracking classes."""


_SHARDED_CLASSES: dict[type, type] = {}
_PAGED_CLASSES: dict[type, type] = {}
TrackedDict: type = tracked_class(dict, sharded=True)  # a backend's sharded collection


def new_tracked_dict(items: Any, loc: tuple[str, ...]) -> Any:
    d = TrackedDict()
    for k, v in items:
        dict.__setitem__(d, k, v)
    d._riq_loc = loc
    return d


def trackable(coll: Any) -> bool:
    return isinstance(coll, dict) and all(isinstance(k, str) for k in dict.keys(coll))


def as_tracked_store(store: Any, loc: tuple[str, ...]) -> Any:
    """``store`` as an instance of its paged tracking class, noting touches under ``loc``."""
    if isinstance(store, PagedStore):
        store._riq_loc = loc
        return store
    cls = tracked_class(type(store))
    new = cls.__new__(cls)
    if getattr(store, "__dict__", None):
        new.__dict__.update(store.__dict__)
    for k, v in dict.items(store):
        dict.__setitem__(new, k, v)
    new._riq_loc = loc
    return new


def adopt_entry(coll: Any, k: Any, v: Any) -> None:
    """A new entry of a sharded collection (a bucket being created): track its paged
    collections from the start, before other requests can reach it."""
    loc = getattr(coll, "_riq_loc", None)
    if loc is None or not isinstance(k, str) or not hasattr(v, "__dict__"):
        return
    for attr2 in paged_attrs_of(type(v)):
        store = vars(v).get(attr2)
        want = (*loc, k, attr2)
        if isinstance(store, PagedStore) and getattr(store, "_riq_loc", None) == want:
            continue
        if trackable(store):
            vars(v)[attr2] = as_tracked_store(store, want)


def is_plain_dict(coll: Any) -> bool:
    return type(coll) in (dict, collections.OrderedDict)
