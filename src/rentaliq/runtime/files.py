"""Files in the environment's S3 bucket: encrypted, checksummed, validated keys.

* The bucket comes from the ``s3/config`` secret, the region too; the client from the standard
  AWS configuration (or injected), so the same code runs on AWS and the local cloud.
* Every write asks for server-side encryption (``RuntimeConfig.sse``) and checks that S3
  reports it back.
* Integrity, end to end, with CRC32 (zlib, several GB/s):

  - small objects (below ``multipart_threshold``) are one PUT carrying the whole object's CRC32,
    which S3 checks before storing anything;
  - multipart uploads carry a CRC32 per part (S3 checks each part) and S3 keeps the *composite*
    checksum, ``base64(crc32(part crcs))-N``, as the AWS CLI and SDKs do by default.  The SDK
    computes the same composite from its own independent read of the source (concurrently with
    the transfer, so it costs no time) and compares; a mismatch removes the object and raises;
  - downloads recompute the whole-object or composite checksum (part size from ``HeadObject
    PartNumber=1``) before the data reaches the destination path (a temporary file is renamed
    into place) and raise ChecksumMismatch otherwise.

  A full-object checksum for multipart uploads (``ChecksumType=FULL_OBJECT``) would need the
  CRC before the upload finishes and cost a second pass; composite checksums give the same end
  to end guarantee, verifiable on download.
* Large transfers go through s3transfer's managed, concurrent multipart transfers; small ones are
  one request (and need no extra HEAD to report encryption and version).
* Versions (list, restore) exist only where the bucket is versioned: QA and PROD.
"""

from __future__ import annotations

import builtins
import io
import logging
import os
import threading
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Union

from rentaliq.runtime.checksums import (
    SOURCE_CHECKSUMS,
    Crc32Reader,
    Crc32s,
    SourceChecksums,
    b64_crc32,
    stored_checksum,
)
from rentaliq.runtime.downloads import Destination, Download
from rentaliq.runtime.errors import (
    ChecksumMismatch,
    VersioningNotEnabled,
)
from rentaliq.runtime.file_results import (
    DeleteResult,
    DownloadResult,
    ObjectInfo,
    ObjectVersion,
    UploadResult,
    guess_content_type,
    upload_result,
    versions_of,
)
from rentaliq.runtime.file_versions import restore_version
from rentaliq.runtime.keys import validate_key, validate_prefix
from rentaliq.runtime.s3_errors import s3_errors
from rentaliq.runtime.secrets import RuntimeConfig, S3Config, Secrets
from rentaliq.runtime.transfer import (
    KnownObject,
    part_size,
    seekable,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DeleteResult",
    "DownloadResult",
    "Files",
    "ObjectInfo",
    "ObjectVersion",
    "UploadResult",
    "guess_content_type",
]

Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", BinaryIO]


class Files:
    """The environment's file bucket.  ``client`` is an optional boto3 S3 client (else one is made)."""

    def __init__(
        self,
        secrets: Secrets | None = None,
        *,
        config: RuntimeConfig | None = None,
        client: Any | None = None,
        checksums: SourceChecksums = SOURCE_CHECKSUMS,
    ) -> None:
        self.checksums = checksums
        if secrets is None:
            secrets = Secrets(config)
        self.secrets = secrets
        self.config = config if config is not None else secrets.config
        self._client = client
        self._manager: Any = None
        self._lock = threading.RLock()  # _transfers() builds the client under it
        self._versioned: bool | None = None
        self._checksummer: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def s3_config(self) -> S3Config:
        return self.secrets.s3_config()

    @property
    def bucket(self) -> str:
        return self.s3_config.bucket_name

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    self._client = boto3.session.Session().client(
                        "s3",
                        region_name=self.s3_config.region,
                        config=Config(max_pool_connections=max(10, self.config.max_concurrency + 2), user_agent_extra="rentaliq-runtime"),
                    )
        return self._client

    @property
    def transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        cfg = self.config
        return TransferConfig(
            multipart_threshold=cfg.multipart_threshold,
            multipart_chunksize=cfg.multipart_chunksize,
            max_concurrency=cfg.max_concurrency,
            use_threads=True,
        )

    def _transfers(self) -> Any:
        if self._manager is None:
            with self._lock:
                if self._manager is None:
                    from s3transfer.manager import TransferManager

                    self._manager = TransferManager(self.client, self.transfer_config)
        return self._manager

    def close(self) -> None:
        """Stop the transfer threads (uploads in flight finish first)."""
        with self._lock:
            manager, self._manager = self._manager, None
            checksummer, self._checksummer = self._checksummer, None
        if manager is not None:
            manager.shutdown()
        if checksummer is not None:
            checksummer.shutdown()

    def __enter__(self) -> Files:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sse_args(self) -> dict[str, str]:
        """What every put asks for: the configured encryption, or the environment's (its key, from s3/config)."""
        environment_key = self.s3_config.kms_key_arn if self.config.sse in (None, "aws:kms") and not self.config.sse_kms_key_id else None
        sse = self.config.sse or ("aws:kms" if environment_key or self.config.sse_kms_key_id else "AES256")
        args = {"ServerSideEncryption": sse}
        key = self.config.sse_kms_key_id or (environment_key if sse == "aws:kms" else None)
        if key:
            args["SSEKMSKeyId"] = key
        return args

    # ------------------------------------------------------------------ upload

    def upload(
        self,
        key: str,
        source: Source,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> UploadResult:
        """Store ``source`` (bytes, a path, or a binary file/stream) at ``key``, encrypted and checksummed.

        ``content_type`` defaults to a guess from the key's extension.  Data from
        ``multipart_threshold`` on is sent as a concurrent multipart upload.
        """
        key = validate_key(key)
        ctype = content_type or guess_content_type(key)
        extra: dict[str, Any] = {**self._sse_args(), "ContentType": ctype}
        if metadata:
            extra["Metadata"] = dict(metadata)
        threshold = self.config.multipart_threshold
        chunk = self.config.multipart_chunksize

        if isinstance(source, (bytes, bytearray, memoryview)):
            data = source if isinstance(source, bytes) else bytes(source)
            if len(data) < threshold:
                return self._put_small(key, data, extra)
            part = part_size(chunk, len(data))
            sums = self._background(self.checksums.of_buffer, data, part)
            return self._put_managed(key, io.BytesIO(data), len(data), extra, sums)
        if isinstance(source, (str, os.PathLike)):
            size = os.stat(source).st_size
            if size < threshold:
                return self._put_small(key, Path(source).read_bytes(), extra)
            part = part_size(chunk, size)
            sums = self._background(self.checksums.of_file, source, part)  # own file handle: safe to overlap
            return self._put_managed(key, os.fspath(source), size, extra, sums)
        if hasattr(source, "read"):
            if seekable(source):
                start = source.tell()
                size = source.seek(0, os.SEEK_END) - start
                source.seek(start)
                if size < threshold:
                    return self._put_small(key, source.read(), extra)
                # One handle, so no overlap: checksum first, then rewind for the transfer.
                done: Future[Crc32s] = Future()
                done.set_result(self.checksums.of_stream(source, part_size(chunk, size)))
                source.seek(start)
                return self._put_managed(key, source, size, extra, done)
            reader = Crc32Reader(source, part_size(chunk, None))
            return self._put_managed(key, reader, None, extra, None, reader=reader)
        raise TypeError(f"upload source must be bytes, a path or a binary file object, not {type(source).__name__}")

    def _background(self, fn: Any, *args: Any) -> Future[Crc32s]:
        with self._lock:
            if self._checksummer is None:
                self._checksummer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rentaliq-files-crc")
            return self._checksummer.submit(fn, *args)

    def _put_small(self, key: str, data: bytes, extra: dict[str, Any]) -> UploadResult:
        """One PUT carrying the whole object's CRC32: S3 refuses the object if the bytes it got differ."""
        checksum = b64_crc32(zlib.crc32(data))
        with s3_errors(self.bucket, key, None, "s3:PutObject"):
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumAlgorithm="CRC32", ChecksumCRC32=checksum, **extra)
        stored = response.get("ChecksumCRC32")
        if stored is not None and stored != checksum:
            raise ChecksumMismatch(f"s3://{self.bucket}/{key}: S3 stored CRC32 {stored}, the data has {checksum}")
        return upload_result(self.bucket, key, len(data), response, extra["ContentType"], checksum, "FULL_OBJECT", verified=True)

    def _put_managed(
        self,
        key: str,
        source: Any,
        size: int | None,
        extra: dict[str, Any],
        sums: Future[Crc32s] | None,
        *,
        reader: Crc32Reader | None = None,
    ) -> UploadResult:
        args = {**extra, "ChecksumAlgorithm": "CRC32"}  # per-part CRC32, checked by S3 on every part
        try:
            with s3_errors(self.bucket, key, None, "s3:PutObject"):
                self._transfers().upload(source, self.bucket, key, extra_args=args, subscribers=[KnownObject(size)]).result()
        except Exception:
            if sums is not None:
                sums.cancel()
            raise
        ours = reader.sums.finish() if reader is not None else sums.result()  # type: ignore[union-attr]  # callers pass a reader or the sums' future
        head = self._head_raw(key, None)
        stored = stored_checksum(head)
        problem = None
        if head.get("ContentLength") != ours.size:
            problem = f"S3 stored {head.get('ContentLength')} bytes, {ours.size} were read from the source"
        elif stored is not None and stored.algorithm == "CRC32":
            expected = ours.full_b64 if stored.parts is None else ours.composite_b64
            if stored.value != expected or (stored.parts is not None and stored.parts != len(ours.parts)):
                problem = f"S3 holds CRC32 {stored.display}, the source gives {expected}-{len(ours.parts)}"
        if problem is not None:
            self._remove_bad_upload(key, head.get("VersionId"))
            raise ChecksumMismatch(f"s3://{self.bucket}/{key}: {problem}; the object was removed")
        verified = stored is not None and stored.algorithm == "CRC32"
        display = stored.display if stored is not None else None
        return upload_result(
            self.bucket,
            key,
            ours.size,
            head,
            extra["ContentType"],
            display,
            "FULL_OBJECT" if stored and stored.parts is None else "COMPOSITE",
            verified=verified,
        )

    def _remove_bad_upload(self, key: str, version_id: str | None) -> None:
        args = {"VersionId": version_id} if version_id and version_id != "null" else {}
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key, **args)
        except Exception as exc:  # noqa: BLE001 - the mismatch is the error to report
            logger.error("s3://%s/%s: could not remove the object that failed its checksum: %s", self.bucket, key, type(exc).__name__)

    # ------------------------------------------------------------------ download

    def download(self, key: str, dest: Destination = None, *, version_id: str | None = None) -> DownloadResult:
        """Fetch ``key`` (or one version of it) into ``dest``: None (bytes in ``result.data``), a path or a binary file.

        The data is checked against the object's checksum (whole-object or composite) before it
        reaches a path (a temporary file is renamed into place) or, for objects below the
        multipart threshold, a file object; a mismatch raises ChecksumMismatch and leaves the
        destination untouched.  Large downloads into a file object are checked afterwards when
        the file object is readable and seekable.
        """
        key = validate_key(key)
        head = self._head_raw(key, version_id)
        size = int(head["ContentLength"])
        pin = {"VersionId": head["VersionId"]} if head.get("VersionId") not in (None, "null") else {}
        download = Download(self, key, head, pin)
        return download.small(dest) if size < self.config.multipart_threshold else download.managed(dest)

    def read(self, key: str, *, version_id: str | None = None) -> bytes:
        """The object's bytes (checksum verified when the object has one)."""
        data = self.download(key, version_id=version_id).data
        if data is None:  # download() without a destination always returns the bytes
            raise RuntimeError(f"download of {key!r} returned no data")
        return data

    # ------------------------------------------------------------------ listing, deleting, URLs

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        """Metadata of one object (or version), including its encryption and checksum."""
        key = validate_key(key)
        head = self._head_raw(key, version_id)
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            etag=head.get("ETag"),
            last_modified=head.get("LastModified"),
            storage_class=head.get("StorageClass"),
            version_id=head.get("VersionId"),
            content_type=head.get("ContentType"),
            server_side_encryption=head.get("ServerSideEncryption"),
            checksum_crc32=head.get("ChecksumCRC32"),
            checksum_type=head.get("ChecksumType"),
        )

    def _head_raw(self, key: str, version_id: str | None) -> dict[str, Any]:
        args: dict[str, Any] = {"ChecksumMode": "ENABLED"}
        if version_id:
            args["VersionId"] = version_id
        with s3_errors(self.bucket, key, version_id):
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key, **args)
        return head

    def list(self, prefix: str = "", *, limit: int | None = None) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, fetched page by page as the iterator advances."""
        prefix = validate_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        count = 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if limit is not None and count >= limit:
                    return
                count += 1
                yield ObjectInfo(
                    key=item["Key"],
                    size=int(item["Size"]),
                    etag=item.get("ETag"),
                    last_modified=item.get("LastModified"),
                    storage_class=item.get("StorageClass"),
                )

    def delete(self, key: str, *, version_id: str | None = None) -> DeleteResult:
        """Delete ``key``; in a versioned bucket this adds a delete marker unless ``version_id`` names a version to remove for good."""
        key = validate_key(key)
        args = {"VersionId": version_id} if version_id else {}
        with s3_errors(self.bucket, key, version_id, "s3:DeleteObjectVersion" if version_id else "s3:DeleteObject"):
            response = self.client.delete_object(Bucket=self.bucket, Key=key, **args)
        return DeleteResult(key=key, version_id=response.get("VersionId"), delete_marker=bool(response.get("DeleteMarker")))

    def presigned_url(
        self,
        key: str,
        *,
        method: str = "GET",
        expires_in: int | None = None,
        version_id: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A time-limited URL to GET or PUT ``key`` without AWS credentials.

        A PUT URL is signed with the encryption header (and the content type), so the uploader
        must send ``x-amz-server-side-encryption`` (and ``Content-Type``) exactly as signed:
        files cannot reach the bucket unencrypted through it.
        """
        key = validate_key(key)
        method = method.upper()
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if method == "GET":
            operation = "get_object"
            if version_id:
                params["VersionId"] = version_id
        elif method == "PUT":
            operation = "put_object"
            params.update(self._sse_args())
            params["ContentType"] = content_type or guess_content_type(key)
        else:
            raise ValueError(f"presigned_url method {method!r} is invalid; allowed: GET, PUT")
        expiry = expires_in if expires_in is not None else self.config.presign_expiry_s
        if not 1 <= expiry <= 604800:
            raise ValueError(f"expires_in={expiry} is invalid; allowed: 1 to 604800 seconds")
        url: str = self.client.generate_presigned_url(operation, Params=params, ExpiresIn=expiry)
        return url

    # ------------------------------------------------------------------ versions (QA and PROD)

    def versioning_enabled(self) -> bool:
        """Whether the bucket keeps versions (read once from S3, the deployed truth)."""
        if self._versioned is None:
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            self._versioned = status in ("Enabled", "Suspended")  # suspended buckets still hold old versions
        return self._versioned

    def _require_versioning(self, operation: str) -> None:
        if not self.versioning_enabled():
            raise VersioningNotEnabled(
                f"{operation}: bucket {self.bucket} of environment {self.secrets.env!r} is not versioned; "
                "versions exist only where the environment spec enables versioning (qa, prod)"
            )

    def list_versions(self, key: str) -> builtins.list[ObjectVersion]:  # `list` here is the method above
        """Every version and delete marker of exactly ``key``, newest first."""
        key = validate_key(key)
        self._require_versioning("list_versions")
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
        return versions_of(key, pages)

    def restore_version(self, key: str, version_id: str) -> UploadResult:
        """Make ``version_id`` the current version again by copying it over ``key`` (history is kept)."""
        key = validate_key(key)  # before any request
        self._require_versioning("restore_version")
        return restore_version(self, key, version_id)
