"""Secrets Manager reads with an in-process cache: the root every other runtime module depends on.

Why a cache of our own rather than ``aws-secretsmanager-caching``: services read the DB
credentials on every new connection and the API keys on every request, so the hit path must cost
a dict lookup and a clock read, without a lock or a deep copy.  Misses and refreshes take a
per-secret lock, so a hundred threads that miss at once cause one ``GetSecretValue``.  Expiry is
jittered (up to ``secret_ttl_jitter`` of the TTL early) so that the replicas of a service do not
refresh in lock-step.

Values are wrapped (:mod:`rentaliq.runtime.secret_values`) so that nothing leaks through ``repr``
or tracebacks; the ``Secrets`` object carries the :class:`~rentaliq.runtime.config.RuntimeConfig` to
``Database`` and ``Files``, which are built on top of it (both names stay importable from here).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from rentaliq import naming
from rentaliq.runtime.config import ENV_VAR, RuntimeConfig
from rentaliq.runtime.errors import (
    ConfigError,
    InvalidSecret,
    SecretAccessDenied,
    SecretNotFound,
    SecretUnavailable,
)
from rentaliq.runtime.redaction import _install_botocore_redaction
from rentaliq.runtime.secret_values import (
    Credentials,
    S3Config,
    SecretInfo,
    SecretValue,
    _require,
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

DB_CREDENTIALS, DB_CONNECTION_STRING, API_KEYS, S3_CONFIG = naming.SECRET_NAMES

# After a transient Secrets Manager failure, keep serving the cached value and try again this much later.
_STALE_RETRY_S = 5.0


# --------------------------------------------------------------------------- the cache


class Secrets:
    """Cached, thread-safe reads of the environment's secrets by logical name.

    ``client`` is any boto3 ``secretsmanager`` client; by default one is made from the standard
    AWS configuration (credentials chain, region, ``AWS_ENDPOINT_URL``), so the same code runs on
    AWS and on the local cloud.
    """

    def __init__(self, config: RuntimeConfig | None = None, *, client: Any | None = None, clock: Callable[[], float] = time.monotonic) -> None:
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

    def rotation_state(self, name: str) -> tuple[str | None, bool] | None:
        """(the AWSCURRENT version id, whether a rotation is in progress: an AWSPENDING version apart from it), from
        DescribeSecret (no value is read); None when it cannot be asked. Lets a rejected password tell a rotation
        between its setSecret and finishSecret steps from a wrong secret."""
        try:
            stages: dict[str, list[str]] = self.client.describe_secret(SecretId=self.secret_id(name)).get("VersionIdsToStages") or {}
        except Exception:  # noqa: BLE001 - only a hint: the caller then treats the secret as wrong
            return None
        current = next((v for v, labels in stages.items() if "AWSCURRENT" in labels), None)
        return current, any("AWSPENDING" in labels and "AWSCURRENT" not in labels for labels in stages.values())

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
