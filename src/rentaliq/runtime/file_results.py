"""What the files API returns: plain frozen records of what S3 stored, read or deleted.

Kept apart from :mod:`rentaliq.runtime.files` so that code which only reads results (services, tests,
the smoke command) does not need the transfer machinery.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rentaliq.runtime.errors import EncryptionMissing

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


def versions_of(key: str, pages: Iterable[Mapping[str, Any]]) -> list[ObjectVersion]:
    """Every version and delete marker of exactly ``key`` (a prefix listing also holds longer keys), newest first."""
    out: list[ObjectVersion] = []
    for page in pages:
        for item in page.get("Versions", []):
            if item["Key"] == key:
                out.append(
                    ObjectVersion(key, item["VersionId"], bool(item.get("IsLatest")), False, int(item["Size"]), item.get("ETag"), item.get("LastModified"))
                )
        for item in page.get("DeleteMarkers", []):
            if item["Key"] == key:
                out.append(ObjectVersion(key, item["VersionId"], bool(item.get("IsLatest")), True, None, None, item.get("LastModified")))
    out.sort(key=lambda v: (not v.is_latest, -(v.last_modified.timestamp() if v.last_modified else 0.0)))
    return out


def upload_result(
    bucket: str, key: str, size: int, response: Mapping[str, Any], ctype: str, checksum: str | None, checksum_type: str | None, *, verified: bool
) -> UploadResult:
    """What S3 answered for a write, as a result; S3 must report the encryption it applied (every write asks for it)."""
    sse = response.get("ServerSideEncryption")
    if not sse:
        raise EncryptionMissing(f"s3://{bucket}/{key}: S3 reported no server-side encryption for the object just written")
    return UploadResult(
        bucket=bucket,
        key=key,
        size=size,
        etag=response.get("ETag"),
        version_id=response.get("VersionId"),
        server_side_encryption=sse,
        sse_kms_key_id=response.get("SSEKMSKeyId"),
        content_type=ctype,
        checksum_crc32=checksum,
        checksum_type=checksum_type,
        checksum_verified=verified,
    )
