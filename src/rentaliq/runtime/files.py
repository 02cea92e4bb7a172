"""Files in the environment's S3 bucket: encrypted, checksummed, validated keys.

* The bucket comes from the ``s3/config`` secret, the region too; the client from the standard
  AWS configuration (or injected), so the same code runs on AWS and the local cloud.
* Every write asks for server-side encryption (``RuntimeConfig.sse``) and checks that S3
  reports it back.
* Integrity: for data whose size is known up front (bytes, paths, seekable files) the SDK computes
  the whole object's CRC32 and sends it, so S3 verifies the object end to end (``FULL_OBJECT``
  checksum, also for multipart uploads); downloads recompute it and refuse data that does not
  match, before anything reaches the destination path.  Non-seekable streams get S3's per-part
  checksums (botocore computes them) and a size check.
* Large transfers go through s3transfer's managed, concurrent multipart transfers; small ones are
  one request (and need no extra HEAD to report encryption and version).
* Versions (list, restore) exist only where the bucket is versioned: QA and PROD.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import mimetypes
import os
import tempfile
import threading
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Union

from rentaliq.runtime.errors import ChecksumMismatch, EncryptionMissing, ObjectNotFound, VersioningNotEnabled
from rentaliq.runtime.keys import validate_key, validate_prefix
from rentaliq.runtime.secrets import RuntimeConfig, S3Config, Secrets

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
Destination = Union[None, str, "os.PathLike[str]", BinaryIO]

_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_COPY_OBJECT_LIMIT = 5 * 1024**3  # CopyObject's single-request limit; above it, a multipart copy
_READ_CHUNK = 8 * 1024 * 1024
_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


# --------------------------------------------------------------------------- results


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
    """Base64 CRC32 of the whole object as sent; S3 verified it when ``checksum_type`` is FULL_OBJECT."""
    checksum_type: str | None
    """FULL_OBJECT (verified end to end) or COMPOSITE/None (streams: S3 verified each part)."""


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
    """True when the data's checksum was recomputed and matched the object's full-object checksum."""
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
    return mimetypes.guess_type(key, strict=False)[0] or _DEFAULT_CONTENT_TYPE


# --------------------------------------------------------------------------- checksums


def _b64_crc32(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")


def _crc32_of_stream(stream: BinaryIO) -> tuple[int, int]:
    """CRC32 and length from the current position to the end (zlib releases the GIL on big buffers)."""
    crc, size = 0, 0
    buf = bytearray(_READ_CHUNK)
    view = memoryview(buf)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            chunk: Any = view[:n]
        else:
            chunk = stream.read(_READ_CHUNK)
            if not chunk:
                break
            n = len(chunk)
        crc = zlib.crc32(chunk, crc)
        size += n
    return crc, size


def _crc32_of_file(path: str | os.PathLike[str]) -> tuple[int, int]:
    with open(path, "rb", buffering=0) as fh:
        return _crc32_of_stream(fh)  # type: ignore[arg-type]


class _Crc32Reader:
    """Wraps a non-seekable stream; s3transfer reads such streams strictly in order."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.crc = 0
        self.size = 0

    def read(self, amt: int = -1) -> bytes:
        data = self._raw.read(amt)
        if data:
            self.crc = zlib.crc32(data, self.crc)
            self.size += len(data)
        return data

    def seekable(self) -> bool:
        return False


def _expected_checksum(head: Mapping[str, Any]) -> tuple[str, str] | None:
    """The object's whole-object checksum (algorithm, base64), if S3 holds one we can recompute.

    A COMPOSITE checksum (a checksum of the parts' checksums) cannot be recomputed from the data
    alone.  When S3 omits ChecksumType, only a single-part object (ETag without ``-N``) counts.
    """
    kind = head.get("ChecksumType")
    single_part = "-" not in (head.get("ETag") or "")
    if kind == "COMPOSITE" or (kind is None and not single_part):
        return None
    for algorithm in ("CRC32", "SHA256", "SHA1"):
        value = head.get(f"Checksum{algorithm}")
        if value and "-" not in value:
            return algorithm, value
    return None


def _checksum_of(algorithm: str, data: Any) -> str:
    if algorithm == "CRC32":
        return _b64_crc32(zlib.crc32(data))
    return base64.b64encode(hashlib.new(algorithm.lower(), data).digest()).decode("ascii")


def _checksum_of_file(algorithm: str, path: str | os.PathLike[str]) -> str:
    if algorithm == "CRC32":
        return _b64_crc32(_crc32_of_file(path)[0])
    digest = hashlib.new(algorithm.lower())
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii")


def _seekable(stream: Any) -> bool:
    try:
        if not stream.seekable():
            return False
        stream.tell()
        return True
    except (AttributeError, OSError, ValueError):
        return False


class _KnownObject:
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


# --------------------------------------------------------------------------- files


class Files:
    """The environment's file bucket.  ``client`` is an optional boto3 S3 client (else one is made)."""

    def __init__(self, secrets: Secrets | None = None, *, config: RuntimeConfig | None = None, client: Any | None = None) -> None:
        if secrets is None:
            secrets = Secrets(config)
        self.secrets = secrets
        self.config = config if config is not None else secrets.config
        self._client = client
        self._manager: Any = None
        self._lock = threading.Lock()
        self._versioned: bool | None = None

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
        if manager is not None:
            manager.shutdown()

    def __enter__(self) -> Files:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sse_args(self) -> dict[str, str]:
        args = {"ServerSideEncryption": self.config.sse}
        if self.config.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.config.sse_kms_key_id
        return args

    def _client_error(self, exc: Exception, key: str, version_id: str | None) -> Exception:
        from botocore.exceptions import ClientError

        from botocore.exceptions import FlexibleChecksumError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND or (version_id and code in ("400", "InvalidArgument")):
                return ObjectNotFound(self.bucket, key, version_id)
        if isinstance(exc, FlexibleChecksumError):
            return ChecksumMismatch(f"s3://{self.bucket}/{key}: the data received does not match the object's checksum; nothing was kept")
        return exc

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

        ``content_type`` defaults to a guess from the key's extension.  Large data (from
        ``multipart_threshold``) is sent as a concurrent multipart upload.
        """
        key = validate_key(key)
        ctype = content_type or guess_content_type(key)
        extra: dict[str, Any] = {**self._sse_args(), "ContentType": ctype}
        if metadata:
            extra["Metadata"] = dict(metadata)
        threshold = self.config.multipart_threshold

        if isinstance(source, (bytes, bytearray, memoryview)):
            data = source if isinstance(source, bytes) else bytes(source)
            crc = zlib.crc32(data)
            if len(data) < threshold:
                return self._put_small(key, data, crc, extra)
            return self._put_managed(key, io.BytesIO(data), len(data), crc, extra)
        if isinstance(source, (str, os.PathLike)):
            crc, size = _crc32_of_file(source)
            if size < threshold:
                return self._put_small(key, Path(source).read_bytes(), crc, extra)
            return self._put_managed(key, os.fspath(source), size, crc, extra)
        if hasattr(source, "read"):
            if _seekable(source):
                start = source.tell()
                crc, size = _crc32_of_stream(source)
                source.seek(start)
                if size < threshold:
                    return self._put_small(key, source.read(), crc, extra)
                return self._put_managed(key, source, size, crc, extra)
            reader = _Crc32Reader(source)
            return self._put_managed(key, reader, None, None, extra, reader=reader)
        raise TypeError(f"upload source must be bytes, a path or a binary file object, not {type(source).__name__}")

    def _put_small(self, key: str, data: bytes, crc: int, extra: dict[str, Any]) -> UploadResult:
        checksum = _b64_crc32(crc)
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumAlgorithm="CRC32", ChecksumCRC32=checksum, **extra)
        except Exception as exc:
            raise self._client_error(exc, key, None) from None
        stored = response.get("ChecksumCRC32")
        if stored is not None and stored != checksum:
            raise ChecksumMismatch(f"s3://{self.bucket}/{key}: S3 stored CRC32 {stored}, the data has {checksum}")
        return self._upload_result(key, len(data), response, extra["ContentType"], checksum, response.get("ChecksumType") or "FULL_OBJECT")

    def _put_managed(
        self,
        key: str,
        source: Any,
        size: int | None,
        crc: int | None,
        extra: dict[str, Any],
        *,
        reader: _Crc32Reader | None = None,
    ) -> UploadResult:
        args = dict(extra)
        checksum = _b64_crc32(crc) if crc is not None else None
        if checksum is not None:
            args["ChecksumCRC32"] = checksum  # s3transfer turns this into a FULL_OBJECT multipart checksum
        future = self._transfers().upload(source, self.bucket, key, extra_args=args, subscribers=[_KnownObject(size)])
        future.result()
        if reader is not None:
            size, checksum = reader.size, _b64_crc32(reader.crc)
        head = self._head_raw(key, None)
        if head.get("ContentLength") != size:
            raise ChecksumMismatch(f"s3://{self.bucket}/{key}: S3 stored {head.get('ContentLength')} bytes, {size} were sent")
        expected = _expected_checksum(head)
        if reader is None and expected is not None and expected[0] == "CRC32" and expected[1] != checksum:
            raise ChecksumMismatch(f"s3://{self.bucket}/{key}: S3 stored CRC32 {expected[1]}, the data has {checksum}")
        return self._upload_result(key, size or 0, head, extra["ContentType"], checksum, head.get("ChecksumType"))

    def _upload_result(self, key: str, size: int, response: Mapping[str, Any], ctype: str, checksum: str | None, checksum_type: str | None) -> UploadResult:
        sse = response.get("ServerSideEncryption")
        if not sse:
            raise EncryptionMissing(f"s3://{self.bucket}/{key}: S3 reported no server-side encryption for the object just written")
        return UploadResult(
            bucket=self.bucket,
            key=key,
            size=size,
            etag=response.get("ETag"),
            version_id=response.get("VersionId"),
            server_side_encryption=sse,
            sse_kms_key_id=response.get("SSEKMSKeyId"),
            content_type=ctype,
            checksum_crc32=checksum,
            checksum_type=checksum_type,
        )

    # ------------------------------------------------------------------ download

    def download(self, key: str, dest: Destination = None, *, version_id: str | None = None) -> DownloadResult:
        """Fetch ``key`` (or one version of it) into ``dest``: None (bytes in ``result.data``), a path or a binary file.

        The data is checked against the object's whole-object checksum before it is written to a
        path (a temporary file is renamed into place) or to a file object (small objects);
        a mismatch raises ChecksumMismatch and leaves the destination untouched.
        """
        key = validate_key(key)
        head = self._head_raw(key, version_id)
        size = int(head["ContentLength"])
        expected = _expected_checksum(head)
        pin = {"VersionId": head["VersionId"]} if head.get("VersionId") not in (None, "null") else {}
        if size < self.config.multipart_threshold:
            return self._get_small(key, head, pin, expected, dest)
        return self._get_managed(key, head, pin, expected, dest)

    def read(self, key: str, *, version_id: str | None = None) -> bytes:
        """The object's bytes (checksum verified when the object has one)."""
        data = self.download(key, version_id=version_id).data
        assert data is not None
        return data

    def _get_small(self, key: str, head: Mapping[str, Any], pin: dict[str, str], expected: tuple[str, str] | None, dest: Destination) -> DownloadResult:
        args: dict[str, Any] = dict(pin) if pin else ({"IfMatch": head["ETag"]} if head.get("ETag") else {})
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED", **args)
            data = response["Body"].read()  # botocore checks a full-object checksum at the end of the body
        except Exception as exc:
            raise self._client_error(exc, key, pin.get("VersionId")) from None
        verified = self._verify(key, expected, data=data)
        path = None
        if dest is None:
            return self._download_result(key, head, verified, data=data)
        if isinstance(dest, (str, os.PathLike)):
            path = Path(dest)
            with _atomic_destination(path) as target:
                target.file.write(data)
        else:
            dest.write(data)
        return self._download_result(key, head, verified, path=path)

    def _get_managed(self, key: str, head: Mapping[str, Any], pin: dict[str, str], expected: tuple[str, str] | None, dest: Destination) -> DownloadResult:
        manager = self._transfers()
        subscribers = [_KnownObject(int(head["ContentLength"]), head.get("ETag"))]
        if dest is None:
            buffer = io.BytesIO()
            manager.download(self.bucket, key, buffer, extra_args=pin, subscribers=subscribers).result()
            data = buffer.getvalue()
            return self._download_result(key, head, self._verify(key, expected, data=data), data=data)
        if isinstance(dest, (str, os.PathLike)):
            path = Path(dest)
            with _atomic_destination(path) as target:
                manager.download(self.bucket, key, target.file, extra_args=pin, subscribers=subscribers).result()
                target.file.flush()
                verified = self._verify(key, expected, path=target.tmp_path)
            return self._download_result(key, head, verified, path=path)
        start = dest.tell() if _seekable(dest) else None
        manager.download(self.bucket, key, dest, extra_args=pin, subscribers=subscribers).result()
        verified = False
        if start is not None and expected is not None and getattr(dest, "readable", lambda: False)():
            dest.seek(start)
            actual = _b64_crc32(_crc32_of_stream(dest)[0]) if expected[0] == "CRC32" else None
            if actual is not None:
                if actual != expected[1]:
                    raise ChecksumMismatch(f"s3://{self.bucket}/{key}: downloaded data has CRC32 {actual}, the object {expected[1]}")
                verified = True
        return self._download_result(key, head, verified)

    def _verify(self, key: str, expected: tuple[str, str] | None, *, data: Any = None, path: str | None = None) -> bool:
        if expected is None:
            return False
        algorithm, value = expected
        actual = _checksum_of(algorithm, data) if path is None else _checksum_of_file(algorithm, path)
        if actual != value:
            raise ChecksumMismatch(f"s3://{self.bucket}/{key}: downloaded data has {algorithm} {actual}, the object {value}; nothing was kept")
        return True

    def _download_result(self, key: str, head: Mapping[str, Any], verified: bool, *, path: Path | None = None, data: bytes | None = None) -> DownloadResult:
        return DownloadResult(
            bucket=self.bucket,
            key=key,
            size=int(head["ContentLength"]),
            etag=head.get("ETag"),
            version_id=head.get("VersionId"),
            server_side_encryption=head.get("ServerSideEncryption"),
            content_type=head.get("ContentType"),
            checksum_crc32=head.get("ChecksumCRC32"),
            checksum_verified=verified,
            path=path,
            data=data,
        )

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
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key, **args)
        except Exception as exc:
            raise self._client_error(exc, key, version_id) from None

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
        try:
            response = self.client.delete_object(Bucket=self.bucket, Key=key, **args)
        except Exception as exc:
            raise self._client_error(exc, key, version_id) from None
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
        return self.client.generate_presigned_url(operation, Params=params, ExpiresIn=expiry)

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

    def list_versions(self, key: str) -> list[ObjectVersion]:
        """Every version and delete marker of exactly ``key``, newest first."""
        key = validate_key(key)
        self._require_versioning("list_versions")
        out: list[ObjectVersion] = []
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
            for item in page.get("Versions", []):
                if item["Key"] == key:
                    out.append(ObjectVersion(key, item["VersionId"], bool(item.get("IsLatest")), False, int(item["Size"]), item.get("ETag"), item.get("LastModified")))
            for item in page.get("DeleteMarkers", []):
                if item["Key"] == key:
                    out.append(ObjectVersion(key, item["VersionId"], bool(item.get("IsLatest")), True, None, None, item.get("LastModified")))
        out.sort(key=lambda v: (not v.is_latest, -(v.last_modified.timestamp() if v.last_modified else 0.0)))
        return out

    def restore_version(self, key: str, version_id: str) -> UploadResult:
        """Make ``version_id`` the current version again by copying it over ``key`` (history is kept)."""
        key = validate_key(key)
        self._require_versioning("restore_version")
        source = self._head_raw(key, version_id)
        size = int(source["ContentLength"])
        copy_source = {"Bucket": self.bucket, "Key": key, "VersionId": version_id}
        args: dict[str, Any] = {**self._sse_args(), "MetadataDirective": "COPY"}
        if size <= _COPY_OBJECT_LIMIT:
            try:
                self.client.copy_object(Bucket=self.bucket, Key=key, CopySource=copy_source, ChecksumAlgorithm="CRC32", **args)
            except Exception as exc:
                raise self._client_error(exc, key, version_id) from None
        else:
            args.pop("MetadataDirective")
            args["ChecksumAlgorithm"] = "CRC32"
            self._transfers().copy(copy_source, self.bucket, key, extra_args=args, subscribers=[_KnownObject(size)]).result()
        head = self._head_raw(key, None)
        before, after = _expected_checksum(source), _expected_checksum(head)
        if before and after and before[0] == after[0] and before[1] != after[1]:
            raise ChecksumMismatch(f"s3://{self.bucket}/{key}: restored copy has {after[0]} {after[1]}, version {version_id} has {before[1]}")
        if head.get("ContentLength") != size:
            raise ChecksumMismatch(f"s3://{self.bucket}/{key}: restored copy has {head.get('ContentLength')} bytes, version {version_id} has {size}")
        checksum = after[1] if after and after[0] == "CRC32" else None
        return self._upload_result(key, size, head, head.get("ContentType") or _DEFAULT_CONTENT_TYPE, checksum, head.get("ChecksumType"))


class _atomic_destination:
    """A temporary file beside ``path``, renamed into place on success and removed on failure.

    A failed or corrupt download therefore never replaces (or half-writes) the destination.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp_path = ""
        self.file: Any = None

    def __enter__(self) -> _atomic_destination:
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
