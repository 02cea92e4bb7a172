"""The :class:`Persistence` object: owns one state directory for the lifetime of one server process.

It ties the parts together: the state-dir lock and manifest (:mod:`layout`), the blob store
(:mod:`blobs`), moto hooks (:mod:`hooks`), restore (:mod:`restore`), the group commit (queue here,
pickling in :mod:`snapshot`, files in :mod:`commit`) and the request path (:mod:`middleware`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rentaliq.local.state import commit as commit_files
from rentaliq.local.state import restore as restore_mod
from rentaliq.local.state import s3bodies, tracking
from rentaliq.local.state.blobs import BlobStore
from rentaliq.local.state.commit import CommitStats
from rentaliq.local.state.hooks import MotoHooks
from rentaliq.local.state.layout import (
    BLOBS_DIR,
    LOCK_FILE,
    SERVICES_DIR,
    PersistenceError,
    StateLockedError,
    empty_manifest,
    init_state_dir,
    read_manifest,
)
from rentaliq.local.state.middleware import Middleware, RWLock
from rentaliq.local.state.references import BackendNames, moto
from rentaliq.local.state.snapshot import ALL, ShardDirty, pickle_all

_CURRENT: Persistence | None = None
_held = threading.local()  # depth: how many shared holds (changing()) this thread has


def current() -> Persistence | None:
    """The server process's :class:`Persistence` (for code that changes state outside a request:
    ``changing``, ``mark_dirty``, ``commit``)."""
    return _CURRENT


def _merge(into: ShardDirty, shards: ShardDirty) -> None:
    for svc, colls in shards.items():
        mine = into.setdefault(svc, {})
        for coll, ks in colls.items():
            mine.setdefault(coll, set()).update(ks)


class Persistence:
    """Owns a state directory for the lifetime of one server process."""

    def __init__(self, state_dir: Path, *, fsync: bool | None = None):
        self.state_dir = Path(state_dir)
        if fsync is None:
            fsync = os.environ.get("RENTALIQ_LOCAL_FSYNC", "") not in ("", "0", "false", "no")
        self.fsync = fsync
        self.services_dir = self.state_dir / SERVICES_DIR
        self.blobs: BlobStore
        self.manifest: dict[str, Any] = empty_manifest()
        self.blob_refs: dict[str, set[str]] = {}  # file name -> blobs it references
        self.identity: dict[tuple[str, ...], int] = {}  # id() of each backend/entry last written
        self.names = BackendNames()
        self.hooks = MotoHooks(self.names)
        self.stats = CommitStats()
        self.closed = False
        self._lock_fd: int | None = None
        self._rw = RWLock()
        self._commit_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: set[str] = set()
        self._pending_shards: ShardDirty = {}
        self._pending_all = False
        self._failed: dict[str, str] = {}  # service -> why its last snapshot failed
        self._seq = 0
        self._committed = 0
        self._active = 0
        self._active_cond = threading.Condition()

    # ---------------------------------------------------------------- setup

    def open(self) -> None:
        """Initialise/validate the state dir and take its lock."""
        global _CURRENT
        init_state_dir(self.state_dir)
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StateLockedError(f"state dir {self.state_dir} is in use by another local cloud server (pid {other})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        self.blobs = s3bodies.BLOB_STORE = BlobStore(self.state_dir / BLOBS_DIR, fsync=self.fsync)
        _CURRENT = self
        self.manifest = read_manifest(self.state_dir)

    @property
    def hooks_installed(self) -> bool:
        """Whether this process persists moto's state (False for an ephemeral server)."""
        return self.hooks.installed

    def install_hooks(self) -> None:
        """Observe moto so requests can be attributed to the services they touch."""
        self.hooks.install(self.blobs)

    def bd_key(self, bd: Any) -> str | None:
        """``module:attr`` naming the module-level variable that holds ``bd`` (the service's key)."""
        return self.names.key(bd)

    def restore(self) -> dict[str, Any]:
        """Load the snapshot into moto's backends. Returns a small report."""
        return restore_mod.restore(self)

    def referenced_blobs(self) -> set[str]:
        return set().union(*self.blob_refs.values())

    # ---------------------------------------------------------------- commits

    def mark_dirty(self, *services: Any) -> None:
        """Mark services (BackendDict objects or ``module:attr`` keys) for the next commit.

        Inside a request they are committed with it; elsewhere call :meth:`commit` afterwards."""
        keys = {s if isinstance(s, str) else self.bd_key(s) for s in services} - {None}
        ctx = tracking.current_context()
        if ctx is not None:
            ctx.extra_dirty |= keys  # type: ignore[arg-type]
        else:
            self.enqueue(keys, {})  # type: ignore[arg-type]

    def enqueue(self, keys: set[str] | str, shards: ShardDirty) -> int:
        with self._pending_lock:
            if keys == ALL:
                self._pending_all = True
            else:
                self._pending |= keys  # type: ignore[arg-type]
            _merge(self._pending_shards, shards)
            self._seq += 1
            return self._seq

    def commit(self, through: int | None = None) -> None:
        """Write every pending change (group commit: one writer, many waiters).

        Called by code running inside a request (the IMPORT change set's execution, a stack deleted
        at once), it does nothing: that request holds the shared lock, and the middleware commits
        what it touched (and what was marked dirty) as soon as it releases it, before answering."""
        if tracking.current_context() is not None:
            return
        if getattr(_held, "depth", 0):
            raise PersistenceError("commit() inside changing(): commit after the block (a bug of the caller)")
        if through is None:
            with self._pending_lock:
                through = self._seq
        with self._commit_lock:
            if self._committed >= through:
                return
            with self._pending_lock:
                dirty, self._pending = self._pending, set()
                shards, self._pending_shards = self._pending_shards, {}
                all_, self._pending_all = self._pending_all, False
                target = self._seq
            if dirty or all_:
                try:
                    self._commit(ALL if all_ else dirty, shards)
                except BaseException:  # e.g. the disk is full: nothing of this commit was written
                    with self._pending_lock:  # keep them pending for the next attempt
                        self._pending |= dirty
                        self._pending_all |= all_
                        _merge(self._pending_shards, shards)
                    raise
            self._committed = target

    def snapshot_all(self) -> None:
        self.commit(self.enqueue(ALL, {}))

    def _commit(self, dirty: set[str] | str, shards: ShardDirty) -> None:
        t0 = time.perf_counter()
        self._rw.acquire_exclusive()  # no request runs while the snapshot is taken
        self.stats.lock_wait_seconds += time.perf_counter() - t0
        try:
            writes, removed, failed = pickle_all(self, dirty, shards)
        finally:
            self._rw.release_exclusive()
        commit_files.write_files(self, writes, removed, t0)
        with self._pending_lock:
            for key in [*writes, *removed]:
                self._failed.pop(key, None)
            self._failed.update(failed)

    def failed_among(self, keys: set[str] | str) -> dict[str, str]:
        """Services among ``keys`` whose last snapshot attempt failed (their file is stale)."""
        with self._pending_lock:
            if keys == ALL:
                return dict(self._failed)
            return {k: v for k, v in self._failed.items() if k in keys}

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the shared lock while moto state changes (a request; the local CloudFormation's
        operation worker), so a commit never pickles that state half-changed.  Never make a mutating
        request to this server inside: commit afterwards, outside the block (``mark_dirty``, ``commit``)."""
        self._rw.acquire_read()
        _held.depth = getattr(_held, "depth", 0) + 1
        try:
            yield
        finally:
            _held.depth -= 1
            self._rw.release_read()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Give up this thread's shared hold while it waits for another thread that commits (the
        CloudFormation API waiting for crash recovery at start-up), then take it again.  Only where
        the request has changed nothing yet: a commit may run in between."""
        depth = getattr(_held, "depth", 0)
        for _ in range(depth):
            self._rw.release_read()
        _held.depth = 0
        try:
            yield
        finally:
            for _ in range(depth):
                self._rw.acquire_read()
            _held.depth = depth

    # ---------------------------------------------------------------- request path

    def middleware(self, app: Any) -> Callable[[dict[str, Any], Any], Any]:
        """Wrap moto's ``DomainDispatcherApplication`` (needs ``get_application``)."""
        return Middleware(self, app)

    @contextlib.contextmanager
    def active_request(self) -> Iterator[None]:
        with self._active_cond:
            self._active += 1
        try:
            yield
        finally:
            with self._active_cond:
                self._active -= 1
                self._active_cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._active_cond:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._active_cond.wait(left)
        return True

    def dirty_for(self, ctx: tracking.RequestContext, dispatched: Any, mutating: bool) -> tuple[set[str] | str, ShardDirty]:
        """What a finished request requires to be committed: services, and collection entries."""
        keys: set[str] = set(ctx.extra_dirty)
        shards: ShardDirty = {}
        if ctx.created_asbs:
            for bd in list(moto().BackendDict._instances):
                if any(asb is a for asb in dict.values(bd) for a in ctx.created_asbs):
                    k = self.bd_key(bd)
                    if k:
                        keys.add(k)
        if not mutating:
            return keys, shards
        if dispatched == ALL:
            return ALL, shards
        for bd in [*ctx.touched.values(), *([dispatched] if dispatched is not None else [])]:
            k = self.bd_key(bd)
            if k:
                keys.add(k)
        for coll, entry in ctx.shard_touch:
            loc = getattr(coll, "_riq_loc", None)
            if loc is not None:
                keys.add(loc[0])
                shards.setdefault(loc[0], {}).setdefault(tuple(loc[1:]), set()).add(entry)
        return keys, shards

    def close(self, *, snapshot: bool = True) -> None:
        """Final snapshot of everything, blob GC, release the state-dir lock."""
        if self.closed:
            return
        try:
            if snapshot:
                self.snapshot_all()
                self.blobs.gc(self.referenced_blobs())
        finally:
            self.closed = True
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
