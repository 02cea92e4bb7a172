"""Secrets Manager reads with an in-process cache: the root every other runtime module depends on.

Why a cache of our own rather than ``aws-secretsmanager-caching``: services read the DB
credentials on every new connection and the API keys on every request, so the hit path must cost
a dict lookup and a clock read, without a lock or a deep copy.  Misses and refreshes take a
per-secret lock, so a hundred threads that miss at once cause one ``GetSecretValue``.  Expiry is
jittered (up to ``secret_ttl_jitter`` of the TTL early) so that the replicas of a service do not
refresh in lock-step.

Values are wrapped (``SecretValue``, ``Credentials``) so that ``repr``/``str``/f-strings and
tracebacks show ``***``; the plain value comes out only through an explicit ``reveal()`` or
field access.  ``RuntimeConfig`` lives here because the ``Secrets`` object carries it to
``Database`` and ``Files``, which are built on top of it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rentaliq import naming
from rentaliq.runtime.errors import (
    ConfigError,
    InvalidSecret,
    SecretAccessDenied,
    SecretNotFound,
    SecretUnavailable,
)

logger = logging.getLogger(__name__)

__all__ = [
    "API_KEYS",
    "DB_CONNECTION_STRING",
    "DB_CREDENTIALS",
    "ENV_VAR",
    "S3_CONFIG",
    "Credentials",
    "RuntimeConfig",
    "S3Config",
    "SecretInfo",
    "SecretValue",
    "Secrets",
    "fetch_credentials",
]

ENV_VAR = "RENTALIQ_ENV"
DB_CREDENTIALS, DB_CONNECTION_STRING, API_KEYS, S3_CONFIG = naming.SECRET_NAMES

MiB = 1024 * 1024
_MASK = "***"
_ENV_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_SSLMODES = ("require", "verify-ca", "verify-full")  # never disable/allow/prefer: TLS is mandatory
_SSE = ("AES256", "aws:kms")
# After a transient Secrets Manager failure, keep serving the cached value and try again this much later.
_STALE_RETRY_S = 5.0


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class RuntimeConfig:
    """Every knob of the runtime SDK; each default is the behaviour you get without it.

    Unknown keys are rejected (``RuntimeConfig(ttl=5)`` is a TypeError, ``from_mapping`` a
    ConfigError listing the allowed keys), so a typo cannot silently fall back to a default.
    """

    env: str | None = None
    """Environment (lab, qa, prod); None reads $RENTALIQ_ENV."""
    secret_ttl_s: float = 300.0
    """How long a secret is served from memory; 0 disables the cache."""
    secret_ttl_jitter: float = 0.1
    """Fraction of the TTL by which each entry expires early, at random (spreads refreshes)."""
    ca_bundle: str | None = None
    """PEM bundle of the DB server's CA (on AWS the RDS global bundle); set, it turns on sslmode=verify-full."""
    sslmode: str | None = None
    """Override: require, verify-ca or verify-full; None means verify-full with ca_bundle, else require."""
    connect_timeout_s: float = 10.0
    application_name: str = "rentaliq"
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout_s: float = 30.0
    """How long a request waits for a pooled connection (one retry attempt)."""
    pool_max_idle_s: float = 600.0
    pool_max_lifetime_s: float = 3600.0
    pool_check_idle_s: float = 1.0
    """A pooled connection idle longer than this is pinged before use; busy ones are not (no extra round trip)."""
    retry_attempts: int = 5
    """Tries (not retries) for idempotent database work after connection loss; bounded on purpose."""
    retry_base_delay_s: float = 0.05
    retry_max_delay_s: float = 2.0
    sse: str = "AES256"
    """Server-side encryption requested on every put: AES256 (SSE-S3) or aws:kms."""
    sse_kms_key_id: str | None = None
    multipart_threshold: int = 16 * MiB
    multipart_chunksize: int = 16 * MiB
    max_concurrency: int = 10
    presign_expiry_s: int = 3600

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RuntimeConfig:
        """Build from a dict (a TOML table, parsed env vars); unknown keys are an error, not ignored."""
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ConfigError([f"unknown setting {k!r}; allowed: {', '.join(allowed)}" for k in unknown])
        return cls(**values)

    def replace(self, **changes: Any) -> RuntimeConfig:
        return RuntimeConfig.from_mapping({**dataclasses.asdict(self), **changes})

    def resolve_env(self) -> str:
        env = self.env if self.env is not None else os.environ.get(ENV_VAR)
        if not env:
            raise ConfigError([f"no environment: pass env= or set ${ENV_VAR} (e.g. lab, qa, prod)"])
        if not _ENV_RE.match(env):
            raise ConfigError([f"env={env!r} is invalid; allowed: lower-case letters, digits and '-', like lab, qa, prod"])
        return env

    @property
    def effective_sslmode(self) -> str:
        if self.sslmode is not None:
            return self.sslmode
        return "verify-full" if self.ca_bundle else "require"


def _config_problems(c: RuntimeConfig) -> list[str]:
    problems: list[str] = []

    def bad(name: str, allowed: str) -> None:
        problems.append(f"{name}={getattr(c, name)!r} is invalid; allowed: {allowed}")

    def number(name: str, *, minimum: float, integer: bool = False) -> None:
        value = getattr(c, name)
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < minimum:
            bad(name, f"{'an integer' if integer else 'a number'} >= {minimum}")

    if c.env is not None and (not isinstance(c.env, str) or not _ENV_RE.match(c.env)):
        bad("env", "lower-case letters, digits and '-', like lab, qa, prod")
    number("secret_ttl_s", minimum=0)
    if isinstance(c.secret_ttl_jitter, bool) or not isinstance(c.secret_ttl_jitter, (int, float)) or not 0 <= c.secret_ttl_jitter < 1:
        bad("secret_ttl_jitter", "a fraction in [0, 1)")
    if c.ca_bundle is not None and not isinstance(c.ca_bundle, (str, os.PathLike)):
        bad("ca_bundle", "a path to a PEM file, or None")
    if c.sslmode is not None and c.sslmode not in _SSLMODES:
        bad("sslmode", ", ".join(_SSLMODES) + " or None (TLS cannot be turned off)")
    if c.sslmode in ("verify-ca", "verify-full") and not c.ca_bundle:
        bad("sslmode", "require unless ca_bundle is set (verification needs the CA bundle)")
    for name in ("connect_timeout_s", "pool_timeout_s", "pool_max_idle_s", "pool_max_lifetime_s", "pool_check_idle_s", "retry_base_delay_s", "retry_max_delay_s"):
        number(name, minimum=0)
    number("pool_min_size", minimum=0, integer=True)
    number("pool_max_size", minimum=1, integer=True)
    if isinstance(c.pool_min_size, int) and isinstance(c.pool_max_size, int) and c.pool_max_size < c.pool_min_size:
        bad("pool_max_size", f"at least pool_min_size ({c.pool_min_size})")
    number("retry_attempts", minimum=1, integer=True)
    if not isinstance(c.application_name, str) or len(c.application_name.encode()) > 63:
        bad("application_name", "a string of at most 63 bytes")
    if c.sse not in _SSE:
        bad("sse", " or ".join(_SSE))
    if c.sse_kms_key_id is not None and c.sse != "aws:kms":
        bad("sse_kms_key_id", "None unless sse='aws:kms'")
    number("multipart_threshold", minimum=5 * MiB, integer=True)
    number("multipart_chunksize", minimum=5 * MiB, integer=True)
    number("max_concurrency", minimum=1, integer=True)
    if isinstance(c.presign_expiry_s, bool) or not isinstance(c.presign_expiry_s, int) or not 1 <= c.presign_expiry_s <= 604800:
        bad("presign_expiry_s", "1 to 604800 seconds (SigV4's limit of 7 days)")
    return problems


# --------------------------------------------------------------------------- values


class SecretValue(Mapping[str, Any]):
    """A secret's JSON fields, read-only; ``repr``/``str`` show the field names, never the values."""

    __slots__ = ("_data", "_views", "name", "secret_id", "version_id")

    def __init__(self, name: str, secret_id: str, version_id: str | None, data: dict[str, Any]) -> None:
        self.name = name
        self.secret_id = secret_id
        self.version_id = version_id
        self._data = data
        self._views: dict[type, Any] = {}  # typed views (Credentials, S3Config), built once per fetched value

    def __getitem__(self, field_name: str) -> Any:
        return self._data[field_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(sorted(self._data))

    def reveal(self) -> dict[str, Any]:
        """The plain fields, as a new dict; the one deliberate way out."""
        return dict(self._data)

    def view(self, kind: type) -> Any:
        """``kind.from_secret(self)``, memoised: a cached secret is parsed once, not on every read."""
        try:
            return self._views[kind]
        except KeyError:
            built = self._views[kind] = kind.from_secret(self)
            return built

    def __repr__(self) -> str:
        return f"SecretValue(name={self.name!r}, version_id={self.version_id!r}, fields={list(self.fields)!r}, values={_MASK})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would copy the plain value somewhere we do not control
        raise TypeError("SecretValue cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


def _require(secret: SecretValue, fields: dict[str, type | tuple[type, ...]]) -> None:
    problems = []
    for name, kinds in fields.items():
        if name not in secret:
            problems.append(f"missing field {name!r}")
        elif not isinstance(secret[name], kinds) or isinstance(secret[name], bool):
            problems.append(f"field {name!r} has the wrong type")
    if problems:
        raise InvalidSecret(
            f"secret {secret.name!r} ({secret.secret_id}) is not in the deployed format: " + "; ".join(problems),
            name=secret.name,
            secret_id=secret.secret_id,
        )


@dataclass(frozen=True, repr=False)
class Credentials:
    """The ``db/credentials`` secret, typed.  ``repr`` masks the password."""

    username: str
    password: str = field(compare=False)
    host: str
    port: int
    dbname: str
    engine: str = "postgres"
    db_instance_identifier: str | None = None
    version_id: str | None = None

    @classmethod
    def from_secret(cls, secret: SecretValue) -> Credentials:
        _require(secret, {"username": str, "password": str, "host": str, "port": (int, str), "dbname": str})
        port = secret["port"]
        if isinstance(port, str) and not port.isdigit():
            _require(secret, {"port": int})  # reports the wrong type without showing it
        return cls(
            username=secret["username"],
            password=secret["password"],
            host=secret["host"],
            port=int(port),
            dbname=secret["dbname"],
            engine=secret.get("engine", "postgres"),
            db_instance_identifier=secret.get("dbInstanceIdentifier"),
            version_id=secret.version_id,
        )

    def __repr__(self) -> str:
        return (
            f"Credentials(username={self.username!r}, password={_MASK}, host={self.host!r}, port={self.port}, "
            f"dbname={self.dbname!r}, db_instance_identifier={self.db_instance_identifier!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Credentials cannot be pickled")


@dataclass(frozen=True)
class S3Config:
    """The ``s3/config`` secret: where the environment's files live (not sensitive, but deployed as a secret)."""

    bucket_name: str
    bucket_arn: str
    region: str

    @classmethod
    def from_secret(cls, secret: SecretValue) -> S3Config:
        _require(secret, {"bucket_name": str, "bucket_arn": str, "region": str})
        return cls(secret["bucket_name"], secret["bucket_arn"], secret["region"])


@dataclass(frozen=True)
class SecretInfo:
    """What a smoke test may print about a secret: where it is and its shape, never its values."""

    name: str
    secret_id: str
    version_id: str | None
    fields: tuple[str, ...]


# --------------------------------------------------------------------------- the cache


class Secrets:
    """Cached, thread-safe reads of the environment's secrets by logical name.

    ``client`` is any boto3 ``secretsmanager`` client; by default one is made from the standard
    AWS configuration (credentials chain, region, ``AWS_ENDPOINT_URL``), so the same code runs on
    AWS and on the local cloud.
    """

    def __init__(
        self, config: RuntimeConfig | None = None, *, client: Any | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``clock`` is the monotonic clock the TTLs count on (injectable, so tests move time instead of sleeping)."""
        self._now = clock
        self.config = config if config is not None else RuntimeConfig()
        self.env = self.config.resolve_env()
        self._client = client
        self._entries: dict[str, tuple[SecretValue, float]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        _install_botocore_redaction()

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> SecretValue:
        """The secret, from memory while fresh.  The hit path takes no lock."""
        entry = self._entries.get(name)
        if entry is not None and entry[1] > self._now():
            return entry[0]
        return self._load(name, force=False, stale=None)

    def refresh(self, name: str, *, stale: SecretValue | None = None) -> SecretValue:
        """Read the secret from Secrets Manager now (an uncached read) and cache it.

        With ``stale``, the value the caller found wanting (e.g. a password the database just
        rejected): if another thread already replaced it, that newer value is returned without a
        second request, so a burst of failures causes one refresh.
        """
        return self._load(name, force=True, stale=stale)

    def refresh_all(self) -> None:
        """Re-read every secret currently cached (e.g. on a rotation notification)."""
        for name in list(self._entries):
            self.refresh(name)

    def invalidate(self, name: str | None = None) -> None:
        """Forget one secret (or all); the next ``get`` reads it again."""
        if name is None:
            self._entries.clear()
        else:
            self._entries.pop(name, None)

    def secret_id(self, name: str) -> str:
        return naming.secret_path(self.env, name)

    def credentials(self) -> Credentials:
        """``db/credentials`` as Credentials (password masked in repr)."""
        return self.get(DB_CREDENTIALS).view(Credentials)

    def s3_config(self) -> S3Config:
        return self.get(S3_CONFIG).view(S3Config)

    def api_keys(self) -> SecretValue:
        """``api/keys``: fields api_key, jwt_secret, encryption_key."""
        secret = self.get(API_KEYS)
        _require(secret, {"api_key": str, "jwt_secret": str, "encryption_key": str})
        return secret

    def inventory(self) -> list[SecretInfo]:
        """Read all four secrets (fresh) and describe them without values; raises on the first unreadable one."""
        out = []
        for name in naming.SECRET_NAMES:
            secret = self.refresh(name)
            out.append(SecretInfo(name, secret.secret_id, secret.version_id, secret.fields))
        return out

    # ------------------------------------------------------------------ internals

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._guard:
                if self._client is None:
                    self._client = _default_client(self.env)
        return self._client

    def _lock_for(self, name: str) -> threading.Lock:
        lock = self._locks.get(name)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(name, threading.Lock())
        return lock

    def _expiry(self, now: float) -> float:
        ttl = self.config.secret_ttl_s
        return now + ttl * (1.0 - self.config.secret_ttl_jitter * random.random())

    def _load(self, name: str, *, force: bool, stale: SecretValue | None) -> SecretValue:
        secret_id = naming.secret_path(self.env, name)  # rejects unknown logical names
        with self._lock_for(name):
            entry = self._entries.get(name)
            now = self._now()
            if entry is not None:
                if stale is not None and entry[0] is not stale:
                    return entry[0]  # someone refreshed it while we waited for the lock
                if not force and entry[1] > now:
                    return entry[0]
            try:
                value = self._fetch(name, secret_id)
            except SecretUnavailable:
                if entry is None or force:
                    raise
                # A blip in Secrets Manager must not take the service down while we hold a value.
                logger.warning("secret %s: refresh failed, serving the cached version %s for %.0fs more", secret_id, entry[0].version_id, _STALE_RETRY_S)
                self._entries[name] = (entry[0], now + _STALE_RETRY_S)
                return entry[0]
            if self.config.secret_ttl_s > 0:
                self._entries[name] = (value, self._expiry(self._now()))
            return value

    def _fetch(self, name: str, secret_id: str) -> SecretValue:
        response: Mapping[str, Any] = {}
        error: Exception | None = None
        try:
            response = self.client.get_secret_value(SecretId=secret_id)
        except Exception as exc:  # noqa: BLE001 - classified below, outside the except block: no exception context is chained
            error = _classify(exc, name, secret_id, self.env)
        if error is not None:
            raise error
        data = _parse(response, name, secret_id)
        version = response.get("VersionId")
        logger.debug("secret %s: read version %s (%d fields)", secret_id, version, len(data))
        return SecretValue(name, secret_id, version, data)


def fetch_credentials(env: str | None = None, *, client: Any | None = None) -> Credentials:
    """One-shot read of ``db/credentials`` (smoke tests, scripts); services should keep a Secrets."""
    return Secrets(RuntimeConfig(env=env), client=client).credentials()


# --------------------------------------------------------------------------- helpers


def _default_client(env: str) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    try:
        return boto3.session.Session().client("secretsmanager", config=Config(user_agent_extra="rentaliq-runtime"))
    except NoRegionError:
        raise ConfigError([f"no AWS region configured for the {env} secrets; set AWS_REGION or a profile's region"]) from None


def _classify(exc: Exception, name: str, secret_id: str, env: str) -> Exception:
    """Map a boto3 failure to an SDK error naming the secret; AWS error texts carry no secret value."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return SecretNotFound(f"secret {name!r} not found: {secret_id} does not exist in environment {env!r}", name=name, secret_id=secret_id)
        if code == "InvalidRequestException" and "deletion" in str(exc).lower():
            return SecretNotFound(f"secret {name!r} not found: {secret_id} is scheduled for deletion", name=name, secret_id=secret_id)
        if code in ("AccessDeniedException", "AccessDenied", "DecryptionFailure", "UnrecognizedClientException", "ExpiredTokenException"):
            return SecretAccessDenied(
                f"access denied to secret {name!r} ({secret_id}): {code}; the caller needs secretsmanager:GetSecretValue "
                f"(policy {naming.read_secrets_policy(env)}) and kms:Decrypt on the secret's key",
                name=name,
                secret_id=secret_id,
            )
        return SecretUnavailable(f"cannot read secret {name!r} ({secret_id}): {code or 'error'}", name=name, secret_id=secret_id)
    if isinstance(exc, NoCredentialsError):
        return SecretAccessDenied(f"cannot read secret {name!r} ({secret_id}): no AWS credentials found", name=name, secret_id=secret_id)
    if isinstance(exc, BotoCoreError):
        return SecretUnavailable(f"cannot read secret {name!r} ({secret_id}): {type(exc).__name__}", name=name, secret_id=secret_id)
    return exc


def _parse(response: Mapping[str, Any], name: str, secret_id: str) -> dict[str, Any]:
    """JSON object of the secret.  Decode errors keep the whole document (``exc.doc``), so raise outside the except."""
    raw: str | bytes | None = response.get("SecretString")
    if raw is None and response.get("SecretBinary") is not None:
        raw = response["SecretBinary"]
        if isinstance(raw, str):  # some clients hand back base64 text
            try:
                raw = base64.b64decode(raw)
            except (binascii.Error, ValueError):
                raw = None
    data: Any = None
    if raw is not None:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            data = None
    if not isinstance(data, dict):
        raise InvalidSecret(f"secret {name!r} ({secret_id}) is not a JSON object", name=name, secret_id=secret_id)
    return data


# --------------------------------------------------------------------------- log redaction


class _SecretPayloadRedactor(logging.Filter):
    """botocore logs whole request and response bodies at DEBUG, which for Secrets Manager are secret values."""

    _MARKERS = ("SecretString", "SecretBinary")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix; drop its arguments
            text = str(record.msg)
        if any(marker in text for marker in self._MARKERS):
            record.msg = "[rentaliq.runtime redacted a botocore message carrying a Secrets Manager secret value]"
            record.args = ()
        return True


_REDACTOR = _SecretPayloadRedactor()
_REDACTED_LOGGERS = ("botocore.parsers", "botocore.endpoint", "botocore.awsrequest")


def _install_botocore_redaction() -> None:
    """Idempotent; filters run only for records that pass the level check, so this costs nothing unless DEBUG is on."""
    for name in _REDACTED_LOGGERS:
        target = logging.getLogger(name)
        if _REDACTOR not in target.filters:
            target.addFilter(_REDACTOR)
