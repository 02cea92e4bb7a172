"""S3 object bodies: kept in the blob store, never in a snapshot.

``FakeKey`` keeps its bytes in a ``SpooledTemporaryFile`` (``_value_buffer``), which does not
pickle (and moto's ``__getstate__`` would copy the bytes into every snapshot).  The
``FakeKey.value`` setter is wrapped (:func:`install_value_hook`) so a body goes straight into the
blob store and the key gets a :class:`BlobBuffer`; a completed multipart upload is the sequence of
its parts' segments (checked against the multipart ETag), so completing it writes nothing.  Keys
created outside that path are stored by the pickler (:func:`reduce_fakekey`), reading the buffer
without moving its file position.  A snapshot records ``(sha256, offset, length)`` segments.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from rentaliq.local.state import tracking
from rentaliq.local.state.blobs import BlobBuffer, BlobStore, Segments

log = logging.getLogger("rentaliq.local.persistence")

BLOB_STORE: BlobStore | None = None  # the process's store (one server per process), for loading keys

# Blob refs of keys whose buffer was hashed by a snapshot but not swapped (see externalize_key).
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
        view = memoryview(f.getvalue())
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
    return spool.read  # type: ignore[no-any-return]


def externalize_key(key: Any, store: BlobStore, *, swap: bool) -> Segments | None:
    """Make sure ``key``'s body is in the blob store; return its blob ref (None if disposed).

    ``swap=True`` (the request thread that created the key, after moto is done with it)
    also replaces the key's buffer by a :class:`BlobBuffer`, releasing the memory/temp
    file.  Snapshots use ``swap=False``: the key may still be in use by its request.
    The key's lock is held while reading so our own swap cannot close the buffer under
    a concurrent snapshot; moto disposing of the key meanwhile is retried."""
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


def composite_from_parts(key: Any, store: BlobStore, size: int | None = None) -> bool:
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
        expected = f"{hashlib.md5(md5s).hexdigest()}-{len(parts)}"
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


def externalize_new_keys(keys: list[Any], store: BlobStore) -> None:
    """After a request: move the bodies moto buffered itself into the blob store."""
    seen: set[int] = set()
    for key in keys:
        if id(key) in seen:
            continue
        seen.add(id(key))
        try:
            if not composite_from_parts(key, store):
                externalize_key(key, store, swap=True)
        except Exception:
            log.warning("could not externalize an S3 body; it will be stored at commit", exc_info=True)


def install_value_hook(fk_cls: type, store: BlobStore) -> None:
    """Wrap ``FakeKey.value``'s setter: the body goes straight into the blob store instead of
    moto's spooled temporary file; the bytes are written once, before the key is reachable."""
    value_prop: Any = fk_cls.value  # type: ignore[attr-defined]

    def value_set(self_: Any, new_value: Any) -> None:
        with _PENDING_LOCK:
            _PENDING_REFS.pop(self_, None)
        try:
            if isinstance(new_value, str):
                new_value = new_value.encode("utf-8")
            size = len(new_value)
            if getattr(self_, "multipart", None) is not None and composite_from_parts(self_, store, size):
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
        ctx = tracking.current_context()
        if ctx is not None:
            ctx.new_keys.append(self_)

    fk_cls.value = property(value_prop.fget, value_set, value_prop.fdel, value_prop.__doc__)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ pickling a key


def reduce_fakekey(key: Any, store: BlobStore) -> tuple[Any, set[str]]:
    """(reduce tuple, blobs referenced) for a ``FakeKey``: its state without the buffer, plus its segments."""
    ref = externalize_key(key, store, swap=False)
    state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock")}
    state["__riq_blob__"] = ref
    return (new_fakekey, (type(key),), state, None, None, set_fakekey_state), {seg[0] for seg in ref or ()}


def new_fakekey(cls: type) -> Any:
    return cls.__new__(cls)


def set_fakekey_state(obj: Any, state: dict[str, Any]) -> None:
    segments = state.pop("__riq_blob__", None)
    obj.__dict__.update(state)
    obj.lock = threading.Lock()
    obj._value_buffer = BlobBuffer(None, None) if segments is None else BlobBuffer(BLOB_STORE, segments)
