"""Restoring an earlier version of an object (QA and PROD, where the bucket is versioned): the spec's S3 runbook.

The copy is made by S3 itself (no bytes through the client), then checked: the restored current version must
have the old version's size and, where both checksums are of one kind, its checksum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rentaliq.runtime.checksums import comparable, stored_checksum
from rentaliq.runtime.errors import ChecksumMismatch
from rentaliq.runtime.file_results import DEFAULT_CONTENT_TYPE, UploadResult, upload_result
from rentaliq.runtime.s3_errors import s3_errors
from rentaliq.runtime.transfer import KnownObject

if TYPE_CHECKING:
    from rentaliq.runtime.files import Files

COPY_OBJECT_LIMIT = 5 * 1024**3  # CopyObject's single-request limit; above it, a multipart copy


def restore_version(files: Files, key: str, version_id: str) -> UploadResult:
    """Copy ``version_id`` over ``key``, server-side (a multipart copy above CopyObject's 5 GiB), and check that the
    new current version has the old one's size and checksum."""
    source = files._head_raw(key, version_id)
    size = int(source["ContentLength"])
    copy_source = {"Bucket": files.bucket, "Key": key, "VersionId": version_id}
    args: dict[str, Any] = {**files._sse_args(), "MetadataDirective": "COPY"}
    if size <= COPY_OBJECT_LIMIT:
        with s3_errors(files.bucket, key, version_id):
            files.client.copy_object(Bucket=files.bucket, Key=key, CopySource=copy_source, ChecksumAlgorithm="CRC32", **args)
    else:
        args.pop("MetadataDirective")
        args["ChecksumAlgorithm"] = "CRC32"
        files._transfers().copy(copy_source, files.bucket, key, extra_args=args, subscribers=[KnownObject(size)]).result()
    head = files._head_raw(key, None)
    if head.get("ContentLength") != size:
        raise ChecksumMismatch(f"s3://{files.bucket}/{key}: restored copy has {head.get('ContentLength')} bytes, version {version_id} has {size}")
    before, after = stored_checksum(source), stored_checksum(head)
    same_kind = comparable(before, after)
    if same_kind and before is not None and after is not None and before.value != after.value:
        raise ChecksumMismatch(f"s3://{files.bucket}/{key}: restored copy has checksum {after.display}, version {version_id} has {before.display}")
    display = after.display if after is not None and after.algorithm == "CRC32" else None
    kind = None if after is None else ("FULL_OBJECT" if after.parts is None else "COMPOSITE")
    return upload_result(files.bucket, key, size, head, head.get("ContentType") or DEFAULT_CONTENT_TYPE, display, kind, verified=same_kind)
