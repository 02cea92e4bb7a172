"""The blob store: S3 object bodies as content-addressed, immutable files, and the file-like view moto reads them through.

``blobs/<sha256[:2]>/<sha256>`` is written once (hashed in memory or while streaming, stored only
if new) and never modified; blobs no snapshot references are removed at start-up and on clean
shutdown (:meth:`BlobStore.gc`).  A :class:`BlobBuffer` stands in for ``FakeKey._value_buffer``.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rentaliq.local.state.layout import CHUNK, atomic_write

Segments = tuple[tuple[str, int, int], ...]  # ((sha256, offset, length), ...): an object's bytes, in order


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

        def chunks() -> Iterator[bytes]:
            nonlocal size
            while chunk := read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                yield chunk

        def final() -> Path | None:
            p = self.path(h.hexdigest())
            return None if p.exists() else p

        atomic_write(final, chunks(), fsync=self.fsync, tmp_dir=self.tmp)
        return h.hexdigest(), size

    def put_bytes(self, data: bytes | bytearray | memoryview) -> tuple[str, int]:
        """Store an in-memory value: hash first, write only if the content is new."""
        view = memoryview(data).cast("B")
        sha = hashlib.sha256(view).hexdigest()
        final = self.path(sha)
        if not final.exists():
            atomic_write(final, view, fsync=self.fsync, tmp_dir=self.tmp)
        return sha, len(view)

    def gc(self, referenced: set[str]) -> tuple[int, int]:
        """Remove blobs no snapshot references, and writes left in flight; (count, bytes) removed."""
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


def _spooled() -> Any:
    from moto.settings import get_s3_default_key_buffer_size

    return tempfile.SpooledTemporaryFile(get_s3_default_key_buffer_size())


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
        spool = _spooled()
        pos = self._pos
        self._pos = 0
        while chunk := self.read(CHUNK):
            spool.write(chunk)
        spool.seek(pos)
        self._spool = spool
        return spool

    def seek(self, pos: int, whence: int = 0) -> int:
        self._check()
        if self._spool is not None:
            return int(self._spool.seek(pos, whence))
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
        return int(self._spool.tell()) if self._spool is not None else self._pos

    def read(self, n: int | None = -1) -> bytes:
        self._check()
        if self._spool is not None:
            return bytes(self._spool.read(n))
        remaining = self.length - self._pos
        if remaining <= 0 or self._store is None:
            return b""
        if n is None or n < 0 or n > remaining:
            n = remaining
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
        return int(spool.write(data))

    def truncate(self, size: int | None = None) -> int:
        self._check()
        if self._spool is None:
            keep = self._pos if size is None else size
            if keep == 0:
                self._spool = _spooled()
                self._spool.seek(self._pos)
                return 0
            self._materialize()
        return int(self._spool.truncate(size))

    def flush(self) -> None:
        if self._spool is not None:
            self._spool.flush()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
        self.closed = True

    def __repr__(self) -> str:
        return f"<BlobBuffer {len(self.segments)} segment(s) len={self.length}{' closed' if self.closed else ''}>"
