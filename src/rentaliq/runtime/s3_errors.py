"""botocore's S3 errors as the runtime's own: a missing key or version, a checksum the data does not match.

One context manager instead of a blind ``except Exception`` at every S3 call of :class:`~rentaliq.runtime.files.Files`:
what it cannot translate passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rentaliq.runtime.errors import ChecksumMismatch, FileAccessDenied, ObjectNotFound

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_DENIED = frozenset({"AccessDenied", "403"})


@contextmanager
def s3_errors(bucket: str, key: str, version_id: str | None, action: str = "s3:GetObject") -> Iterator[None]:
    """Raise :func:`translated` for an error S3 gave about ``key``; any other error passes unchanged. ``action`` is
    the IAM action the call needs, named in FileAccessDenied."""
    try:
        yield
    except Exception as exc:
        error = translated(exc, bucket, key, version_id, action)
        if error is exc:
            raise
        raise error from None


def translated(exc: Exception, bucket: str, key: str, version_id: str | None, action: str = "s3:GetObject") -> Exception:
    """ObjectNotFound, FileAccessDenied or ChecksumMismatch where ``exc`` means one; else ``exc`` itself."""
    from botocore.exceptions import ClientError, FlexibleChecksumError  # botocore loads only once S3 is used

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND or (version_id and code in ("400", "InvalidArgument")):
            return ObjectNotFound(bucket, key, version_id)
        if code in _DENIED:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            return FileAccessDenied(bucket, key, action, "" if message in ("", "Forbidden") else message)
    if isinstance(exc, FlexibleChecksumError):
        return ChecksumMismatch(f"s3://{bucket}/{key}: the data received does not match the object's checksum; nothing was kept")
    return exc
