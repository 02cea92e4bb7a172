"""What the files API returns: plain frozen records of what S3 stored, read or deleted.

Kept apart from :mod:`rentaliq.runtime.files` so that code which only reads results (services, tests,
the smoke command) does not need the transfer machinery.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class UploadResult:
    """What S3 stored: the encryption it applied, the version, and the checksum it holds."""

    bucket: str
    key: str
    size: int
    etag: str | None
    version_id: str | None
    server_side_encryption: str
    sse_kms_key_id: str | None
    content_type: str
    checksum_crc32: str | None
    """The CRC32 checksum S3 holds: whole-object (base64), or composite ``<base64>-<parts>`` for multipart."""
    checksum_type: str | None
    """FULL_OBJECT or COMPOSITE."""
    checksum_verified: bool = False
    """True when S3's checksum was checked against the SDK's own read of the source."""


@dataclass(frozen=True)
class DownloadResult:
    bucket: str
    key: str
    size: int
    etag: str | None
    version_id: str | None
    server_side_encryption: str | None
    content_type: str | None
    checksum_crc32: str | None
    checksum_verified: bool
    """True when the data's checksum was recomputed and matched the object's (whole-object or composite)."""
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    last_modified: datetime | None
    storage_class: str | None = None
    version_id: str | None = None
    content_type: str | None = None
    server_side_encryption: str | None = None
    checksum_crc32: str | None = None
    checksum_type: str | None = None


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    size: int | None
    etag: str | None
    last_modified: datetime | None


@dataclass(frozen=True)
class DeleteResult:
    key: str
    version_id: str | None
    """The version removed (a permanent delete) or the delete marker created (versioned bucket)."""
    delete_marker: bool


def guess_content_type(key: str) -> str:
    """From the key's extension; ``application/octet-stream`` when unknown."""
    return mimetypes.guess_type(key, strict=False)[0] or DEFAULT_CONTENT_TYPE
