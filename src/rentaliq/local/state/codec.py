"""The pickling codec: one ``pickle.Pickler`` with one reducer table.

Each type is classified once (the first rule of :data:`_RULES` that matches names its reducer;
cached per type); :meth:`Pickler.reducer_override` then looks the reducer up.  moto models of
another service become references (:mod:`references`), backends become addresses, S3 bodies stay
in the blob store (:mod:`s3bodies`), and the objects that do not pickle as they are go through
:mod:`reducers`.  Anything else that does not pickle fails the commit (the caller logs where).
"""

from __future__ import annotations

import io
import pickle
import tempfile
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any

from rentaliq.local.state import reducers
from rentaliq.local.state.blobs import BlobStore
from rentaliq.local.state.references import Session, load_ref, moto
from rentaliq.local.state.s3bodies import reduce_fakekey

_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())
_WEAK_TYPES = (weakref.WeakValueDictionary, weakref.WeakKeyDictionary, weakref.WeakSet, weakref.ref)

# (kind, does type t (of module mod) have it?), first match wins.  "model" and "fakekey" of another
# service are written as references when found there; every kind has a method _reduce_<kind>.
_RULES: list[tuple[str, Callable[[type, Any, str], bool]]] = [
    ("backend", lambda t, m, mod: issubclass(t, m.BaseBackend)),
    ("bd", lambda t, m, mod: issubclass(t, m.BackendDict)),
    ("asb", lambda t, m, mod: issubclass(t, m.AccountSpecificBackend)),
    ("fakekey", lambda t, m, mod: issubclass(t, m.FakeKey)),
    ("model", lambda t, m, mod: issubclass(t, m.BaseModel)),
    ("function", lambda t, m, mod: t is types.FunctionType),
    ("weak", lambda t, m, mod: t in _WEAK_TYPES),
    ("lock", lambda t, m, mod: t is _LOCK_TYPE),
    ("rlock", lambda t, m, mod: t is _RLOCK_TYPE),
    ("spooled", lambda t, m, mod: t is tempfile.SpooledTemporaryFile),
    ("crypto", lambda t, m, mod: mod.startswith("cryptography.") and reducers.crypto_reducer(t) is not None),
    # e.g. S3's _VersionedKeyStore (items() yields only the latest version and __setitem__
    # appends) or SSM's ParameterDict (a defaultdict whose __init__ takes arguments): the
    # default dict-subclass pickling loses data or cannot load.
    ("dictsub", lambda t, m, mod: issubclass(t, dict) and t not in reducers.DICT_BASES and not reducers.custom_pickling(t)),
]
_KIND: dict[type, tuple[str, str]] = {}  # type -> (kind or "", moto package)


def classify(t: type) -> tuple[str, str]:
    found = _KIND.get(t)
    if found is None:
        m = moto()
        mod = getattr(t, "__module__", "") or ""
        pkg = mod.split(".")[1] if mod.startswith("moto.") else ""
        kind = next((k for k, rule in _RULES if rule(t, m, mod)), "")
        found = _KIND[t] = (kind, pkg)
    return found


class Pickler(pickle.Pickler):
    """Pickles one file of one service (``key``, moto package ``pkg``); collects what it references."""

    def __init__(
        self,
        file: Any,
        session: Session,
        key: str,
        pkg: str,
        blobs: BlobStore | None = None,
        shard_roots: dict[int, tuple[str, str, str, str]] | None = None,
        own_root: Any = None,
        root_override: dict[str, Any] | None = None,
    ):
        super().__init__(file, protocol=5)
        self.session = session
        self.key = key
        self.pkg = pkg
        self.store = blobs
        self.shard_roots = shard_roots or {}
        self.own_root = id(own_root) if own_root is not None else None
        self.root_override = root_override
        self.refs: set[str] = set()  # other services referenced (must be saved in this commit)
        self.deps: set[str] = set()  # services whose models are referenced by path (load first)
        self.blobs: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        t = type(obj)
        kind, pkg = _KIND.get(t) or classify(t)
        if not kind:
            return NotImplemented
        if kind in ("model", "fakekey"):
            ref = self._model_ref(obj, t, kind, pkg)
            if ref is not None:
                return ref
        return getattr(self, f"_reduce_{kind}")(obj)

    def _model_ref(self, obj: Any, t: type, kind: str, pkg: str) -> Any:
        """A reference instead of a copy: the sharded entry this file does not own, or another service's model."""
        if self.shard_roots and kind == "model":
            if id(obj) == self.own_root:
                if self.root_override:  # the entry itself, its paged collections left out
                    return reducers.new_model, (t,), {**vars(obj), **self.root_override}
            else:
                sloc = self.shard_roots.get(id(obj))
                if sloc is not None:
                    return load_ref, ("S", self.key, *sloc)
        if pkg and pkg != self.pkg:
            s = self.session
            loc = s.locate_model(obj, pkg)
            if loc is not None:
                okey, acct, region, path = loc
                if okey != self.key and not s.reaches(okey, self.key):
                    self.refs.add(okey)
                    self.deps.add(okey)
                    s.deps.setdefault(self.key, set()).add(okey)
                    return load_ref, ("M", okey, acct, region, path, t.__qualname__)
        return None

    def _reduce_model(self, obj: Any) -> Any:
        return NotImplemented

    def _reduce_fakekey(self, obj: Any) -> Any:
        if self.store is None:
            return NotImplemented
        reduced, blobs = reduce_fakekey(obj, self.store)
        self.blobs |= blobs
        return reduced

    def _reduce_backend(self, obj: Any) -> Any:
        return self._reduce_located(obj, self.session.backend_loc, "B")

    def _reduce_asb(self, obj: Any) -> Any:
        return self._reduce_located(obj, self.session.asb_loc, "A")

    def _reduce_located(self, obj: Any, locations: dict[int, Any], kind: str) -> Any:
        """A backend (``B``) or account-specific backend (``A``) is never copied: it is pickled as a reference to where
        it lives, and a file other than this one that holds it is recorded among this file's references."""
        loc = locations.get(id(obj))
        if loc is None:
            return NotImplemented
        if loc[0] != self.key:
            self.refs.add(loc[0])
        return load_ref, (kind, *loc)

    def _reduce_bd(self, obj: Any) -> Any:
        k = self.session.names.key(obj)
        return NotImplemented if k is None else (load_ref, ("D", k))

    def _reduce_lock(self, obj: Any) -> Any:
        return threading.Lock, ()

    def _reduce_rlock(self, obj: Any) -> Any:
        return _RLOCK_TYPE, ()

    def _reduce_spooled(self, obj: Any) -> Any:
        return reducers.reduce_spooled(obj)

    def _reduce_dictsub(self, obj: Any) -> Any:
        return reducers.reduce_dictsub(obj)

    def _reduce_function(self, obj: Any) -> Any:
        return reducers.reduce_function(obj)

    def _reduce_weak(self, obj: Any) -> Any:
        return reducers.reduce_weak(obj)

    def _reduce_crypto(self, obj: Any) -> Any:
        return reducers.crypto_reducer(type(obj))(obj)


def find_unpicklable(root: Any, session: Session, key: str, pkg: str) -> str:
    """Best-effort path to the object that failed to pickle (diagnostics only)."""

    def fails(o: Any) -> bool:
        try:
            Pickler(io.BytesIO(), session, key, pkg).dump(o)
            return False
        except Exception:  # noqa: BLE001 - any failure to pickle means: not picklable as it is
            return True

    path = "payload"
    obj = root
    seen: set[int] = set()
    for _ in range(40):
        if id(obj) in seen:
            break
        seen.add(id(obj))
        if isinstance(obj, dict):
            items = [(f"[{k!r}]", v) for k, v in dict.items(obj)]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            items = [(f"[{i}]", v) for i, v in enumerate(obj)]
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            items = [(f".{k}", v) for k, v in vars(obj).items()]
        else:
            break
        child = next((c for c in items if fails(c[1])), None)
        if child is None:
            break
        path += child[0]
        obj = child[1]
    return f"{path} ({type(obj).__module__}.{type(obj).__qualname__})"
