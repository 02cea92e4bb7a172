"""Durable state for moto's in-memory backends.

moto keeps every resource in plain Python objects: one ``BackendDict`` per service
(``moto.s3.models:s3_backends``, ``moto.ec2.models:ec2_backends``, ...), holding one
``AccountSpecificBackend`` per account, holding one ``BaseBackend`` per region (or
partition, for global services).  This module makes those objects survive a restart
of the server process, including ``kill -9``, with the same ids, ARNs, version ids and
bytes.

State directory layout
======================

::

    <state_dir>/                 mode 0711: traversable (the local PostgreSQL servers run as user
                                 postgres below it), not listable; what we write below is 0700/0600
                                 (snapshots hold secret values in clear)
      FORMAT                     {"format": "rentaliq-local-cloud-state", "version": 1,
                                  "moto": "5.2.5", "python": "3.11"}  -- anything else is refused
      lock                       flock(2)ed by the running server (one server per state dir)
      manifest.json              the commit point: generation, and per service its files
      services/
        <mod>__<attr>.<gen>.pkl                 a service's backends (all accounts/regions),
                                                minus its sharded collections
        <mod>__<attr>~<entry>.<gen>.pkl         one entry of a sharded collection (an S3
                                                bucket, a log group, a DynamoDB table, an SQS queue)
        <mod>__<attr>~<entry>~keys_<p>.<gen>.pkl  page <p> (of 256, by CRC32 of the key) of
                                                an S3 bucket's keys, with all their versions
      blobs/<aa>/<sha256>        S3 object bodies, content addressed, written once, never modified
      blobs/tmp/                 blob writes in flight (cleared at start-up)
      access.log                 (server.py) method, path without query, status, size, duration
      server.json                (server.py) pid, host, port of the running server
      server.pid, port, server.log  (cloud.py) the detached server's pid, last port, stdout/stderr
      postgres/ ...              (extensions) the RDS instances' PostgreSQL servers

Every ``.pkl`` file is one JSON header line (service, dependencies, referenced blobs)
followed by a pickle (protocol 5).

A commit writes new files under a new generation number, then atomically replaces
``manifest.json`` (temporary file + ``os.replace``), then deletes the files the new
manifest no longer names.  A crash at any point leaves the old or the new manifest, each
naming complete files, so a commit covering several services (CloudFormation creating a
bucket, a role and a VPC) is atomic.  Orphans (files and blobs) are removed at start-up.

What is persisted, and when
===========================

* A WSGI middleware (:meth:`Persistence.middleware`) wraps moto's dispatcher.  A request
  is *mutating* unless it is a GET/HEAD/OPTIONS without a mutating ``Action``, or an
  RPC (JSON, query, rpc-v2) request whose action starts with Describe/List/Get/BatchGet/
  Head/Search/Lookup/Query/Scan/Validate/Estimate/Simulate.  ``/moto-api/*`` is mutating
  (reset, seed, transitions...) except its read-only GET pages; it snapshots everything.
* While a request runs, accesses are observed per thread: ``BackendDict.__getitem__``
  (the services it touched, also when one service mutates another), region backends it
  made moto create (a read that creates EC2's default VPC is persisted, so its random ids
  stay stable), and which entries of sharded collections (which bucket, which S3 key)
  it touched.  The service moto dispatched the request to is always included.
* After a mutating request has run, and *before* its status line and body are handed
  to the HTTP server, what it touched is pickled and committed.  Commits are serialized
  and grouped: requests that finish while a commit runs are covered by one next commit.
  Requests hold a shared lock while moto runs them (bodies are read before); a commit
  waits up to 10 ms for an exclusive hold so its snapshot sees no request half-applied.
  It does not wait longer: the local CloudFormation calls the server over HTTP from
  inside CreateStack, so the outer request holds the shared lock until its nested
  requests have committed.  Then it snapshots optimistically and retries if a dict
  changed size under the pickler.
* Cost of a commit: the touched services' backends without their sharded collections,
  plus the touched entries (an S3 PUT re-pickles the bucket's settings and one page of
  ~1/256 of its keys), plus services whose objects the pickled ones reference (see below).
  Not proportional to the state size, except for a few per-service structures that grow
  with it (S3's tagging index holds one small entry per object).
* Files are flushed to the OS (write + ``os.replace``), which is what survives
  ``kill -9``.  ``fsync`` (files and directories) is off by default: the local cloud need
  not survive a power loss, and fsync costs milliseconds per commit.  Set
  ``RENTALIQ_LOCAL_FSYNC=1`` to turn it on.

Object identity across files
============================

Services are pickled separately, but moto objects point at each other: every model
holds its backend, an RDS subnet group holds EC2 ``Subnet`` objects, a CloudFormation
stack may hold the objects it created.  The pickler (``reducer_override``) writes
references instead of copies:

* a ``BaseBackend`` / ``AccountSpecificBackend`` / ``BackendDict`` as its address
  (``module:attr``, account, region); on load it resolves to the one live object moto
  looks up (placeholders are made with ``cls.__new__`` and filled when that service's
  file loads, so load order does not matter for them);
* an entry of a sharded collection (a bucket) referenced from elsewhere in its service
  as the entry's address, loaded on demand;
* a model object of *another* service as a path from that service's backend
  (``.subnets['us-east-1a']['subnet-1']``) when it is found there; that service is
  saved in the same commit and loaded first (the manifest records the dependency;
  a reference that would make a cycle is written as a copy), so the path resolves to
  the very object that service restored.  A model its service no longer holds is copied.

S3 object bodies
================

``FakeKey`` keeps its bytes in a ``SpooledTemporaryFile`` (``_value_buffer``), which does
not pickle (and moto's ``__getstate__`` would copy the bytes into every snapshot).  The
``FakeKey.value`` setter is wrapped so a body goes straight into ``blobs/<sha256>``
(hashed in memory, written only if new) and the key gets a :class:`BlobBuffer`, a
read-only file-like view of blob segments (copied into a spooled file only if moto
writes to it).  The bytes are written once, before the key is reachable, and never
re-serialized: a snapshot records ``(sha256, offset, length)`` segments.  A completed
multipart upload is the sequence of its parts' segments (checked against the multipart
ETag), so completing a 256 MiB upload writes nothing.  Keys created outside that path
are stored by the pickler, reading the buffer without moving its file position.  Blobs
no snapshot references are deleted at start-up and on clean shutdown.

Other objects that do not pickle as they are: ``threading.Lock``/``RLock`` (recreated),
lambdas and closures moto keeps in ``defaultdict`` factories (code + closure, hence the
Python version in ``FORMAT``), weak dictionaries/sets/references, ``cryptography`` keys
and certificates (KMS, ACM: as DER), dict subclasses whose ``items()``/``__init__``
break pickling (S3's ``_VersionedKeyStore`` would keep only the latest version; SSM's
``ParameterDict``).  Anything else fails the commit, which turns the request into a 500
(the client must not believe an effect is durable when it is not) and logs the path of
the offending object.  Extensions can add reducers with :func:`register_reducer` and
mark state changed outside requests with :meth:`Persistence.mark_dirty` (see
:func:`current`).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import hashlib
import importlib
import importlib.metadata
import io
import json
import logging
import marshal
import os
import platform
import pickle
import re
import threading
import time
import types
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("rentaliq.local.persistence")

FORMAT_NAME = "rentaliq-local-cloud-state"
FORMAT_VERSION = 1
FORMAT_FILE = "FORMAT"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = "lock"
SERVICES_DIR = "services"
BLOBS_DIR = "blobs"

READ_ACTION_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "BatchGet",
    "Head",
    "Search",
    "Lookup",
    "Query",
    "Scan",
    "Validate",
    "Estimate",
    "Simulate",
)
MOTO_API_READ_PATHS = frozenset(
    {
        "/moto-api/",
        "/moto-api/lib.js",
        "/moto-api/data.json",
        "/moto-api/config",
        "/moto-api/state-manager/get-transition",
        "/moto-api/recorder/download-recording",
    }
)
ALL = "*"  # sentinel: snapshot every service

_CHUNK = 8 * 1024 * 1024
_EXCLUSIVE_WAIT = 0.01  # seconds a commit waits for running requests before snapshotting optimistically
_OPTIMISTIC_ATTEMPTS = 8
_INDEX_MAX_DEPTH = 6


class StateFormatError(RuntimeError):
    """The state directory was written by an incompatible version, or is damaged."""


class StateLockedError(RuntimeError):
    """Another server process is using the state directory."""


class PersistenceError(RuntimeError):
    """A snapshot could not be written."""


# --------------------------------------------------------------------------- format


def _moto_version() -> str:
    try:
        return importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _python_version() -> str:
    return ".".join(platform.python_version_tuple()[:2])


def _format_record() -> dict[str, Any]:
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "moto": _moto_version(), "python": _python_version()}


def check_state_dir(state_dir: Path) -> None:
    """Raise :class:`StateFormatError` (one-line message) unless ``state_dir`` is usable.

    A missing or empty directory is usable (it will be initialised).  Cheap: does not
    import moto, so the CLI can call it before spawning a server.
    """
    state_dir = Path(state_dir)
    fmt = state_dir / FORMAT_FILE
    if not fmt.exists():
        if (state_dir / MANIFEST_FILE).exists():
            raise StateFormatError(
                f"state dir {state_dir} has a {MANIFEST_FILE} but no {FORMAT_FILE} file; "
                "it was not written by this version of RentalIQ (move it aside to start fresh)"
            )
        return
    try:
        rec = json.loads(fmt.read_text())
        name, version, moto, py = rec["format"], int(rec["version"]), rec.get("moto"), rec.get("python")
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise StateFormatError(
            f"state dir {state_dir} has an unreadable {FORMAT_FILE} file ({exc}); move it aside to start fresh"
        ) from None
    if name != FORMAT_NAME or version != FORMAT_VERSION:
        raise StateFormatError(
            f"state dir {state_dir} uses state format {name!s} v{version}, but this RentalIQ reads "
            f"{FORMAT_NAME} v{FORMAT_VERSION}; use a matching RentalIQ version or move the state dir aside"
        )
    if moto != _moto_version():
        raise StateFormatError(
            f"state dir {state_dir} was written with moto {moto}, but moto {_moto_version()} is installed; "
            "snapshots are moto-version specific: reinstall that moto version or move the state dir aside"
        )
    if py != _python_version():
        raise StateFormatError(
            f"state dir {state_dir} was written by Python {py}, but this is Python {_python_version()}; "
            "snapshots are Python-version specific: use that Python or move the state dir aside"
        )


def init_state_dir(state_dir: Path) -> None:
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    with contextlib.suppress(OSError):
        os.chmod(state_dir, 0o711)
    check_state_dir(state_dir)
    (state_dir / SERVICES_DIR).mkdir(exist_ok=True, mode=0o700)
    (state_dir / BLOBS_DIR / "tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (state_dir / FORMAT_FILE).exists():
        _atomic_write(state_dir / FORMAT_FILE, json.dumps(_format_record()).encode() + b"\n", fsync=True)


def _atomic_write(path: Path, data: bytes, *, fsync: bool) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- blobs


class BlobStore:
    """Content-addressed, immutable files: ``blobs/<sha256[:2]>/<sha256>``."""

    def __init__(self, root: Path, *, fsync: bool = False):
        self.root = root
        self.tmp = root / "tmp"
        self.fsync = fsync
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def put_stream(self, read: Callable[[int], bytes]) -> tuple[str, int]:
        """Hash and store what ``read`` yields; returns (sha256, size). Idempotent."""
        h = hashlib.sha256()
        size = 0
        tmp = self.tmp / uuid.uuid4().hex
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while True:
                chunk = read(_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            if self.fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        sha = h.hexdigest()
        final = self.path(sha)
        if final.exists():
            os.unlink(tmp)
        else:
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
            if self.fsync:
                _fsync_dir(final.parent)
        return sha, size

    def put_bytes(self, data: bytes | bytearray | memoryview) -> tuple[str, int]:
        """Store an in-memory value: hash first, write only if the content is new."""
        view = memoryview(data).cast("B")
        sha = hashlib.sha256(view).hexdigest()
        final = self.path(sha)
        if not final.exists():
            tmp = self.tmp / uuid.uuid4().hex
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                rest = view
                while rest:
                    n = os.write(fd, rest)
                    rest = rest[n:]
                if self.fsync:
                    os.fsync(fd)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
            os.close(fd)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
            if self.fsync:
                _fsync_dir(final.parent)
        return sha, len(view)

    def gc(self, referenced: set[str]) -> tuple[int, int]:
        removed = freed = 0
        for entry in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                entry.unlink()
        for sub in self.root.iterdir():
            if sub.name == "tmp" or not sub.is_dir():
                continue
            for blob in sub.iterdir():
                if blob.name not in referenced:
                    with contextlib.suppress(OSError):
                        freed += blob.stat().st_size
                        blob.unlink()
                        removed += 1
        return removed, freed


_BLOB_STORE: BlobStore | None = None  # the process's store (one server per process)
_CURRENT: Persistence | None = None


def current() -> Persistence | None:
    """The server process's :class:`Persistence` (for extensions: ``mark_dirty``, ``commit``)."""
    return _CURRENT


Segments = tuple[tuple[str, int, int], ...]  # ((sha256, offset, length), ...): an object's bytes, in order


class BlobBuffer:
    """Read-only file-like view of a sequence of blob segments.

    Stands in for ``FakeKey._value_buffer``.  One segment for an object written in one
    piece; a completed multipart upload is the sequence of its parts' blobs (so it is
    stored once, and completing it writes nothing).  Opens blobs per read (no long-lived
    file descriptors, whatever the number of keys).  The first write or truncate copies
    the content into a ``SpooledTemporaryFile`` and delegates to it from then on.
    """

    def __init__(self, store: BlobStore | None, segments: Segments | None):
        self._store = store
        self.segments: Segments = tuple(segments or ())
        self.length = sum(s[2] for s in self.segments)
        self._pos = 0
        self._spool: Any = None
        self.closed = segments is None

    @property
    def ref(self) -> Segments | None:
        """What a snapshot records: the segments while unmodified, else None."""
        if self._spool is not None or self.closed:
            return None
        return self.segments

    @property
    def stored_segments(self) -> Segments | None:
        """The segments if never written to, even once closed (moto disposes of a
        multipart upload's parts when it completes; their blobs are still valid)."""
        return self.segments if self._spool is None and self._store is not None else None

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")

    def _materialize(self) -> Any:
        import tempfile

        from moto.settings import get_s3_default_key_buffer_size

        spool = tempfile.SpooledTemporaryFile(get_s3_default_key_buffer_size())
        pos = self._pos
        self._pos = 0
        while True:
            chunk = self.read(_CHUNK)
            if not chunk:
                break
            spool.write(chunk)
        spool.seek(pos)
        self._spool = spool
        return spool

    def seek(self, pos: int, whence: int = 0) -> int:
        self._check()
        if self._spool is not None:
            return self._spool.seek(pos, whence)
        if whence == 0:
            self._pos = pos
        elif whence == 1:
            self._pos += pos
        else:
            self._pos = self.length + pos
        self._pos = max(self._pos, 0)
        return self._pos

    def tell(self) -> int:
        self._check()
        return self._spool.tell() if self._spool is not None else self._pos

    def read(self, n: int | None = -1) -> bytes:
        self._check()
        if self._spool is not None:
            return self._spool.read(n)
        remaining = self.length - self._pos
        if remaining <= 0:
            return b""
        if n is None or n < 0 or n > remaining:
            n = remaining
        assert self._store is not None
        chunks = []
        start, end = self._pos, self._pos + n
        seg_start = 0
        for sha, off, length in self.segments:
            seg_end = seg_start + length
            if seg_end > start and seg_start < end:
                lo = max(start, seg_start) - seg_start
                hi = min(end, seg_end) - seg_start
                with open(self._store.path(sha), "rb") as fh:
                    fh.seek(off + lo)
                    chunks.append(fh.read(hi - lo))
            if seg_end >= end:
                break
            seg_start = seg_end
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._pos += len(data)
        return data

    def write(self, data: bytes) -> int:
        self._check()
        spool = self._spool if self._spool is not None else self._materialize()
        return spool.write(data)

    def truncate(self, size: int | None = None) -> int:
        self._check()
        if self._spool is None:
            import tempfile

            from moto.settings import get_s3_default_key_buffer_size

            pos = self._pos
            keep = pos if size is None else size
            if keep == 0:
                self._spool = tempfile.SpooledTemporaryFile(get_s3_default_key_buffer_size())
                self._spool.seek(pos)
                return 0
            self._materialize()
        return self._spool.truncate(size)

    def flush(self) -> None:
        if self._spool is not None:
            self._spool.flush()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
        self.closed = True

    def __repr__(self) -> str:
        return f"<BlobBuffer {len(self.segments)} segment(s) len={self.length}{' closed' if self.closed else ''}>"


def _closed_buffer() -> BlobBuffer:
    return BlobBuffer(None, None)


# Blob refs of keys whose buffer was hashed by a snapshot but not swapped (see below).
_PENDING_REFS: weakref.WeakKeyDictionary[Any, tuple[Any, Segments]] = weakref.WeakKeyDictionary()
_PENDING_LOCK = threading.Lock()


def _positionless_chunks(buf: Any) -> Callable[[int], bytes]:
    """A ``read(n)`` over a spooled buffer's content that never moves its file position.

    moto reads ``_value_buffer`` with seek()+read() and without the key's lock (the
    ETag property), possibly at the very moment a snapshot reads it, so snapshots must
    not use the shared position."""
    spool = buf._spool if isinstance(buf, BlobBuffer) else buf
    f = getattr(spool, "_file", None)
    if isinstance(f, io.BytesIO):
        data = f.getvalue()
        view = memoryview(data)
        pos = 0

        def read_mem(n: int) -> bytes:
            nonlocal pos
            chunk = bytes(view[pos : pos + n])
            pos += len(chunk)
            return chunk

        return read_mem
    fileno = getattr(f, "fileno", None)
    if fileno is not None:
        fd = fileno()
        size = os.fstat(fd).st_size
        off = 0

        def read_fd(n: int) -> bytes:
            nonlocal off
            chunk = os.pread(fd, min(n, size - off), off) if off < size else b""
            off += len(chunk)
            return chunk

        return read_fd
    spool.seek(0)  # unknown buffer type: best effort
    return spool.read


def _externalize_key(key: Any, store: BlobStore, *, swap: bool) -> Segments | None:
    """Make sure ``key``'s body is in the blob store; return its blob ref (None if disposed).

    ``swap=True`` (the request thread that created the key, after moto is done with it)
    also replaces the key's buffer by a :class:`BlobBuffer`, releasing the memory/temp
    file.  Snapshots use ``swap=False``: the key may still be in use by its request.
    The key's lock is held while reading so our own swap cannot close the buffer under
    a concurrent (optimistic) snapshot; moto disposing of the key meanwhile is retried."""
    for _attempt in range(5):
        buf = key._value_buffer
        if isinstance(buf, BlobBuffer):
            if buf.closed:
                return None
            if buf.ref is not None:
                return buf.ref
        elif getattr(buf, "closed", False):
            return None
        with _PENDING_LOCK:
            pending = _PENDING_REFS.get(key)
        if pending is not None and pending[0] is buf:
            ref = pending[1]
        else:
            try:
                with key.lock:
                    if key._value_buffer is not buf:
                        continue
                    sha, size = store.put_stream(_positionless_chunks(buf))
            except (OSError, ValueError):
                if key._value_buffer is not buf or getattr(buf, "closed", False):
                    continue  # replaced or disposed while we read: look again
                raise
            ref = ((sha, 0, size),) if size else ()
        if swap:
            with key.lock:
                if key._value_buffer is buf:
                    key._value_buffer = BlobBuffer(store, ref)
                    with contextlib.suppress(Exception):
                        buf.close()
            with _PENDING_LOCK:
                _PENDING_REFS.pop(key, None)
        else:
            with _PENDING_LOCK:
                _PENDING_REFS[key] = (buf, ref)
        return ref
    raise RuntimeError("S3 object body kept changing while it was being persisted")


def _composite_from_parts(key: Any, store: BlobStore, size: int | None = None) -> bool:
    """A completed multipart object is the concatenation of its parts, which are in the
    blob store already: point the object at their segments instead of writing (and
    hashing) its bytes again.  Checked by size and by the multipart ETag (the MD5 of the
    parts' MD5s, in order), so a completion that used a subset or another order of the
    parts falls back to storing the bytes."""
    mp = getattr(key, "multipart", None)
    if mp is None:
        return False
    try:
        parts = [mp.parts[n] for n in mp.partlist]
        refs = [p._value_buffer.stored_segments if isinstance(p._value_buffer, BlobBuffer) else None for p in parts]
        if not parts or any(r is None for r in refs):
            return False
        segments: Segments = tuple(seg for r in refs for seg in r)  # type: ignore[union-attr]
        if sum(seg[2] for seg in segments) != (key.contentsize if size is None else size):
            return False
        md5s = b"".join(bytes.fromhex(p.etag.strip('"')) for p in parts)
        expected = f"{hashlib.md5(md5s).hexdigest()}-{len(parts)}"  # noqa: S324 (the S3 ETag)
        if (key._etag or "").strip('"') != expected:
            return False
        if size is not None:  # from the value setter: the key is being constructed
            old = key.__dict__.get("_value_buffer")
            key._value_buffer = BlobBuffer(store, segments)
            key.contentsize = size
        else:
            with key.lock:
                old = key._value_buffer
                if isinstance(old, BlobBuffer) or getattr(old, "closed", False):
                    return False
                key._value_buffer = BlobBuffer(store, segments)
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        return True
    except Exception:  # never fail a request over an optimisation
        log.debug("multipart object stored as its own blob", exc_info=True)
        return False


def _new_fakekey(cls: type) -> Any:
    return cls.__new__(cls)


def _set_fakekey_state(obj: Any, state: dict[str, Any]) -> None:
    segments = state.pop("__riq_blob__", None)
    if segments and isinstance(segments[0], str):  # a single (sha, offset, length) of early snapshots
        segments = (tuple(segments),)
    obj.__dict__.update(state)
    obj.lock = threading.Lock()
    obj._value_buffer = _closed_buffer() if segments is None else BlobBuffer(_BLOB_STORE, segments)


_DICT_BASES = (dict, collections.defaultdict, collections.OrderedDict)


def _custom_pickling(t: type) -> bool:
    for klass in t.__mro__:
        if klass in _DICT_BASES or klass is object:
            continue
        if any(n in vars(klass) for n in ("__reduce__", "__reduce_ex__", "__getstate__", "__setstate__")):
            return True
    return False


def _reduce_dictsub(obj: Any) -> Any:
    factory = obj.default_factory if isinstance(obj, collections.defaultdict) else None
    state = (getattr(obj, "__dict__", None), factory, list(dict.items(obj)))
    return _new_dictsub, (type(obj),), state, None, None, _set_dictsub_state


def _new_dictsub(cls: type) -> Any:
    return cls.__new__(cls)


def _set_dictsub_state(obj: Any, state: tuple[Any, Any, list[tuple[Any, Any]]]) -> None:
    attrs, factory, items = state
    if attrs:
        obj.__dict__.update(attrs)
    if isinstance(obj, collections.defaultdict):
        obj.default_factory = factory
    setitem = collections.OrderedDict.__setitem__ if isinstance(obj, collections.OrderedDict) else dict.__setitem__
    for k, v in items:
        setitem(obj, k, v)


def _new_spooled(data: bytes, max_size: int) -> Any:
    import tempfile

    f = tempfile.SpooledTemporaryFile(max_size)
    f.write(data)
    f.seek(0)
    return f


# ------------------------------------------------------------------ local functions
# moto's backends hold lambdas/closures, e.g. ``defaultdict(lambda: defaultdict(dict))``
# created in ``__init__``.  They cannot be pickled by reference; write their code
# (marshal: Python-version specific, hence the python version in FORMAT), module and
# closure values instead.

_EMPTY_CELL = ("__riq_empty_cell__",)


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY_CELL


def _make_function(
    code: bytes, module: str, name: str, qualname: str, defaults: Any, kwdefaults: Any, cells: Any
) -> Any:
    mod = importlib.import_module(module) if module else None
    closure = None
    if cells is not None:
        closure = tuple(types.CellType() if v == _EMPTY_CELL else types.CellType(v) for v in cells)
    fn = types.FunctionType(marshal.loads(code), vars(mod) if mod else {}, name, defaults, closure)
    fn.__qualname__ = qualname
    fn.__kwdefaults__ = kwdefaults
    fn.__module__ = module
    return fn


def _dead() -> None:
    return None


def _make_weakref(referent: Any) -> Any:
    return _dead if referent is None else weakref.ref(referent)


# ------------------------------------------------------------------ cryptography objects
# moto's KMS, ACM, IAM, EC2 key pairs ... keep cryptography's (Rust) key/certificate
# objects, which do not pickle: write them as DER and load them back.


def _crypto_reducer(t: type) -> Callable[[Any], Any] | None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import types as asym

    if issubclass(t, asym.PrivateKeyTypes.__args__):  # type: ignore[attr-defined]
        return _reduce_private_key
    if issubclass(t, asym.PublicKeyTypes.__args__):  # type: ignore[attr-defined]
        return _reduce_public_key
    if issubclass(t, x509.Certificate):
        return _reduce_certificate
    if issubclass(t, x509.CertificateSigningRequest):
        return _reduce_csr
    return None


def _reduce_private_key(key: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return _load_private_key, (der,)


def _reduce_public_key(key: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _load_public_key, (der,)


def _reduce_certificate(cert: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    return _load_certificate, (cert.public_bytes(serialization.Encoding.DER),)


def _reduce_csr(csr: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    return _load_csr, (csr.public_bytes(serialization.Encoding.DER),)


def _load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, None)


def _load_public_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_public_key(der)


def _load_certificate(der: bytes) -> Any:
    from cryptography import x509

    return x509.load_der_x509_certificate(der)


def _load_csr(der: bytes) -> Any:
    from cryptography import x509

    return x509.load_der_x509_csr(der)


# ------------------------------------------------------------------ reducer registry

_EXTRA_REDUCERS: dict[type, Callable[[Any], Any]] = {}


def register_reducer(cls: type, reducer: Callable[[Any], Any]) -> None:
    """Let an extension make ``cls`` instances picklable (``reducer`` returns a reduce tuple)."""
    _EXTRA_REDUCERS[cls] = reducer
    _TYPE_KIND.clear()


# --------------------------------------------------------------------------- refs

_LOADER: _Restorer | None = None


def _load_ref(kind: str, *args: Any) -> Any:
    if _LOADER is None:
        raise PersistenceError("moto object reference unpickled outside a restore")
    return _LOADER.resolve(kind, *args)


# type classification cache: type -> (kind, pkg)
_TYPE_KIND: dict[type, tuple[str, str]] = {}

_moto: Any = None  # namespace with moto classes, filled by _import_moto()


def _import_moto() -> Any:
    global _moto
    if _moto is None:
        from types import SimpleNamespace

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


_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())


def _classify(t: type) -> tuple[str, str]:
    r = _TYPE_KIND.get(t)
    if r is not None:
        return r
    m = _import_moto()
    mod = getattr(t, "__module__", "") or ""
    pkg = mod.split(".")[1] if mod.startswith("moto.") and mod.count(".") >= 1 else ""
    if t in _EXTRA_REDUCERS:
        r = ("custom", pkg)
    elif issubclass(t, m.BaseBackend):
        r = ("backend", pkg)
    elif issubclass(t, m.BackendDict):
        r = ("bd", pkg)
    elif issubclass(t, m.AccountSpecificBackend):
        r = ("asb", pkg)
    elif issubclass(t, m.FakeKey):
        r = ("fakekey", pkg)
    elif issubclass(t, m.BaseModel):
        r = ("model", pkg)
    elif t is types.FunctionType:
        r = ("function", "")
    elif t in (weakref.WeakValueDictionary, weakref.WeakKeyDictionary, weakref.WeakSet, weakref.ref):
        r = ("weak", "")
    elif t is _LOCK_TYPE:
        r = ("lock", "")
    elif t is _RLOCK_TYPE:
        r = ("rlock", "")
    elif t.__name__ == "SpooledTemporaryFile" and t.__module__ == "tempfile":
        r = ("spooled", "")
    elif mod.startswith("cryptography.") and _crypto_reducer(t) is not None:
        r = ("crypto", "")
    elif issubclass(t, dict) and t not in _DICT_BASES and not _custom_pickling(t):
        # e.g. S3's _VersionedKeyStore (items() yields only the latest version and
        # __setitem__ appends) or SSM's ParameterDict (a defaultdict whose __init__ takes
        # arguments): the default dict-subclass pickling loses data or cannot load.
        r = ("dictsub", pkg)
    else:
        r = ("", pkg)
    _TYPE_KIND[t] = r
    return r


# ------------------------------------------------------------------ sharded collections
# Collections that can grow large are written one file per entry, so a request that
# touches one bucket re-pickles that bucket (and the small rest of the backend), not all
# of S3.  Requests record which entries they touch through a dict subclass installed in
# place of the backend's dict.

SHARDED: dict[tuple[str, str], tuple[str, ...]] = {
    ("moto.s3.models", "S3Backend"): ("buckets",),
    ("moto.logs.models", "LogsBackend"): ("groups",),
    ("moto.dynamodb.models", "DynamoDBBackend"): ("tables",),
    ("moto.sqs.models", "SQSBackend"): ("queues",),
}
_SHARDED_BY_TYPE: dict[type, tuple[str, ...]] = {}
_ALL_KEYS = "\x00*"  # "every entry" marker in dirty sets


def _configured_attrs(config: dict[tuple[str, str], tuple[str, ...]], cache: dict[type, tuple[str, ...]], t: type) -> tuple[str, ...]:
    attrs = cache.get(t)
    if attrs is None:
        attrs = ()
        for klass in t.__mro__:
            found = config.get((klass.__module__, klass.__name__))
            if found:
                attrs = found
                break
        cache[t] = attrs
    return attrs


def _sharded_attrs(backend: Any) -> tuple[str, ...]:
    return _configured_attrs(SHARDED, _SHARDED_BY_TYPE, type(backend))


def _shard_id(loc: tuple[str, str, str, str]) -> str:
    return hashlib.sha1(json.dumps(list(loc)).encode()).hexdigest()[:20]  # noqa: S324 (a name, not security)


class _ShardIndex:
    """Stands in the main file for a sharded collection: its keys, in order."""

    def __init__(self, keys: list[str]):
        self.keys = keys


class _TrackedDict(dict):  # type: ignore[type-arg]
    """A backend collection persisted one file per entry; notes the entries requests touch."""

    _riq_loc: tuple[str, str, str, str]

    def _touch(self, k: Any) -> None:
        ctx = getattr(_tls, "ctx", None)
        if ctx is not None and isinstance(k, str):
            ctx.shard_touch.append((self, k))

    def _touch_all(self) -> None:
        ctx = getattr(_tls, "ctx", None)
        if ctx is not None:
            ctx.shard_touch.append((self, _ALL_KEYS))

    def __getitem__(self, k: Any) -> Any:
        self._touch(k)
        return dict.__getitem__(self, k)

    def get(self, k: Any, default: Any = None) -> Any:
        self._touch(k)
        return dict.get(self, k, default)

    def __contains__(self, k: Any) -> bool:
        self._touch(k)
        return dict.__contains__(self, k)

    def __setitem__(self, k: Any, v: Any) -> None:
        self._touch(k)
        _adopt_entry(self, k, v)
        dict.__setitem__(self, k, v)

    def __delitem__(self, k: Any) -> None:
        self._touch(k)
        dict.__delitem__(self, k)

    def pop(self, k: Any, *default: Any) -> Any:
        self._touch(k)
        return dict.pop(self, k, *default)

    def setdefault(self, k: Any, default: Any = None) -> Any:
        self._touch(k)
        return dict.setdefault(self, k, default)

    def popitem(self) -> Any:
        self._touch_all()
        return dict.popitem(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._touch_all()
        dict.update(self, *args, **kwargs)

    def clear(self) -> None:
        self._touch_all()
        dict.clear(self)

    def __iter__(self) -> Any:
        self._touch_all()
        return dict.__iter__(self)

    def keys(self) -> Any:
        self._touch_all()
        return dict.keys(self)

    def values(self) -> Any:
        self._touch_all()
        return dict.values(self)

    def items(self) -> Any:
        self._touch_all()
        return dict.items(self)

    def copy(self) -> dict[Any, Any]:
        self._touch_all()
        return dict(dict.items(self))

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickled inline (an alias): a plain dict
        return dict, (dict(dict.items(self)),)


# Paged collections: a big dict of a sharded entry (an S3 bucket's keys) or of a backend
# (EC2's AMIs) is split into hash pages: one PUT re-pickles the ~1/256 of the bucket's
# keys in its page.

PAGED: dict[tuple[str, str], tuple[str, ...]] = {
    ("moto.s3.models", "FakeBucket"): ("keys",),
    # EC2's ~1 MB of default AMIs and their snapshots would otherwise be re-pickled by
    # every request that touches EC2 (each VPC, subnet, security group of a stack).
    ("moto.ec2.models", "EC2Backend"): ("amis", "snapshots"),
}
PAGE_COUNTS: dict[str, int] = {"amis": 16, "snapshots": 16}  # by attribute; default _PAGES
_PAGES = 256
_PAGED_BY_TYPE: dict[type, tuple[str, ...]] = {}


def _paged_attrs(obj: Any) -> tuple[str, ...]:
    return _configured_attrs(PAGED, _PAGED_BY_TYPE, type(obj))


def _page_of(k: str, pages: int = _PAGES) -> str:
    return f"{zlib.crc32(k.encode('utf-8', 'surrogatepass')) % pages:03d}"


class _PagedIndex:
    """Stands in an entry's file for a paged collection (the pages are separate files)."""

    def __init__(self, base: type, pages: int = _PAGES):
        self.base = base
        self.pages = pages


class _PageTrackMixin:
    """Mixed into the class of a paged collection (S3's ``_VersionedKeyStore``): notes
    the keys a request touches.  ``__iter__`` is deliberately not overridden: that would
    take CPython's ``dict(store)`` off its fast path and change what moto gets."""

    _riq_loc: tuple[str, ...]
    _riq_base: type

    def _touch(self, k: Any) -> None:
        ctx = getattr(_tls, "ctx", None)
        if ctx is not None and isinstance(k, str):
            ctx.shard_touch.append((self, k))

    def _touch_all(self) -> None:
        ctx = getattr(_tls, "ctx", None)
        if ctx is not None:
            ctx.shard_touch.append((self, _ALL_KEYS))

    def __getitem__(self, k: Any) -> Any:
        self._touch(k)
        return super().__getitem__(k)  # type: ignore[misc]

    def __setitem__(self, k: Any, v: Any) -> None:
        self._touch(k)
        super().__setitem__(k, v)  # type: ignore[misc]

    def __delitem__(self, k: Any) -> None:
        self._touch(k)
        super().__delitem__(k)  # type: ignore[misc]

    def __contains__(self, k: Any) -> bool:
        self._touch(k)
        return super().__contains__(k)  # type: ignore[misc]

    def get(self, k: Any, *a: Any, **kw: Any) -> Any:
        self._touch(k)
        return super().get(k, *a, **kw)  # type: ignore[misc]

    def pop(self, k: Any, *a: Any) -> Any:
        self._touch(k)
        return super().pop(k, *a)  # type: ignore[misc]

    def setdefault(self, k: Any, *a: Any) -> Any:
        self._touch(k)
        return super().setdefault(k, *a)  # type: ignore[misc]

    def getlist(self, k: Any, *a: Any, **kw: Any) -> Any:
        self._touch(k)
        return super().getlist(k, *a, **kw)  # type: ignore[misc]

    def setlist(self, k: Any, *a: Any, **kw: Any) -> Any:
        self._touch(k)
        return super().setlist(k, *a, **kw)  # type: ignore[misc]

    def update(self, *a: Any, **kw: Any) -> None:
        self._touch_all()
        super().update(*a, **kw)  # type: ignore[misc]

    def clear(self) -> None:
        self._touch_all()
        super().clear()  # type: ignore[misc]

    def popitem(self) -> Any:
        self._touch_all()
        return super().popitem()  # type: ignore[misc]

    # Whoever walks the whole collection may change any entry (moto modifies an AMI
    # found through describe_images): every page is then rewritten.
    def keys(self) -> Any:
        self._touch_all()
        return super().keys()  # type: ignore[misc]

    def values(self) -> Any:
        self._touch_all()
        return super().values()  # type: ignore[misc]

    def items(self) -> Any:
        self._touch_all()
        return super().items()  # type: ignore[misc]

    def copy(self) -> Any:
        self._touch_all()
        return super().copy()  # type: ignore[misc]

    def lists(self) -> Any:
        self._touch_all()
        return super().lists()  # type: ignore[misc]

    iteritems = items
    itervalues = values
    iterlists = lists

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickled inline (an alias): as the base class
        state = (getattr(self, "__dict__", None), None, list(dict.items(self)))  # type: ignore[call-overload]
        return _new_dictsub, (self._riq_base,), state, None, None, _set_dictsub_state


_TRACKED_CLASSES: dict[type, type] = {}


def _trackable(coll: Any) -> bool:
    return isinstance(coll, dict) and all(isinstance(k, str) for k in dict.keys(coll))


def _as_tracked_store(store: Any, loc: tuple[str, ...]) -> Any:
    """``store`` as an instance of its tracked class, noting touches under ``loc``."""
    if isinstance(store, _PageTrackMixin):
        store._riq_loc = loc
        return store
    cls = _tracked_class(type(store))
    new = cls.__new__(cls)
    if getattr(store, "__dict__", None):
        new.__dict__.update(store.__dict__)
    for k, v in dict.items(store):
        dict.__setitem__(new, k, v)
    new._riq_loc = loc
    return new


def _adopt_entry(coll: Any, k: Any, v: Any) -> None:
    """A new entry of a sharded collection (a bucket being created): track its paged
    collections from the start, before other requests can reach it."""
    loc = getattr(coll, "_riq_loc", None)
    if loc is None or not isinstance(k, str) or not hasattr(v, "__dict__"):
        return
    for attr2 in _paged_attrs(v):
        store = vars(v).get(attr2)
        want = (*loc, k, attr2)
        if isinstance(store, _PageTrackMixin) and getattr(store, "_riq_loc", None) == want:
            continue
        if _trackable(store):
            vars(v)[attr2] = _as_tracked_store(store, want)


def _tracked_class(base: type) -> type:
    cls = _TRACKED_CLASSES.get(base)
    if cls is None:
        cls = type(f"_Tracked{base.__name__}", (_PageTrackMixin, base), {"_riq_base": base})
        _TRACKED_CLASSES[base] = cls
    return cls


def _new_model(cls: type) -> Any:
    return cls.__new__(cls)


# ------------------------------------------------------------------ commit session


class _Session:
    """Lookup tables for one commit (built under the exclusive lock)."""

    def __init__(self, owner: Persistence):
        self.owner = owner
        m = _import_moto()
        self.backend_loc: dict[int, tuple[str, str, str]] = {}
        self.asb_loc: dict[int, tuple[str, str]] = {}
        self.pkg_backends: dict[str, list[tuple[str, str, str, Any]]] = {}
        for bd in list(m.BackendDict._instances):
            key = owner.bd_key(bd)
            if key is None:
                continue
            pkg = _pkg_of_bd(bd)
            for acct, asb in dict.items(bd):
                self.asb_loc[id(asb)] = (key, acct)
                for region, be in dict.items(asb):
                    self.backend_loc[id(be)] = (key, acct, region)
                    self.pkg_backends.setdefault(pkg, []).append((key, acct, region, be))
        self.indexes: dict[tuple[int, bool], dict[int, tuple]] = {}
        # dependency graph of model references (key -> keys), overlaid as files are pickled
        self.deps: dict[str, set[str]] = {k: set(v.get("deps", ())) for k, v in owner.manifest["services"].items()}

    def index(self, backend: Any, deep: bool) -> dict[int, tuple]:
        k = (id(backend), deep)
        idx = self.indexes.get(k)
        if idx is None:
            idx = _build_index(backend, deep)
            self.indexes[k] = idx
        return idx

    def locate_model(self, obj: Any, pkg: str) -> tuple[str, str, str, tuple] | None:
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
            if k in seen:
                continue
            seen.add(k)
            todo.extend(self.deps.get(k, ()))
        return False


def _pkg_of_bd(bd: Any) -> str:
    mod = bd.backend.__module__
    return mod.split(".")[1] if mod.startswith("moto.") else mod


_SIMPLE_KEY_TYPES = (str, int, bytes, type(None), bool, float)


def _simple_key(k: Any) -> bool:
    if isinstance(k, _SIMPLE_KEY_TYPES) or isinstance(k, type):
        return True
    if isinstance(k, tuple):
        return all(_simple_key(x) for x in k)
    return False


def _build_index(backend: Any, deep: bool) -> dict[int, tuple]:
    """id(model) -> path from ``backend`` for models reachable through containers
    (and, if ``deep``, through other models' attributes)."""
    m = _import_moto()
    skip = (m.BaseBackend, m.BackendDict, m.AccountSpecificBackend)
    atoms = (str, bytes, int, float, bool, type(None), type)
    index: dict[int, tuple] = {}
    seen: set[int] = {id(backend)}
    todo: list[tuple[Any, tuple, int]] = [(v, (("a", k),), 1) for k, v in vars(backend).items()]
    todo.reverse()
    while todo:
        obj, path, depth = todo.pop()
        if isinstance(obj, atoms) or isinstance(obj, skip):
            continue
        oid = id(obj)
        if oid in seen:
            continue
        seen.add(oid)
        if isinstance(obj, m.BaseModel):
            index[oid] = path
            if not deep:
                continue
        if depth >= _INDEX_MAX_DEPTH:
            continue
        children: list[tuple[Any, tuple, int]] = []
        if isinstance(obj, dict):
            for k, v in dict.items(obj):
                if _simple_key(k):
                    children.append((v, (*path, ("k", k)), depth + 1))
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                children.append((v, (*path, ("i", i)), depth + 1))
        else:
            d = getattr(obj, "__dict__", None)
            if isinstance(d, dict) and not callable(obj):
                for k, v in d.items():
                    children.append((v, (*path, ("a", k)), depth + 1))
        children.reverse()
        todo.extend(children)
    return index


def _follow(obj: Any, path: Iterable[tuple[str, Any]]) -> Any:
    for kind, k in path:
        if kind == "a":
            obj = vars(obj)[k]
        elif kind == "k":
            obj = dict.__getitem__(obj, k) if isinstance(obj, dict) else obj[k]
        else:
            obj = obj[k]
    return obj


class _Pickler(pickle.Pickler):
    def __init__(
        self,
        file: Any,
        session: _Session,
        key: str,
        pkg: str,
        shard_roots: dict[int, tuple[str, str, str, str]] | None = None,
        own_root: Any = None,
        root_override: dict[str, Any] | None = None,
    ):
        super().__init__(file, protocol=5)
        self.session = session
        self.key = key
        self.pkg = pkg
        self.shard_roots = shard_roots or {}
        self.own_root = id(own_root) if own_root is not None else None
        self.root_override = root_override
        self.refs: set[str] = set()  # other services referenced (must be saved in this commit)
        self.deps: set[str] = set()  # services whose models are referenced by path (load first)
        self.blobs: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:  # noqa: C901
        t = type(obj)
        kind, pkg = _TYPE_KIND.get(t) or _classify(t)
        if not kind:
            return NotImplemented
        s = self.session
        if self.shard_roots and kind == "model":
            if id(obj) == self.own_root:
                if self.root_override:  # the entry itself, its paged collections left out
                    return _new_model, (t,), {**vars(obj), **self.root_override}
            else:
                sloc = self.shard_roots.get(id(obj))
                if sloc is not None:
                    return _load_ref, ("S", self.key, *sloc)
        if kind in ("model", "fakekey") and pkg != self.pkg and pkg:
            loc = s.locate_model(obj, pkg)
            if loc is not None:
                okey, acct, region, path = loc
                if okey != self.key and not s.reaches(okey, self.key):
                    self.refs.add(okey)
                    self.deps.add(okey)
                    s.deps.setdefault(self.key, set()).add(okey)
                    return _load_ref, ("M", okey, acct, region, path, t.__qualname__)
        if kind == "fakekey":
            store = self.session.owner.blobs
            ref = _externalize_key(obj, store, swap=False)
            if ref:
                self.blobs.update(seg[0] for seg in ref)
            state = {k: v for k, v in obj.__dict__.items() if k not in ("_value_buffer", "lock")}
            state["__riq_blob__"] = ref
            return _new_fakekey, (t,), state, None, None, _set_fakekey_state
        if kind == "model":
            return NotImplemented
        if kind == "backend":
            loc3 = s.backend_loc.get(id(obj))
            if loc3 is None:
                return NotImplemented
            if loc3[0] != self.key:
                self.refs.add(loc3[0])
            return _load_ref, ("B", *loc3)
        if kind == "asb":
            loc2 = s.asb_loc.get(id(obj))
            if loc2 is None:
                return NotImplemented
            if loc2[0] != self.key:
                self.refs.add(loc2[0])
            return _load_ref, ("A", *loc2)
        if kind == "bd":
            k = s.owner.bd_key(obj)
            if k is None:
                return NotImplemented
            return _load_ref, ("D", k)
        if kind == "lock":
            return threading.Lock, ()
        if kind == "rlock":
            return _RLOCK_TYPE, ()
        if kind == "spooled":
            pos = obj.tell()
            obj.seek(0)
            data = obj.read()
            obj.seek(pos)
            return _new_spooled, (data, obj._max_size)
        if kind == "dictsub":
            return _reduce_dictsub(obj)
        if kind == "function":
            qn = obj.__qualname__
            if "<locals>" not in qn and "<lambda>" not in qn:
                return NotImplemented  # importable: pickled by reference
            cells = None
            if obj.__closure__:
                cells = tuple(_cell_value(c) for c in obj.__closure__)
            return _make_function, (
                marshal.dumps(obj.__code__),
                obj.__module__,
                obj.__name__,
                qn,
                obj.__defaults__,
                obj.__kwdefaults__,
                cells,
            )
        if kind == "weak":
            if t is weakref.ref:
                return _make_weakref, (obj(),)
            if t is weakref.WeakSet:
                return t, (list(obj),)
            return t, (dict(obj.items()),)
        if kind == "crypto":
            return _crypto_reducer(t)(obj)  # type: ignore[misc]
        if kind == "custom":
            return _EXTRA_REDUCERS[t](obj)
        return NotImplemented


# ------------------------------------------------------------------ restore


class _Restorer:
    def __init__(self, owner: Persistence):
        self.owner = owner
        self.placeholders: dict[int, tuple[Any, str, str, Any]] = {}
        self.filled: set[int] = set()
        self.unresolved = 0
        self.shards: dict[tuple[str, str, str, str, str], Any] = {}
        self.loading: set[tuple[str, str, str, str, str]] = set()

    def backend(self, key: str, acct: str, region: str) -> Any:
        bd = self.owner.bd_by_key(key)
        self.owner._hook_backend_class(bd.backend)
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
            key, acct = args
            return self.owner.bd_by_key(key)[acct]
        if kind == "D":
            return self.owner.bd_by_key(args[0])
        if kind == "S":
            return self.load_shard(args[0], tuple(args[1:]))  # type: ignore[arg-type]
        if kind == "M":
            key, acct, region, path, qualname = args
            try:
                obj = _follow(self.backend(key, acct, region), path)
                if type(obj).__qualname__ != qualname:
                    raise LookupError(f"found {type(obj).__qualname__}")
                return obj
            except Exception as exc:  # pragma: no cover - defensive
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

    def load_shard(self, key: str, loc: tuple[str, str, str, str]) -> Any:
        full = (key, *loc)
        if full in self.shards:
            return self.shards[full]
        if full in self.loading:  # a reference cycle between entries: not produced in practice
            self.unresolved += 1
            log.warning("reference cycle through %s %s; left unresolved", key, loc)
            return None
        entry = self.owner.manifest["services"][key].get("shards", {}).get(_shard_id(loc))
        if entry is None:
            raise PersistenceError(f"{key}: no file for entry {loc}")
        self.loading.add(full)
        try:
            _header, value = self._read(entry["file"])
            self.shards[full] = value  # before its pages, which may refer back to it
            for attr2, marker in list(vars(value).items()) if hasattr(value, "__dict__") else ():
                if isinstance(marker, _PagedIndex):
                    vars(value)[attr2] = self._load_pages(marker, entry.get("pages", {}), attr2, (key, *loc, attr2))
        finally:
            self.loading.discard(full)
        self.owner._shard_identity[full] = id(value)
        return value

    def _load_pages(self, marker: _PagedIndex, pages: dict[str, Any], attr: str, loc: tuple[str, ...]) -> Any:
        cls = _tracked_class(marker.base)
        store = cls.__new__(cls)
        store._riq_loc = loc
        prefix = f"{attr}/"
        index: dict[str, set[str]] = {}
        for pid in sorted(p for p in pages if p.startswith(prefix)):
            _ph, items = self._read(pages[pid]["file"])
            for k, v in items:
                dict.__setitem__(store, k, v)
            index[pid[len(prefix) :]] = {k for k, _v in items}
        if getattr(marker, "pages", _PAGES) == PAGE_COUNTS.get(attr, _PAGES):
            store._riq_pages = index  # else: the page count changed, the next commit re-pages it all
        return store

    def load_service(self, key: str) -> None:
        entry = self.owner.manifest["services"][key]
        _header, payload = self._read(entry["file"])
        bd = self.owner.bd_by_key(key)
        for (acct, region), state in payload["backends"].items():
            obj = self.backend(key, acct, region)
            d = obj.__dict__
            d.clear()
            d.update(state)
            bpages = entry.get("bpages", {}).get(f"{acct}|{region}", {})
            for attr, value in list(state.items()):
                if isinstance(value, _PagedIndex):
                    d[attr] = self._load_pages(value, bpages, attr, (key, acct, region, attr))
                elif isinstance(value, _ShardIndex):
                    coll = _TrackedDict()
                    coll._riq_loc = (key, acct, region, attr)
                    for k in value.keys:
                        dict.__setitem__(coll, k, self.load_shard(key, (acct, region, attr, k)))
                    d[attr] = coll
            self.filled.add(id(obj))
            self.owner._shard_identity[(key, acct, region)] = id(obj)
        for attr, value in payload.get("extra", {}).items():
            setattr(bd, attr, value)

    def finish(self) -> None:
        for oid, (obj, acct, region, _bd) in self.placeholders.items():
            if oid not in self.filled:
                log.warning("re-initialising %s %s %s (referenced but not persisted)", type(obj).__name__, acct, region)
                obj.__init__(region, acct)


# ------------------------------------------------------------------ locking


class _RWLock:
    """Many requests (shared) or one snapshot (exclusive).  No writer preference, and
    the writer only waits a bounded time (then snapshots optimistically), so a request
    that makes nested requests to the server cannot deadlock."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False

    def acquire_read(self) -> None:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    def try_exclusive(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for running requests to finish; True if now exclusive.

        Bounded, because a request may be waiting for this very commit: the local
        CloudFormation calls the server over HTTP from inside CreateStack, so the outer
        request holds the shared lock until its nested requests have committed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._writer or self._readers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            self._writer = True
            return True

    def release_exclusive(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


@dataclass
class _RequestContext:
    touched: dict[int, Any] = field(default_factory=dict)
    created_asbs: list[Any] = field(default_factory=list)
    new_keys: list[Any] = field(default_factory=list)
    extra_dirty: set[str] = field(default_factory=set)
    shard_touch: list[tuple[Any, str]] = field(default_factory=list)


_tls = threading.local()


def _ctx() -> _RequestContext | None:
    return getattr(_tls, "ctx", None)


@dataclass
class CommitStats:
    commits: int = 0
    services_written: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    last_ms: float = 0.0
    last_services: list[str] = field(default_factory=list)
    failures: int = 0
    retries: int = 0
    optimistic: int = 0
    files_written: int = 0
    last_files: int = 0
    lock_wait_seconds: float = 0.0


# ------------------------------------------------------------------ persistence


# service -> collection location ((acct, region, attr) or (acct, region, attr, entry, attr2)) -> keys
ShardDirty = dict[str, dict[tuple[str, ...], set[str]]]


@dataclass
class _PagePlan:
    markers: dict[str, Any] = field(default_factory=dict)  # attr -> _PagedIndex (in the entry's file)
    writes: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)  # page id -> items
    removed: set[str] = field(default_factory=set)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)
    needs_entry: bool = False


@dataclass
class _EntryWrite:
    sid: str
    loc: tuple[str, str, str, str]
    obj: Any
    prev: dict[str, Any] | None  # previous manifest entry (same object), if any
    data: bytes | None  # new entry file, or None to keep prev's
    header: dict[str, Any] | None
    pages: list[tuple[str, bytes, dict[str, Any]]]
    removed_pages: set[str]
    kept_pages: dict[str, dict[str, Any]]


@dataclass
class _ServiceWrite:
    main: bytes
    header: dict[str, Any]
    entries: list[_EntryWrite]
    kept: dict[str, dict[str, Any]]  # sid -> manifest entry of unchanged entries
    # (acct, region) -> (pages written, pages kept) of the backends' own paged collections
    bpages: dict[tuple[str, str], tuple[list[tuple[str, bytes, dict[str, Any]]], dict[str, dict[str, Any]]]]
    backend_ids: dict[tuple[str, str], int]


class Persistence:
    """Owns a state directory for the lifetime of one server process."""

    def __init__(self, state_dir: Path, *, fsync: bool | None = None):
        self.state_dir = Path(state_dir)
        if fsync is None:
            fsync = os.environ.get("RENTALIQ_LOCAL_FSYNC", "") not in ("", "0", "false", "no")
        self.fsync = fsync
        self.services_dir = self.state_dir / SERVICES_DIR
        self.blobs: BlobStore
        self.manifest: dict[str, Any] = {"format": FORMAT_VERSION, "generation": 0, "services": {}}
        self.blob_refs: dict[str, set[str]] = {}  # file name -> blobs it references
        self._shard_identity: dict[tuple[str, str, str, str, str], int] = {}  # id() of the entry last written
        self._lock_fd: int | None = None
        self._rw = _RWLock()
        self._commit_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: set[str] = set()
        self._pending_shards: ShardDirty = {}
        self._pending_all = False
        self._failed: dict[str, str] = {}  # service -> why its last snapshot failed
        self._seq = 0
        self._committed = 0
        self._bd_keys: dict[int, str | None] = {}
        self._bds: dict[str, Any] = {}
        self.stats = CommitStats()
        self._hooks_installed = False
        self._hooked_classes: set[type] = set()
        self._hook_lock = threading.Lock()
        self._active = 0
        self._active_cond = threading.Condition()
        self.closed = False

    # ---------------------------------------------------------------- setup

    def open(self) -> None:
        """Initialise/validate the state dir and take its lock."""
        global _BLOB_STORE, _CURRENT
        init_state_dir(self.state_dir)
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StateLockedError(
                f"state dir {self.state_dir} is in use by another local cloud server (pid {other})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        self.blobs = BlobStore(self.state_dir / BLOBS_DIR, fsync=self.fsync)
        _BLOB_STORE = self.blobs
        _CURRENT = self
        mpath = self.state_dir / MANIFEST_FILE
        if mpath.exists():
            try:
                manifest = json.loads(mpath.read_text())
            except ValueError as exc:
                raise StateFormatError(f"{mpath} is not valid JSON ({exc}); the state dir is damaged") from None
            if manifest.get("format") != FORMAT_VERSION:
                raise StateFormatError(
                    f"{mpath} has format {manifest.get('format')!r}, expected {FORMAT_VERSION}; move the state dir aside"
                )
            self.manifest = manifest

    def install_hooks(self) -> None:
        """Observe moto so requests can be attributed to the services they touch."""
        if self._hooks_installed:
            return
        m = _import_moto()
        bd_cls, asb_cls, fk_cls = m.BackendDict, m.AccountSpecificBackend, m.FakeKey

        orig_bd_getitem = bd_cls.__getitem__

        def bd_getitem(self_: Any, account_id: str) -> Any:
            ctx = getattr(_tls, "ctx", None)
            if ctx is not None:
                ctx.touched[id(self_)] = self_
            return orig_bd_getitem(self_, account_id)

        bd_cls.__getitem__ = bd_getitem

        orig_asb_getitem = asb_cls.__getitem__

        def asb_getitem(self_: Any, region_name: str) -> Any:
            region = "aws" if region_name == "global" else region_name
            if not dict.__contains__(self_, region):  # moto may create this backend now
                self._hook_backend_class(self_.backend)
                ctx = getattr(_tls, "ctx", None)
                if ctx is not None:
                    ctx.created_asbs.append(self_)
            return orig_asb_getitem(self_, region_name)

        asb_cls.__getitem__ = asb_getitem

        value_prop = fk_cls.value

        store = self.blobs

        def value_set(self_: Any, new_value: Any) -> None:
            # Write the body straight into the blob store instead of moto's spooled
            # temporary file: the bytes are written once, before the key is reachable,
            # and a completed multipart upload is not written at all (its parts are).
            with _PENDING_LOCK:
                _PENDING_REFS.pop(self_, None)
            try:
                if isinstance(new_value, str):
                    new_value = new_value.encode("utf-8")
                size = len(new_value)
                if getattr(self_, "multipart", None) is not None and _composite_from_parts(self_, store, size):
                    return
                sha, size = store.put_bytes(new_value)
                old = self_.__dict__.get("_value_buffer")
                self_._value_buffer = BlobBuffer(store, ((sha, 0, size),) if size else ())
                self_.contentsize = size
                if old is not None and old is not self_._value_buffer:
                    with contextlib.suppress(Exception):
                        old.close()
                return
            except Exception:
                log.warning("could not store an S3 body directly; using moto's buffer", exc_info=True)
            value_prop.fset(self_, new_value)
            ctx = getattr(_tls, "ctx", None)
            if ctx is not None:
                ctx.new_keys.append(self_)

        fk_cls.value = property(value_prop.fget, value_set, value_prop.fdel, value_prop.__doc__)
        for bd in list(bd_cls._instances):
            self._hook_backend_class(bd.backend)
        self._hooks_installed = True

    def _hook_backend_class(self, cls: type) -> None:
        """Make new backends of ``cls`` track their sharded/paged collections from
        ``__init__`` on (also after ``reset()``, which calls ``__init__``), so commits
        never have to swap a collection under a running request."""
        with self._hook_lock:
            if cls in self._hooked_classes:
                return
            self._hooked_classes.add(cls)
            if not (
                _configured_attrs(SHARDED, _SHARDED_BY_TYPE, cls) or _configured_attrs(PAGED, _PAGED_BY_TYPE, cls)
            ):
                return
            orig_init = cls.__init__
            persistence = self

            @functools.wraps(orig_init)
            def __init__(self_: Any, *args: Any, **kwargs: Any) -> None:
                orig_init(self_, *args, **kwargs)
                if type(self_) is cls:
                    persistence._adopt_backend(self_)

            cls.__init__ = __init__  # type: ignore[misc]

    def _adopt_backend(self, be: Any) -> None:
        key = self._key_for_class(type(be))
        if key is None:
            return
        acct, region = be.account_id, be.region_name
        d = vars(be)
        for attr in _sharded_attrs(be):
            coll = d.get(attr)
            if type(coll) in (dict, collections.OrderedDict) and _trackable(coll):
                tracked = _TrackedDict(dict.items(coll))
                tracked._riq_loc = (key, acct, region, attr)
                d[attr] = tracked
        for attr in _paged_attrs(be):
            if _trackable(d.get(attr)):
                d[attr] = _as_tracked_store(d[attr], (key, acct, region, attr))

    def _key_for_class(self, cls: type) -> str | None:
        m = _import_moto()
        for bd in list(m.BackendDict._instances) + list(self._bds.values()):
            if bd.backend is cls:
                return self.bd_key(bd)
        return None

    # ---------------------------------------------------------------- keys

    def bd_key(self, bd: Any) -> str | None:
        """``module:attr`` naming the module-level variable that holds ``bd``."""
        k = self._bd_keys.get(id(bd), "")
        if k != "":
            return k
        import sys

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
            for name, val in list(vars(mod).items()):
                if val is bd:
                    found = f"{modname}:{name}"
                    break
            if found:
                break
        if found is None:
            log.warning("cannot persist %s backends: no module-level name found", bd.service_name)
        self._bd_keys[id(bd)] = found
        if found:
            self._bds[found] = bd
        return found

    def bd_by_key(self, key: str) -> Any:
        bd = self._bds.get(key)
        if bd is None:
            modname, attr = key.split(":", 1)
            bd = getattr(importlib.import_module(modname), attr)
            self._bds[key] = bd
            self._bd_keys[id(bd)] = key
        return bd

    # ---------------------------------------------------------------- restore

    def restore(self) -> dict[str, Any]:
        """Load the snapshot into moto's backends. Returns a small report."""
        global _LOADER
        t0 = time.perf_counter()
        services = self.manifest["services"]
        order = _topo_order({k: set(v.get("deps", ())) for k, v in services.items()})
        restorer = _Restorer(self)
        _LOADER = restorer
        try:
            for key in order:
                try:
                    restorer.load_service(key)
                except Exception as exc:
                    raise StateFormatError(
                        f"cannot restore {key} from {self.services_dir}: {type(exc).__name__}: {exc}"
                    ) from exc
            restorer.finish()
        finally:
            _LOADER = None
        self._cleanup_orphans()
        removed, freed = self.blobs.gc(self._referenced_blobs())
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

    def _referenced_blobs(self) -> set[str]:
        out: set[str] = set()
        for refs in self.blob_refs.values():
            out |= refs
        return out

    def _current_files(self) -> set[str]:
        files = set()
        for entry in self.manifest["services"].values():
            files.add(entry["file"])
            for pages in entry.get("bpages", {}).values():
                files.update(p["file"] for p in pages.values())
            for shard in entry.get("shards", {}).values():
                files.add(shard["file"])
                files.update(p["file"] for p in shard.get("pages", {}).values())
        return files

    def _cleanup_orphans(self) -> None:
        current = self._current_files()
        for f in self.services_dir.iterdir():
            if f.name not in current:
                with contextlib.suppress(OSError):
                    f.unlink()
        for f in self.state_dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                f.unlink()
        for name in list(self.blob_refs):
            if name not in current:
                del self.blob_refs[name]

    # ---------------------------------------------------------------- commits

    def mark_dirty(self, *services: Any) -> None:
        """Mark services (BackendDict objects or ``module:attr`` keys) for the next commit.

        Inside a request they are committed with it; elsewhere (background threads of
        extensions) call :meth:`commit` afterwards."""
        keys = {s if isinstance(s, str) else self.bd_key(s) for s in services}
        keys.discard(None)
        ctx = _ctx()
        if ctx is not None:
            ctx.extra_dirty |= keys  # type: ignore[arg-type]
        else:
            self._enqueue(keys, {})  # type: ignore[arg-type]

    def _enqueue(self, keys: set[str] | str, shards: ShardDirty) -> int:
        with self._pending_lock:
            if keys == ALL:
                self._pending_all = True
            else:
                self._pending |= keys  # type: ignore[operator]
            for svc, colls in shards.items():
                mine = self._pending_shards.setdefault(svc, {})
                for coll, ks in colls.items():
                    mine.setdefault(coll, set()).update(ks)
            self._seq += 1
            return self._seq

    def commit(self, through: int | None = None) -> None:
        """Write every pending change (group commit: one writer, many waiters)."""
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
                        for svc, colls in shards.items():
                            mine = self._pending_shards.setdefault(svc, {})
                            for coll, ks in colls.items():
                                mine.setdefault(coll, set()).update(ks)
                    raise
            self._committed = target

    def snapshot_all(self) -> None:
        self.commit(self._enqueue(ALL, {}))

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the shared lock while a background thread (the local CloudFormation's operation worker)
        changes moto state, as a request does, so a commit never pickles that state half-changed.
        Commit afterwards, outside the block: ``mark_dirty(...)`` then ``commit()``."""
        self._rw.acquire_read()
        try:
            yield
        finally:
            self._rw.release_read()

    def _commit(self, dirty: set[str] | str, shards: ShardDirty) -> None:
        t0 = time.perf_counter()
        for attempt in range(_OPTIMISTIC_ATTEMPTS):
            tw = time.perf_counter()
            exclusive = self._rw.try_exclusive(_EXCLUSIVE_WAIT)
            self.stats.lock_wait_seconds += time.perf_counter() - tw
            if not exclusive:
                self.stats.optimistic += 1
            try:
                writes, removed, failed = self._pickle_phase(dirty, shards, exclusive)
                break
            except PersistenceError:
                raise
            except RuntimeError as exc:
                # Only possible without the exclusive lock: another request changed a
                # dict while it was being pickled.  Take a fresh snapshot.
                if exclusive or type(exc) is not RuntimeError or attempt == _OPTIMISTIC_ATTEMPTS - 1:
                    raise PersistenceError(f"cannot snapshot: {exc}") from exc
                self.stats.retries += 1
                time.sleep(0.005 * (attempt + 1))
            finally:
                if exclusive:
                    self._rw.release_exclusive()
        self._write_phase(writes, removed, t0)
        with self._pending_lock:
            for key in writes:
                self._failed.pop(key, None)
            for key in removed:
                self._failed.pop(key, None)
            self._failed.update(failed)

    def failed_among(self, keys: set[str] | str) -> dict[str, str]:
        """Services among ``keys`` whose last snapshot attempt failed (their file is stale)."""
        with self._pending_lock:
            if keys == ALL:
                return dict(self._failed)
            return {k: v for k, v in self._failed.items() if k in keys}

    def _pickle_phase(
        self, dirty: set[str] | str, shards: ShardDirty, exclusive: bool
    ) -> tuple[dict[str, _ServiceWrite], list[str], dict[str, str]]:
        """Pickle what changed. A service that cannot be pickled keeps its previous files
        and is reported in the third value; the others are still written."""
        m = _import_moto()
        writes: dict[str, _ServiceWrite] = {}
        removed: list[str] = []
        failed: dict[str, str] = {}
        session = _Session(self)
        full = dirty == ALL
        if full:
            todo = [k for k in (self.bd_key(bd) for bd in list(m.BackendDict._instances)) if k]
            todo += [k for k in self.manifest["services"] if k not in todo]
        else:
            todo = sorted(dirty)  # type: ignore[arg-type]
        queued = set(todo)
        while todo:
            key = todo.pop(0)
            try:
                w = self._pickle_service(key, session, full, shards.get(key, {}), exclusive)
            except PersistenceError as exc:
                failed[key] = str(exc)
                session.deps[key] = set(self.manifest["services"].get(key, {}).get("deps", ()))
                continue
            if w is None:
                if key in self.manifest["services"]:
                    removed.append(key)
                session.deps.pop(key, None)
                continue
            writes[key] = w
            refs = set(w.header["refs"])
            for e in w.entries:
                if e.header:
                    refs.update(e.header["refs"])
                for _pid, _pdata, pheader in e.pages:
                    refs.update(pheader["refs"])
            for written, _kept in w.bpages.values():
                for _pid, _pdata, pheader in written:
                    refs.update(pheader["refs"])
            for ref in sorted(refs):
                if ref not in queued:
                    queued.add(ref)
                    todo.append(ref)
        return writes, removed, failed

    def _pickle_service(
        self,
        key: str,
        session: _Session,
        full: bool,
        dirty_colls: dict[tuple[str, ...], set[str]],
        exclusive: bool,
    ) -> _ServiceWrite | None:
        bd = self.bd_by_key(key)
        backends = [
            (acct, region, be) for acct, asb in list(dict.items(bd)) for region, be in list(dict.items(asb))
        ]
        if not backends:
            return None
        pkg = _pkg_of_bd(bd)
        old_shards: dict[str, dict[str, Any]] = self.manifest["services"].get(key, {}).get("shards", {})
        kept: dict[str, dict[str, Any]] = {}
        plans: list[tuple[str, tuple[str, str, str, str], Any, dict[str, Any] | None, bool, _PagePlan]] = []
        shard_roots: dict[int, tuple[str, str, str, str]] = {}
        states: dict[tuple[str, str], dict[str, Any]] = {}
        old_bpages: dict[str, dict[str, Any]] = self.manifest["services"].get(key, {}).get("bpages", {})
        bplans: dict[tuple[str, str], _PagePlan] = {}
        for acct, region, be in backends:
            bprev = old_bpages.get(f"{acct}|{region}")
            same_b = bprev is not None and self._shard_identity.get((key, acct, region)) == id(be)
            bplan = self._page_plan(
                key, (acct, region), be, {"pages": bprev} if same_b else None, dirty_colls, full, exclusive
            )
            bplans[(acct, region)] = bplan
            state = dict(vars(be))
            state.update(bplan.markers)
            for attr in _sharded_attrs(be):
                coll, tracked = self._tracked_collection(key, acct, region, be, attr, exclusive)
                if coll is None:
                    continue
                keys = list(dict.keys(coll))
                state[attr] = _ShardIndex(keys)
                touched = dirty_colls.get((acct, region, attr), set())
                everything = full or not tracked or _ALL_KEYS in touched
                for k in keys:
                    obj = dict.__getitem__(coll, k)
                    loc = (acct, region, attr, k)
                    sid = _shard_id(loc)
                    shard_roots[id(obj)] = loc
                    prev = old_shards.get(sid)
                    same = prev is not None and self._shard_identity.get((key, *loc)) == id(obj)
                    plan = self._page_plan(key, loc, obj, prev if same else None, dirty_colls, full, exclusive)
                    write_entry = everything or not same or k in touched or plan.needs_entry
                    if write_entry or plan.writes or plan.removed:
                        plans.append((sid, loc, obj, prev if same else None, write_entry, plan))
                    else:
                        kept[sid] = prev  # type: ignore[assignment]
            states[(acct, region)] = state
        session.deps[key] = set().union(*(set(e.get("deps", ())) for e in kept.values()))
        std = {"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"}
        extra = {k: v for k, v in vars(bd).items() if k not in std}
        main, header = self._dump(key, pkg, session, {"backends": states, "extra": extra}, shard_roots, None)
        header["backends"] = sorted([a, r] for a, r in states)
        entries = []
        for sid, loc, obj, prev, write_entry, plan in plans:
            data = eheader = None
            if write_entry:
                data, eheader = self._dump(key, pkg, session, obj, shard_roots, obj, plan.markers)
                eheader["shard"] = list(loc)
            pages = []
            for pid, items in plan.writes:
                pdata, pheader = self._dump(key, pkg, session, items, shard_roots, None)
                pheader["page"] = [*loc, pid]
                pages.append((pid, pdata, pheader))
            entries.append(_EntryWrite(sid, loc, obj, prev, data, eheader, pages, plan.removed, plan.kept))
        bpages: dict[tuple[str, str], tuple[list[tuple[str, bytes, dict[str, Any]]], dict[str, dict[str, Any]]]] = {}
        for (acct, region), bplan in bplans.items():
            written = []
            for pid, items in bplan.writes:
                pdata, pheader = self._dump(key, pkg, session, items, shard_roots, None)
                pheader["page"] = [acct, region, pid]
                written.append((pid, pdata, pheader))
            bpages[(acct, region)] = (written, bplan.kept)
        backend_ids = {(acct, region): id(be) for acct, region, be in backends}
        return _ServiceWrite(main, header, entries, kept, bpages, backend_ids)

    def _page_plan(
        self,
        key: str,
        loc: tuple[str, str, str, str],
        obj: Any,
        prev: dict[str, Any] | None,
        dirty_colls: dict[tuple[str, ...], set[str]],
        full: bool,
        exclusive: bool,
    ) -> _PagePlan:
        plan = _PagePlan()
        old_pages: dict[str, dict[str, Any]] = (prev or {}).get("pages", {})
        for attr2 in _paged_attrs(obj):
            store = vars(obj).get(attr2)
            tracked = isinstance(store, _PageTrackMixin) and getattr(store, "_riq_loc", None) == (key, *loc, attr2)
            if not tracked:
                if not isinstance(store, dict) or not all(isinstance(k, str) for k in dict.keys(store)):
                    continue  # not pageable: stays inside the entry's own file
                if isinstance(store, _PageTrackMixin):  # tracked under another address: re-address
                    store._riq_loc = (key, *loc, attr2)
                elif exclusive:  # (swapping under a running request could lose its write)
                    vars(obj)[attr2] = store = _as_tracked_store(store, (key, *loc, attr2))
            base = type(store)._riq_base if isinstance(store, _PageTrackMixin) else type(store)
            npages = PAGE_COUNTS.get(attr2, _PAGES)
            plan.markers[attr2] = _PagedIndex(base, npages)
            prefix = f"{attr2}/"
            mine = {pid: e for pid, e in old_pages.items() if pid.startswith(prefix)}
            if prev is not None and not any(pid.startswith(prefix) for pid in prev.get("pages", {})) and dict.__len__(store):
                plan.needs_entry = True  # the entry's file predates paging of this attribute
            touched = dirty_colls.get((*loc, attr2), set())
            index = getattr(store, "_riq_pages", None) if tracked else None
            if full or prev is None or not tracked or _ALL_KEYS in touched or index is None:
                dirty_pages = None  # all
            else:
                dirty_pages = {_page_of(k, npages) for k in touched}
                if not dirty_pages:
                    plan.kept.update(mine)
                    continue
            groups: dict[str, list[str]] = {}
            if dirty_pages is None:  # full scan; (re)build the page index
                pages_index: dict[str, set[str]] = {}
                for k in dict.keys(store):
                    p = _page_of(k, npages)
                    pages_index.setdefault(p, set()).add(k)
                    groups.setdefault(p, []).append(k)
                if isinstance(store, _PageTrackMixin):
                    store._riq_pages = pages_index  # type: ignore[attr-defined]
            else:  # only the touched pages: O(touched + page size), not O(bucket)
                for k in touched:
                    index.setdefault(_page_of(k, npages), set()).add(k)  # type: ignore[union-attr]
                for p in dirty_pages:
                    members = index.get(p, set())  # type: ignore[union-attr]
                    members.intersection_update([k for k in members if dict.__contains__(store, k)])
                    if members:
                        groups[p] = sorted(members)
            for p, ks in sorted(groups.items()):
                plan.writes.append((prefix + p, [(k, dict.__getitem__(store, k)) for k in ks]))
            considered = set(mine) if dirty_pages is None else {prefix + p for p in dirty_pages}
            written = {prefix + p for p in groups}
            plan.removed |= {pid for pid in mine if pid in considered and pid not in written}
            plan.kept.update({pid: e for pid, e in mine.items() if pid not in considered})
        return plan

    def _tracked_collection(
        self, key: str, acct: str, region: str, be: Any, attr: str, exclusive: bool
    ) -> tuple[Any, bool]:
        """(collection, was it already tracked?) for a shardable attribute, or (None, False)."""
        coll = vars(be).get(attr)
        if isinstance(coll, _TrackedDict):
            if getattr(coll, "_riq_loc", None) == (key, acct, region, attr):
                return coll, True
            coll._riq_loc = (key, acct, region, attr)
            return coll, False
        if type(coll) not in (dict, collections.OrderedDict):
            return None, False
        if not all(isinstance(k, str) for k in dict.keys(coll)):
            return None, False
        if exclusive:  # swapping the dict under a running request could lose its write
            tracked = _TrackedDict(dict.items(coll))
            tracked._riq_loc = (key, acct, region, attr)
            vars(be)[attr] = tracked
            return tracked, False
        return coll, False

    def _dump(
        self,
        key: str,
        pkg: str,
        session: _Session,
        obj: Any,
        shard_roots: dict[int, tuple[str, str, str, str]],
        own_root: Any,
        root_override: dict[str, Any] | None = None,
    ) -> tuple[bytes, dict[str, Any]]:
        buf = io.BytesIO()
        pickler = _Pickler(buf, session, key, pkg, shard_roots, own_root, root_override)
        try:
            pickler.dump(obj)
        except RuntimeError as exc:
            if type(exc) is RuntimeError and "changed size during iteration" in str(exc):
                raise  # transient (optimistic snapshot), retried by _commit
            self._unpicklable(key, pkg, obj, session, exc)
        except Exception as exc:
            self._unpicklable(key, pkg, obj, session, exc)
        session.deps.setdefault(key, set()).update(pickler.deps)
        header = {
            "service": key,
            "deps": sorted(pickler.deps),
            "refs": sorted(pickler.refs),
            "blobs": sorted(pickler.blobs),
        }
        return buf.getvalue(), header

    def _unpicklable(self, key: str, pkg: str, payload: Any, session: _Session, exc: Exception) -> None:
        self.stats.failures += 1
        where = _find_unpicklable(payload, session, key, pkg)
        log.error("cannot snapshot %s: %s: %s (at %s)", key, type(exc).__name__, exc, where)
        raise PersistenceError(f"cannot snapshot {key}: {type(exc).__name__}: {exc}") from exc

    def _write_phase(self, writes: dict[str, _ServiceWrite], removed: list[str], t0: float) -> None:
        gen = self.manifest["generation"] + 1
        services = dict(self.manifest["services"])
        old_files: list[str] = []
        new_refs: dict[str, set[str]] = {}
        nbytes = nfiles = 0

        def write(fname: str, header: dict[str, Any], data: bytes) -> None:
            nonlocal nbytes, nfiles
            hdr = json.dumps({**header, "generation": gen}, separators=(",", ":")).encode() + b"\n"
            _write_new(self.services_dir / fname, hdr, data, fsync=self.fsync)
            new_refs[fname] = set(header["blobs"])
            nbytes += len(hdr) + len(data)
            nfiles += 1

        for key, w in writes.items():
            safe = _safe(key)
            old = services.get(key, {})
            fname = f"{safe}.{gen}.pkl"
            write(fname, w.header, w.main)
            shards = dict(w.kept)
            for e in w.entries:
                if e.data is not None:
                    efile = f"{safe}~{e.sid}.{gen}.pkl"
                    write(efile, e.header, e.data)  # type: ignore[arg-type]
                    edeps = set(e.header["deps"])  # type: ignore[index]
                else:
                    efile = e.prev["file"]  # type: ignore[index]
                    edeps = set(e.prev.get("entry_deps", e.prev["deps"]))  # type: ignore[union-attr]
                pages = dict(e.kept_pages)
                for pid, pdata, pheader in e.pages:
                    pfile = f"{safe}~{e.sid}~{pid.replace('/', '_')}.{gen}.pkl"
                    write(pfile, pheader, pdata)
                    pages[pid] = {"file": pfile, "deps": pheader["deps"], "size": len(pdata)}
                deps = edeps.union(*(set(p["deps"]) for p in pages.values()))
                shards[e.sid] = {
                    "file": efile,
                    "loc": list(e.loc),
                    "deps": sorted(deps),
                    "entry_deps": sorted(edeps),
                    "pages": pages,
                }
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
                    pfile = f"{safe}~{_safe(acct)}~{_safe(region)}~{pid.replace('/', '_')}.{gen}.pkl"
                    write(pfile, pheader, pdata)
                    pages[pid] = {"file": pfile, "deps": pheader["deps"], "size": len(pdata)}
                if pages:
                    bpages[f"{acct}|{region}"] = pages
            if old:
                for bkey, opages in old.get("bpages", {}).items():
                    npages = bpages.get(bkey, {})
                    for pid, op in opages.items():
                        if pid not in npages or npages[pid]["file"] != op["file"]:
                            old_files.append(op["file"])
            deps = set(w.header["deps"]).union(*(set(e["deps"]) for e in shards.values()))
            deps = deps.union(*(set(p["deps"]) for pages in bpages.values() for p in pages.values()))
            services[key] = {
                "file": fname,
                "deps": sorted(deps - {key}),
                "size": len(w.main),
                "shards": shards,
                "bpages": bpages,
            }
        for key in removed:
            entry = services.pop(key)
            old_files.append(entry["file"])
            for e in entry.get("shards", {}).values():
                old_files.append(e["file"])
                old_files.extend(p["file"] for p in e.get("pages", {}).values())
            for pages in entry.get("bpages", {}).values():
                old_files.extend(p["file"] for p in pages.values())
        if self.fsync and nfiles:
            _fsync_dir(self.services_dir)
        manifest = {"format": FORMAT_VERSION, "generation": gen, "services": services, "written": time.time()}
        _atomic_write(
            self.state_dir / MANIFEST_FILE,
            json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode(),
            fsync=self.fsync,
        )
        # committed: now update the in-memory view and drop the previous generation's files
        self.manifest = manifest
        self.blob_refs.update(new_refs)
        for key, w in writes.items():
            for e in w.entries:
                self._shard_identity[(key, *e.loc)] = id(e.obj)
            for (acct, region), ident in w.backend_ids.items():
                self._shard_identity[(key, acct, region)] = ident
        for f in old_files:
            self.blob_refs.pop(f, None)
            with contextlib.suppress(OSError):
                (self.services_dir / f).unlink()
        live = {(k, *tuple(e["loc"])) for k, v in services.items() for e in v.get("shards", {}).values()}
        live |= {(k, *tuple(b.split("|", 1))) for k, v in services.items() for b in v.get("bpages", {})}
        live |= {(k, a, r) for k, w in writes.items() for (a, r) in w.backend_ids}
        for ident in [i for i in self._shard_identity if i not in live]:
            del self._shard_identity[ident]
        dt = time.perf_counter() - t0
        st = self.stats
        st.commits += 1
        st.services_written += len(writes)
        st.files_written += nfiles
        st.bytes_written += nbytes
        st.seconds += dt
        st.last_ms = round(dt * 1000, 2)
        st.last_files = nfiles
        st.last_services = sorted(writes) + [f"-{k}" for k in removed]

    # ---------------------------------------------------------------- request path

    def middleware(self, app: Any) -> Callable[[dict[str, Any], Any], Any]:
        """Wrap moto's ``DomainDispatcherApplication`` (needs ``get_application``)."""
        return _Middleware(self, app)

    def _begin_request(self) -> None:
        with self._active_cond:
            self._active += 1

    def _end_request(self) -> None:
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

    def dirty_for(self, ctx: _RequestContext, dispatched: Any, mutating: bool) -> tuple[set[str] | str, ShardDirty]:
        """What a finished request requires to be committed: services, and collection entries."""
        m = _import_moto()
        keys: set[str] = set(ctx.extra_dirty)
        shards: ShardDirty = {}
        if ctx.created_asbs:
            for bd in list(m.BackendDict._instances):
                for asb in dict.values(bd):
                    if any(asb is a for a in ctx.created_asbs):
                        k = self.bd_key(bd)
                        if k:
                            keys.add(k)
        if not mutating:
            return keys, shards
        if dispatched == ALL:
            return ALL, shards
        for bd in ctx.touched.values():
            k = self.bd_key(bd)
            if k:
                keys.add(k)
        if dispatched is not None:
            k = self.bd_key(dispatched)
            if k:
                keys.add(k)
        for coll, entry in ctx.shard_touch:
            loc = getattr(coll, "_riq_loc", None)
            if loc is None:
                continue
            svc, rest = loc[0], tuple(loc[1:])
            keys.add(svc)
            shards.setdefault(svc, {}).setdefault(rest, set()).add(entry)
        return keys, shards

    def close(self, *, snapshot: bool = True) -> None:
        """Final snapshot of everything, blob GC, release the state-dir lock."""
        if self.closed:
            return
        try:
            if snapshot:
                self.snapshot_all()
                self.blobs.gc(self._referenced_blobs())
        finally:
            self.closed = True
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def _find_unpicklable(root: Any, session: _Session, key: str, pkg: str) -> str:
    """Best-effort path to the object that failed to pickle (diagnostics only)."""

    def fails(o: Any) -> bool:
        try:
            _Pickler(io.BytesIO(), session, key, pkg).dump(o)
            return False
        except Exception:
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
        for label, child in items:
            if fails(child):
                path += label
                obj = child
                break
        else:
            break
    return f"{path} ({type(obj).__module__}.{type(obj).__qualname__})"


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key.replace(":", "__"))


def _write_new(path: Path, header: bytes, data: bytes, *, fsync: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
        fh.write(header)
        fh.write(data)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def _topo_order(deps: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(k: str) -> None:
        if state.get(k) == 2:
            return
        if state.get(k) == 1:  # cycle (not produced by the writer); break it here
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


# ------------------------------------------------------------------ WSGI middleware


def _action_of(environ: dict[str, Any], body: bytes | None) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    path = environ.get("PATH_INFO", "")
    if path.startswith("/service/") and "/operation/" in path:  # smithy rpc-v2-cbor
        return path.rsplit("/operation/", 1)[-1].strip("/") or None
    qs = environ.get("QUERY_STRING", "")
    if "Action=" in qs:
        vals = parse_qs(qs).get("Action")
        if vals:
            return vals[0]
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        try:
            vals = parse_qs(body.decode("utf-8", "replace")).get("Action")
        except ValueError:
            vals = None
        if vals:
            return vals[0]
    return None


def classify(environ: dict[str, Any], body: bytes | None) -> tuple[bool, bool]:
    """(mutating, everything) for a request."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "")
    if path.startswith("/moto-api"):
        if method in ("GET", "HEAD") and (path in MOTO_API_READ_PATHS or path.startswith("/moto-api/static/")):
            return False, False
        return True, True
    action = _action_of(environ, body)
    if action is not None:
        return not action.startswith(READ_ACTION_PREFIXES), False
    return method not in ("GET", "HEAD", "OPTIONS"), False


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length and not environ.get("wsgi.input_terminated"):
        n = int(length)
        chunks = []
        while n > 0:
            c = stream.read(min(n, _CHUNK))
            if not c:
                break
            chunks.append(c)
            n -= len(c)
        return b"".join(chunks)
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


class _Middleware:
    def __init__(self, persistence: Persistence, dispatcher: Any):
        self.p = persistence
        self.dispatcher = dispatcher

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        p = self.p
        method = environ.get("REQUEST_METHOD", "GET").upper()
        body: bytes | None = None
        if method not in ("GET", "HEAD", "OPTIONS"):
            # Read the body before taking the shared lock: a slow upload must not hold
            # back snapshots.
            body = _read_body(environ)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("wsgi.input_terminated", None)
        mutating, everything = classify(environ, body)
        ctx = _RequestContext()
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers, exc_info]
            return _no_write

        p._begin_request()
        _tls.ctx = ctx
        try:
            p._rw.acquire_read()
            try:
                app = self.dispatcher.get_application(environ)
                dispatched: Any = None
                if everything:
                    dispatched = ALL
                elif mutating:
                    dispatched = _backend_dict_for(getattr(app, "service", None))
                try:
                    result = app(environ, capture)
                    error = None
                except Exception as exc:  # commit what the failed request changed, then re-raise
                    result, error = None, exc
            finally:
                p._rw.release_read()
                _tls.ctx = None
            keys, shards = p.dirty_for(ctx, dispatched, mutating)
            if keys:
                if ctx.new_keys:
                    _externalize_new_keys(ctx.new_keys, p.blobs)
                try:
                    p.commit(p._enqueue(keys, shards))
                    failed = p.failed_among(keys)
                    if failed:
                        raise PersistenceError(", ".join(sorted(failed)))
                except Exception as exc:
                    if result is not None and hasattr(result, "close"):
                        result.close()
                    return _persistence_failed(start_response, exc)
            if error is not None:
                raise error
            start_response(*captured)
            return result
        finally:
            _tls.ctx = None
            p._end_request()


def _no_write(data: bytes) -> None:  # pragma: no cover - Flask never uses write()
    raise RuntimeError("write() is not supported by the persistence middleware")


def _persistence_failed(start_response: Any, exc: Exception) -> list[bytes]:
    what = str(exc) if isinstance(exc, PersistenceError) else type(exc).__name__
    msg = f"RentalIQ local cloud could not persist this change ({what}); see server.log in the state dir"
    msg = msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (
        "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
        f"<Message>{msg}</Message></Error></ErrorResponse>"
    ).encode()
    start_response(
        "500 Internal Server Error", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _backend_dict_for(service: str | None) -> Any:
    if not service or service in ("moto_api", "instance_metadata"):
        return None
    try:
        from moto import backends

        return backends.get_backend(service)  # type: ignore[arg-type]
    except Exception:
        return None


def _externalize_new_keys(keys: list[Any], store: BlobStore) -> None:
    seen: set[int] = set()
    for key in keys:
        if id(key) in seen:
            continue
        seen.add(id(key))
        try:
            if not _composite_from_parts(key, store):
                _externalize_key(key, store, swap=True)
        except Exception:
            log.warning("could not externalize an S3 body; it will be stored at commit", exc_info=True)
