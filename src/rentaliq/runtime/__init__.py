"""The runtime SDK RentalIQ services use: secrets, the database over TLS, and files in S3.

    from rentaliq.runtime import Database, Files, RuntimeConfig, Secrets

    secrets = Secrets(RuntimeConfig(env="qa"))          # or $RENTALIQ_ENV
    db = Database(secrets)                              # pool from db/credentials, TLS verify-full (ca_bundle or $PGSSLROOTCERT)
    rows = db.query("SELECT id FROM listings WHERE city = %s", ("Lyon",))
    files = Files(secrets)                              # bucket from s3/config
    files.upload("reports/2025-11.pdf", Path("report.pdf"))

Everything talks to AWS through boto3's standard configuration (credentials chain, region,
``AWS_ENDPOINT_URL``), so the same code runs on AWS and on the local cloud; each class also takes
an injected boto3 client.
"""

from rentaliq.runtime.database import (
    Database,
    TlsStatus,
    connection_kwargs,
    database_url,
    is_auth_failure,
    is_connection_loss,
    is_retryable,
)
from rentaliq.runtime.errors import (
    ChecksumMismatch,
    ConfigError,
    DatabaseStopped,
    EncryptionMissing,
    FilesError,
    InvalidObjectKey,
    InvalidSecret,
    ObjectNotFound,
    RuntimeSDKError,
    SecretAccessDenied,
    SecretError,
    SecretNotFound,
    SecretUnavailable,
    VersioningNotEnabled,
)
from rentaliq.runtime.files import (
    DeleteResult,
    DownloadResult,
    Files,
    ObjectInfo,
    ObjectVersion,
    UploadResult,
    guess_content_type,
)
from rentaliq.runtime.keys import MAX_KEY_BYTES, validate_key, validate_prefix
from rentaliq.runtime.secrets import (
    API_KEYS,
    DB_CONNECTION_STRING,
    DB_CREDENTIALS,
    ENV_VAR,
    S3_CONFIG,
    Credentials,
    RuntimeConfig,
    S3Config,
    SecretInfo,
    Secrets,
    SecretValue,
    fetch_credentials,
)

__all__ = [
    "API_KEYS",
    "DB_CONNECTION_STRING",
    "DB_CREDENTIALS",
    "ENV_VAR",
    "MAX_KEY_BYTES",
    "S3_CONFIG",
    "ChecksumMismatch",
    "ConfigError",
    "Credentials",
    "Database",
    "DatabaseStopped",
    "DeleteResult",
    "DownloadResult",
    "EncryptionMissing",
    "Files",
    "FilesError",
    "InvalidObjectKey",
    "InvalidSecret",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectVersion",
    "RuntimeConfig",
    "RuntimeSDKError",
    "S3Config",
    "SecretAccessDenied",
    "SecretError",
    "SecretInfo",
    "SecretNotFound",
    "SecretUnavailable",
    "SecretValue",
    "Secrets",
    "TlsStatus",
    "UploadResult",
    "VersioningNotEnabled",
    "connection_kwargs",
    "database_url",
    "fetch_credentials",
    "guess_content_type",
    "is_auth_failure",
    "is_connection_loss",
    "is_retryable",
    "validate_key",
    "validate_prefix",
]
