"""Cross-service references: naming moto's backends, and finding one service's objects from another.

Services are pickled separately, but moto objects point at each other: every model holds its
backend, an RDS subnet group holds EC2 ``Subnet`` objects, a CloudFormation stack may hold the
objects it created.  The pickler writes references instead of copies:

* a ``BaseBackend`` / ``AccountSpecificBackend`` / ``BackendDict`` as its address (``module:attr``,
  account, region); on load it resolves to the one live object moto looks up;
* an entry of a sharded collection (a bucket) referenced from elsewhere in its service as the
  entry's address, loaded on demand;
* a model object of *another* service as a path from that service's backend
  (``.subnets['us-east-1a']['subnet-1']``) when it is found there; that service is saved in the
  same commit and loaded first (the manifest records the dependency; a reference that would make
  a cycle is written as a copy).  A model its service no longer holds is copied.

:func:`load_ref` is what those references unpickle to; it asks the restore in progress.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any, Protocol

from rentaliq.local.state.layout import PersistenceError

log = logging.getLogger("rentaliq.local.persistence")

_INDEX_MAX_DEPTH = 6
_moto: Any = None


def moto() -> Any:
    """moto's base classes (imported on first use: the CLI imports this package without moto)."""
    global _moto
    if _moto is None:
        from moto.core.base_backend import AccountSpecificBackend, BackendDict, BaseBackend
        from moto.core.common_models import BaseModel
        from moto.s3.models import FakeKey

        _moto = SimpleNamespace(
            BackendDict=BackendDict,
            AccountSpecificBackend=AccountSpecificBackend,
            BaseBackend=BaseBackend,
            BaseModel=BaseModel,
            FakeKey=FakeKey,
        )
    return _moto


class Resolver(Protocol):
    def resolve(self, kind: str, *args: Any) -> Any: ...


LOADER: Resolver | None = None  # the restore in progress


def load_ref(kind: str, *args: Any) -> Any:
    """What a reference unpickles to: B backend, A account backend, D BackendDict, S entry, M model."""
    if LOADER is None:
        raise PersistenceError("moto object reference unpickled outside a restore")
    return LOADER.resolve(kind, *args)


def pkg_of_bd(bd: Any) -> str:
    mod: str = bd.backend.__module__
    return mod.split(".")[1] if mod.startswith("moto.") else mod


class BackendNames:
    """``module:attr`` keys for moto's ``BackendDict`` objects, both ways (the service key in the manifest)."""

    def __init__(self) -> None:
        self._keys: dict[int, str | None] = {}
        self._bds: dict[str, Any] = {}

    def key(self, bd: Any) -> str | None:
        """``module:attr`` naming the module-level variable that holds ``bd``."""
        k = self._keys.get(id(bd), "")
        if k != "":
            return k
        found: str | None = None
        home = bd.backend.__module__
        parts = home.split(".")
        candidates = [home] + [".".join(parts[:i]) for i in range(len(parts) - 1, 1, -1)]
        prefix = ".".join(parts[:2]) + "."
        candidates += sorted(n for n in list(sys.modules) if n.startswith(prefix) and n not in candidates)
        for modname in candidates:
            mod = sys.modules.get(modname)
            if mod is None:
                continue
            found = next((f"{modname}:{name}" for name, val in list(vars(mod).items()) if val is bd), None)
            if found:
                break
        if found is None:
            log.warning("cannot persist %s backends: no module-level name found", bd.service_name)
        self._keys[id(bd)] = found
        if found:
            self._bds[found] = bd
        return found

    def by_key(self, key: str) -> Any:
        bd = self._bds.get(key)
        if bd is None:
            modname, attr = key.split(":", 1)
            bd = getattr(importlib.import_module(modname), attr)
            self._bds[key] = bd
            self._keys[id(bd)] = key
        return bd

    def key_for_class(self, cls: type) -> str | None:
        for bd in list(moto().BackendDict._instances) + list(self._bds.values()):
            if bd.backend is cls:
                return self.key(bd)
        return None


class Session:
    """Lookup tables for one commit: where each backend lives, and paths to other services' models."""

    def __init__(self, names: BackendNames, manifest: dict[str, Any]):
        self.names = names
        self.backend_loc: dict[int, tuple[str, str, str]] = {}
        self.asb_loc: dict[int, tuple[str, str]] = {}
        self.pkg_backends: dict[str, list[tuple[str, str, str, Any]]] = {}
        for bd in list(moto().BackendDict._instances):
            key = names.key(bd)
            if key is None:
                continue
            pkg = pkg_of_bd(bd)
            for acct, asb in dict.items(bd):
                self.asb_loc[id(asb)] = (key, acct)
                for region, be in dict.items(asb):
                    self.backend_loc[id(be)] = (key, acct, region)
                    self.pkg_backends.setdefault(pkg, []).append((key, acct, region, be))
        self.indexes: dict[tuple[int, bool], dict[int, tuple[Any, ...]]] = {}
        # dependency graph of model references (key -> keys), overlaid as files are pickled
        self.deps: dict[str, set[str]] = {k: set(v.get("deps", ())) for k, v in manifest["services"].items()}

    def index(self, backend: Any, deep: bool) -> dict[int, tuple[Any, ...]]:
        k = (id(backend), deep)
        idx = self.indexes.get(k)
        if idx is None:
            idx = self.indexes[k] = build_index(backend, deep)
        return idx

    def locate_model(self, obj: Any, pkg: str) -> tuple[str, str, str, tuple[Any, ...]] | None:
        # Shallow first (containers only: backend.subnets[az][id]); models nested in
        # other models (a rule inside a security group) need the deep, slower walk.
        for deep in (False, True):
            for key, acct, region, be in self.pkg_backends.get(pkg, ()):
                path = self.index(be, deep).get(id(obj))
                if path is not None:
                    return key, acct, region, path
        return None

    def reaches(self, src: str, dst: str) -> bool:
        seen: set[str] = set()
        todo = [src]
        while todo:
            k = todo.pop()
            if k == dst:
                return True
            if k not in seen:
                seen.add(k)
                todo.extend(self.deps.get(k, ()))
        return False


_SIMPLE_KEY_TYPES = (str, int, bytes, type(None), bool, float)


def _simple_key(k: Any) -> bool:
    if isinstance(k, _SIMPLE_KEY_TYPES) or isinstance(k, type):
        return True
    return isinstance(k, tuple) and all(_simple_key(x) for x in k)


def build_index(backend: Any, deep: bool) -> dict[int, tuple[Any, ...]]:
    """id(model) -> path from ``backend`` for models reachable through containers
    (and, if ``deep``, through other models' attributes)."""
    m = moto()
    skip = (m.BaseBackend, m.BackendDict, m.AccountSpecificBackend)
    atoms = (str, bytes, int, float, bool, type(None), type)
    index: dict[int, tuple[Any, ...]] = {}
    seen: set[int] = {id(backend)}
    todo: list[tuple[Any, tuple[Any, ...], int]] = [(v, (("a", k),), 1) for k, v in vars(backend).items()]
    todo.reverse()
    while todo:
        obj, path, depth = todo.pop()
        if isinstance(obj, atoms) or isinstance(obj, skip) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, m.BaseModel):
            index[id(obj)] = path
            if not deep:
                continue
        if depth >= _INDEX_MAX_DEPTH:
            continue
        children: list[tuple[Any, tuple[Any, ...], int]] = []
        if isinstance(obj, dict):
            children = [(v, (*path, ("k", k)), depth + 1) for k, v in dict.items(obj) if _simple_key(k)]
        elif isinstance(obj, (list, tuple)):
            children = [(v, (*path, ("i", i)), depth + 1) for i, v in enumerate(obj)]
        else:
            d = getattr(obj, "__dict__", None)
            if isinstance(d, dict) and not callable(obj):
                children = [(v, (*path, ("a", k)), depth + 1) for k, v in d.items()]
        children.reverse()
        todo.extend(children)
    return index


def follow(obj: Any, path: Iterable[tuple[str, Any]]) -> Any:
    for kind, k in path:
        if kind == "a":
            obj = vars(obj)[k]
        elif kind == "k":
            obj = dict.__getitem__(obj, k) if isinstance(obj, dict) else obj[k]
        else:
            obj = obj[k]
    return obj
