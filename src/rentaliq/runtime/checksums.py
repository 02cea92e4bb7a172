"""The checksum math of S3 transfers, as pure functions: whole-object and composite CRC32, stored checksums.

S3 keeps either a whole-object checksum or, for multipart uploads, a *composite* one: the CRC32 of the
parts' big-endian CRC32s, written ``<base64>-<parts>``. These functions compute both from any source
in one pass, and parse what S3 (or moto, which spells composite values differently) reports, so that
:mod:`rentaliq.runtime.files` can compare the two. Tested directly with known vectors.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

READ_CHUNK = 8 * 1024 * 1024


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64_crc32(crc: int) -> str:
    return b64(crc.to_bytes(4, "big"))


class Crc32s:
    """CRC32 of the whole data and of each ``part_size`` part, fed in pieces of any size."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self.full = 0
        self.parts: list[int] = []
        self.size = 0
        self._part = 0
        self._in_part = 0

    def update(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        self.full = zlib.crc32(view, self.full)
        self.size += len(view)
        while view:
            take = view[: self.part_size - self._in_part]
            self._part = zlib.crc32(take, self._part)
            self._in_part += len(take)
            view = view[len(take) :]
            if self._in_part == self.part_size:
                self.parts.append(self._part)
                self._part, self._in_part = 0, 0

    def finish(self) -> Crc32s:
        if self._in_part:
            self.parts.append(self._part)
            self._part, self._in_part = 0, 0
        return self

    @property
    def full_b64(self) -> str:
        return b64_crc32(self.full)

    @property
    def composite_b64(self) -> str:
        """S3's composite checksum: the CRC32 of the parts' big-endian CRC32s."""
        return b64_crc32(zlib.crc32(b"".join(p.to_bytes(4, "big") for p in self.parts)))


def crc32s_of_stream(stream: Any, part_size: int) -> Crc32s:
    """From the current position to the end; zlib releases the GIL on big buffers, so this can overlap a transfer."""
    sums = Crc32s(part_size)
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            sums.update(view[:n])
        else:
            chunk = stream.read(READ_CHUNK)
            if not chunk:
                break
            sums.update(chunk)
    return sums.finish()


def crc32s_of_file(path: str | os.PathLike[str], part_size: int) -> Crc32s:
    with open(path, "rb", buffering=0) as fh:
        return crc32s_of_stream(fh, part_size)


def crc32s_of_buffer(data: bytes, part_size: int) -> Crc32s:
    sums = Crc32s(part_size)
    sums.update(data)
    return sums.finish()


class Crc32Reader:
    """Wraps a non-seekable stream; s3transfer reads such streams strictly in order."""

    def __init__(self, raw: BinaryIO, part_size: int) -> None:
        self._raw = raw
        self.sums = Crc32s(part_size)

    def read(self, amt: int = -1) -> bytes:
        data = self._raw.read(amt)
        if data:
            self.sums.update(data)
        return data

    def seekable(self) -> bool:
        return False


@dataclass(frozen=True)
class StoredChecksum:
    """The checksum S3 holds for an object, parsed (S3 and moto spell composite values differently)."""

    algorithm: str
    value: str  # base64, without the -N suffix
    parts: int | None  # None: whole-object checksum; N: composite over N parts

    @property
    def display(self) -> str:
        return self.value if self.parts is None else f"{self.value}-{self.parts}"


def stored_checksum(head: Mapping[str, Any]) -> StoredChecksum | None:
    kind = head.get("ChecksumType")
    etag = head.get("ETag") or ""
    etag_parts = int(etag.strip('"').rsplit("-", 1)[1]) if "-" in etag.strip('"') else None
    for algorithm in ("CRC32", "SHA256", "SHA1"):
        raw = head.get(f"Checksum{algorithm}")
        if not raw:
            continue
        value, _, suffix = raw.partition("-")
        if kind == "FULL_OBJECT" or (kind is None and not suffix and etag_parts is None):
            return StoredChecksum(algorithm, value, None)
        parts = int(suffix) if suffix.isdigit() else etag_parts
        if parts:
            return StoredChecksum(algorithm, value, parts)
    return None


def comparable(before: StoredChecksum | None, after: StoredChecksum | None) -> bool:
    """Two stored checksums can be compared only when they are of one algorithm and one part layout."""
    return before is not None and after is not None and (before.algorithm, before.parts) == (after.algorithm, after.parts)


def digest_b64(head: Mapping[str, Any], data: bytes) -> str | None:
    stored = stored_checksum(head)
    if stored is None or stored.algorithm == "CRC32":
        return None
    return b64(hashlib.new(stored.algorithm.lower(), data).digest())


def digest_b64_file(head: Mapping[str, Any], path: str) -> str | None:
    stored = stored_checksum(head)
    if stored is None or stored.algorithm == "CRC32":
        return None
    digest = hashlib.new(stored.algorithm.lower())
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
    return b64(digest.digest())


@dataclass(frozen=True)
class SourceChecksums:
    """How :class:`~rentaliq.runtime.files.Files` reads a source's checksums; injectable, so a test can make the
    SDK's read of a file disagree with what was transferred (the file changed mid-upload) without patching."""

    of_buffer: Any = crc32s_of_buffer
    of_file: Any = crc32s_of_file
    of_stream: Any = crc32s_of_stream


SOURCE_CHECKSUMS = SourceChecksums()
