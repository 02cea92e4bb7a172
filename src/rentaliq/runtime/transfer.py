"""The pieces of a managed S3 transfer that are not S3 calls: part sizes, the known-size subscriber, atomic files.

s3transfer does the concurrent multipart work; these adapt it to what :class:`rentaliq.runtime.files.Files`
already knows (the size and ETag from its own HEAD, saving a request) and make a download land in place
only when it is complete and verified.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any


def seekable(stream: Any) -> bool:
    try:
        if not stream.seekable():
            return False
        stream.tell()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def part_size(chunksize: int, size: int | None) -> int:
    """The part size s3transfer will use (it grows the chunk size to stay within 10 000 parts)."""
    from s3transfer.utils import ChunksizeAdjuster

    return int(ChunksizeAdjuster().adjust_chunksize(chunksize, size))


class KnownObject:
    """s3transfer subscriber: hand over the size (and ETag) we already know, saving its HEAD request."""

    def __init__(self, size: int | None, etag: str | None = None) -> None:
        self.size = size
        self.etag = etag

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        if self.size is not None:
            future.meta.provide_transfer_size(self.size)
        if self.etag is not None:
            future.meta.provide_object_etag(self.etag)

    def on_progress(self, **kwargs: Any) -> None:
        pass

    def on_done(self, **kwargs: Any) -> None:
        pass


class atomic_destination:
    """A temporary file beside ``path``, renamed into place on success and removed on failure.

    A failed or corrupt download therefore never replaces (or half-writes) the destination.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp_path = ""
        self.file: Any = None

    def __enter__(self) -> atomic_destination:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fd, self.tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".partial")
        self.file = os.fdopen(fd, "w+b")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.file.close()
        if exc_type is None:
            os.replace(self.tmp_path, self.path)
        else:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp_path)
