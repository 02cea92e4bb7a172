"""Downloads: fetch one object version, check it against the checksum S3 holds, and only then hand it over.

Kept apart from :class:`~rentaliq.runtime.files.Files` (which decides *how* to fetch: one GET below the
multipart threshold, s3transfer's concurrent ranged GETs above it) because the verification rules are the
delicate part: whole-object or composite CRC32 (part size from ``HeadObject PartNumber=1``), SHA digests,
and a temporary file renamed into place only once the data matched.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union

from rentaliq.runtime.checksums import Crc32s, digest_b64, digest_b64_file, stored_checksum
from rentaliq.runtime.errors import ChecksumMismatch
from rentaliq.runtime.file_results import DownloadResult
from rentaliq.runtime.s3_errors import s3_errors
from rentaliq.runtime.transfer import KnownObject, atomic_destination, seekable

if TYPE_CHECKING:
    from rentaliq.runtime.files import Files

Destination = Union[None, str, "os.PathLike[str]", BinaryIO]


class Download:
    """One object version being downloaded by ``files``: its HEAD answer and the version pin every GET uses."""

    def __init__(self, files: Files, key: str, head: Mapping[str, Any], pin: dict[str, str]) -> None:
        self.files, self.key, self.head, self.pin = files, key, head, pin

    def small(self, dest: Destination) -> DownloadResult:
        """Below the multipart threshold: one GET, checked before the data reaches ``dest``."""
        files, key, head, pin = self.files, self.key, self.head, self.pin
        args: dict[str, Any] = dict(pin) if pin else ({"IfMatch": head["ETag"]} if head.get("ETag") else {})
        with s3_errors(files.bucket, key, pin.get("VersionId")):
            response = files.client.get_object(Bucket=files.bucket, Key=key, ChecksumMode="ENABLED", **args)
            data = response["Body"].read()  # botocore also checks a whole-object checksum at the end of the body
        verified = self.verify(lambda part: files.checksums.of_buffer(data, part), lambda: digest_b64(head, data))
        path = None
        if dest is None:
            return self.result(verified, data=data)
        if isinstance(dest, (str, os.PathLike)):
            path = Path(dest)
            with atomic_destination(path) as target:
                target.file.write(data)
        else:
            dest.write(data)
        return self.result(verified, path=path)

    def managed(self, dest: Destination) -> DownloadResult:
        """s3transfer's concurrent ranged GETs; into a path through a temporary file renamed once verified."""
        files, key, head, pin = self.files, self.key, self.head, self.pin
        manager = files._transfers()
        subscribers = [KnownObject(int(head["ContentLength"]), head.get("ETag"))]
        if dest is None:
            buffer = io.BytesIO()
            manager.download(files.bucket, key, buffer, extra_args=pin, subscribers=subscribers).result()
            data = buffer.getvalue()
            verified = self.verify(lambda part: files.checksums.of_buffer(data, part), lambda: digest_b64(head, data))
            return self.result(verified, data=data)
        if isinstance(dest, (str, os.PathLike)):
            path = Path(dest)
            with atomic_destination(path) as target:
                manager.download(files.bucket, key, target.file, extra_args=pin, subscribers=subscribers).result()
                target.file.flush()
                tmp = target.tmp_path
                verified = self.verify(lambda part: files.checksums.of_file(tmp, part), lambda: digest_b64_file(head, tmp))
            return self.result(verified, path=path)
        start = dest.tell() if seekable(dest) else None
        manager.download(files.bucket, key, dest, extra_args=pin, subscribers=subscribers).result()
        verified = False
        if start is not None and getattr(dest, "readable", lambda: False)():

            def from_dest(part: int) -> Crc32s:
                dest.seek(start)
                sums: Crc32s = files.checksums.of_stream(dest, part)
                return sums

            verified = self.verify(from_dest, lambda: None)
        return self.result(verified)

    def verify(self, crc32s: Any, digest: Any) -> bool:
        """Compare the data with the object's checksum; True if checked, False if S3 holds none we can recompute."""
        files, key, head = self.files, self.key, self.head
        stored = stored_checksum(head)
        if stored is None:
            return False
        if stored.algorithm != "CRC32":
            if stored.parts is not None:
                return False  # composite SHA checksums: not recomputed
            actual = digest()
            if actual is None:
                return False
        else:
            part = int(head["ContentLength"]) or 1
            if stored.parts is not None and stored.parts > 1:
                first_part = self.first_part_size()
                if first_part is None:
                    return False
                part = first_part
            sums = crc32s(part)
            if stored.parts is None:
                actual = sums.full_b64
            elif len(sums.parts) != stored.parts:
                actual = f"{sums.composite_b64}-{len(sums.parts)}"
            else:
                actual = sums.composite_b64
        if actual != stored.value:
            raise ChecksumMismatch(
                f"s3://{files.bucket}/{key}: the data received has {stored.algorithm} {actual}, the object {stored.display}; nothing was kept"
            )
        return True

    def first_part_size(self) -> int | None:
        """A composite checksum is recomputed part by part; parts have the size of part 1 (the last may be shorter)."""
        files, key, pin = self.files, self.key, self.pin
        try:
            part = files.client.head_object(Bucket=files.bucket, Key=key, PartNumber=1, **pin)
        except Exception:  # noqa: BLE001 - no part information: the checksum cannot be recomputed
            return None
        size = part.get("ContentLength")
        return int(size) if size else None

    def result(self, verified: bool, *, path: Path | None = None, data: bytes | None = None) -> DownloadResult:
        files, key, head = self.files, self.key, self.head
        stored = stored_checksum(head)
        return DownloadResult(
            bucket=files.bucket,
            key=key,
            size=int(head["ContentLength"]),
            etag=head.get("ETag"),
            version_id=head.get("VersionId"),
            server_side_encryption=head.get("ServerSideEncryption"),
            content_type=head.get("ContentType"),
            checksum_crc32=stored.display if stored is not None and stored.algorithm == "CRC32" else None,
            checksum_verified=verified,
            path=path,
            data=data,
        )
