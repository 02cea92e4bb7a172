"""The errors the runtime SDK raises, in one place so that callers can catch them by family.

Every message names the thing (secret, object key, setting) and the rule that failed, and never
carries a secret value: messages end up in logs, HTTP error bodies and bug reports.  Where an
underlying exception could hold a value (a JSON parse error keeps the whole document, a failed
psycopg connection keeps the password in ``exc.pgconn``), the SDK raises its own error outside the
``except`` block so that not even ``__context__`` keeps the original.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ChecksumMismatch",
    "ConfigError",
    "DatabaseStopped",
    "EncryptionMissing",
    "FilesError",
    "InvalidObjectKey",
    "InvalidSecret",
    "ObjectNotFound",
    "RuntimeSDKError",
    "SecretAccessDenied",
    "SecretError",
    "SecretNotFound",
    "SecretUnavailable",
    "VersioningNotEnabled",
]


class RuntimeSDKError(Exception):
    """Base class of every error raised by ``rentaliq.runtime``."""


class ConfigError(RuntimeSDKError, ValueError):
    """A setting is unknown or out of range; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid runtime configuration: " + "; ".join(self.problems))


# --------------------------------------------------------------------------- secrets


class SecretError(RuntimeSDKError):
    """A secret could not be read.  ``name`` is the logical name, ``secret_id`` the full path."""

    def __init__(self, message: str, *, name: str, secret_id: str) -> None:
        self.name = name
        self.secret_id = secret_id
        super().__init__(message)


class SecretNotFound(SecretError):
    """The secret does not exist (or is scheduled for deletion) in this environment."""


class SecretAccessDenied(SecretError):
    """The caller's IAM identity may not read (or decrypt) the secret."""


class SecretUnavailable(SecretError):
    """Secrets Manager could not be reached or failed; transient, worth retrying later."""


class InvalidSecret(SecretError):
    """The secret exists but is not in the deployed format (not a JSON object, missing fields)."""


# --------------------------------------------------------------------------- database


class DatabaseStopped(RuntimeSDKError):
    """The environment's database is stopped (an off-hours schedule, or by hand), stopping or starting: RDS says so,
    and the message says when it starts again and how to start it now (``rentaliq wake ENV``)."""

    def __init__(self, message: str, *, instance: str, status: str, env: str) -> None:
        self.instance = instance
        self.status = status
        self.env = env
        super().__init__(message)


# --------------------------------------------------------------------------- files


class FilesError(RuntimeSDKError):
    """Base class of the errors of ``rentaliq.runtime.files``."""


class InvalidObjectKey(FilesError, ValueError):
    """An object key breaks one or more rules; ``rules`` lists each one.

    The key is shown (keys are not secret), escaped with ``repr`` so control characters are
    visible, and shortened when long.
    """

    def __init__(self, key: object, rules: Sequence[str]) -> None:
        self.key = key
        self.rules = tuple(rules)
        shown = repr(key)
        if len(shown) > 80:
            shown = shown[:60] + f"...' ({len(shown)} chars)"
        super().__init__(f"invalid object key {shown}: " + "; ".join(self.rules))


class ObjectNotFound(FilesError):
    """No such object (or version) in the environment's bucket."""

    def __init__(self, bucket: str, key: str, version_id: str | None = None) -> None:
        self.bucket = bucket
        self.key = key
        self.version_id = version_id
        where = f"s3://{bucket}/{key}" + (f" version {version_id}" if version_id else "")
        super().__init__(f"object not found: {where}")


class VersioningNotEnabled(FilesError):
    """Version listing and restore need a versioned bucket (the QA and PROD specs enable it)."""


class ChecksumMismatch(FilesError):
    """The data read or stored does not match the object's checksum; nothing was kept."""


class EncryptionMissing(FilesError):
    """S3 reported no server-side encryption for an object that the SDK wrote with it."""
