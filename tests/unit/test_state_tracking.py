"""Access tracking of the local cloud's persistence: one class generator for sharded and paged collections.

A commit rewrites only the entries and pages a request touched, so a missed touch is a lost write
after a restart; these tests pin which operations count as touching one key or every key.
"""

from __future__ import annotations

import pickle

from moto.s3.utils import _VersionedKeyStore

from rentaliq.local.state import tracking


def _touches(store, action) -> list:
    ctx = tracking.RequestContext()
    tracking.set_context(ctx)
    try:
        action(store)
    finally:
        tracking.set_context(None)
    return [k for coll, k in ctx.shard_touch if coll is store]


def _paged_keys() -> object:
    base = _VersionedKeyStore()
    base["a"] = "a1"
    base["a"] = "a2"  # a second version
    base["b"] = "b1"
    return tracking.as_tracked_store(base, ("svc", "acct", "region", "bucket", "k", "keys"))


def test_one_key_operations_touch_that_key() -> None:
    store = _paged_keys()
    assert _touches(store, lambda s: s["a"]) == ["a"]
    assert set(_touches(store, lambda s: s.getlist("b"))) == {"b"}
    assert set(_touches(store, lambda s: s.__setitem__("c", "c1"))) == {"c"}
    assert set(_touches(store, lambda s: s.setlist("c", ["c2"]))) == {"c"}
    assert _touches(store, lambda s: "zz" in s) == ["zz"]


def test_walking_the_collection_touches_every_key() -> None:
    store = _paged_keys()
    for walk in (lambda s: list(s.items()), lambda s: list(s.iteritems()), lambda s: list(s.lists()), lambda s: list(s.values())):
        assert _touches(store, walk)[0] == tracking.ALL_KEYS


def test_a_paged_store_keeps_dicts_fast_iteration_and_pickles_as_its_base_with_every_version() -> None:
    store = _paged_keys()
    assert "__iter__" not in vars(type(store))  # dict(store) stays on CPython's fast path
    assert _touches(store, lambda s: list(iter(s))) == []
    loaded = pickle.loads(pickle.dumps(store))
    assert type(loaded) is _VersionedKeyStore
    assert loaded.getlist("a") == ["a1", "a2"] and loaded["b"] == "b1"


def test_a_sharded_collection_tracks_new_entries_paged_collections_at_once() -> None:
    class Bucket:  # stands for moto's FakeBucket (configured by class name and module)
        def __init__(self) -> None:
            self.keys = _VersionedKeyStore()

    Bucket.__module__, Bucket.__name__ = "moto.s3.models", "FakeBucket"
    buckets = tracking.new_tracked_dict([], ("svc", "acct", "region", "buckets"))
    bucket = Bucket()
    assert _touches(buckets, lambda s: s.__setitem__("b1", bucket)) == ["b1"]
    assert isinstance(bucket.keys, tracking.PagedStore)
    assert bucket.keys._riq_loc == ("svc", "acct", "region", "buckets", "b1", "keys")
    assert _touches(buckets, lambda s: list(s)) == [tracking.ALL_KEYS]  # a sharded dict: iterating touches all
    buckets.pop("b1")
    dict.__setitem__(buckets, "b2", "settings")
    assert type(pickle.loads(pickle.dumps(buckets))) is dict
