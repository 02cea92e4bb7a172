"""The runtime SDK's configuration: every knob, its default, and the validation that rejects a typo.

``RuntimeConfig`` travels with the ``Secrets`` object to ``Database`` and ``Files``; it is validated once,
at the edge, listing every problem in one ConfigError.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rentaliq.runtime.errors import (
    ConfigError,
)

ENV_VAR = "RENTALIQ_ENV"
CA_BUNDLE_ENV_VAR = "PGSSLROOTCERT"  # libpq's own variable, which psql and the other libpq clients read too
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
MiB = 1024 * 1024
_ENV_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_SSLMODES = ("require", "verify-ca", "verify-full")  # never disable/allow/prefer: TLS is mandatory
_SSE = ("AES256", "aws:kms")


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
    """PEM bundle of the CA that signed the DB server's certificate; None reads $PGSSLROOTCERT.

    On AWS: the RDS bundle AWS publishes at ``RDS_CA_BUNDLE_URL``; on the local cloud, its own CA
    (``rentaliq local env`` exports it as $PGSSLROOTCERT).  Without one, connecting fails, naming both."""
    sslmode: str | None = None
    """verify-full (None, the default: the server proves it is the host in the secret), verify-ca, or
    require (encrypts but checks no one: an explicit opt-out, never the default)."""
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
    instance_check_ttl_s: float = 30.0
    """How long RDS's answer on the database's state is trusted before a new connection asks again (a failed
    connection always asks); it turns a stopped database into DatabaseStopped at once. 0 asks every time."""
    retry_attempts: int = 5
    """Tries (not retries) for idempotent database work after connection loss; bounded on purpose."""
    retry_base_delay_s: float = 0.05
    retry_max_delay_s: float = 2.0
    sse: str | None = None
    """Server-side encryption requested on every put: AES256 (SSE-S3) or aws:kms; None (the default) is the
    environment's choice: aws:kms with the customer-managed key ``s3/config`` names, else AES256."""
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
        return self.sslmode if self.sslmode is not None else "verify-full"

    def resolve_ca_bundle(self) -> str | None:
        """The CA bundle to verify the server with: ``ca_bundle``, else $PGSSLROOTCERT; None only for sslmode=require
        without either.  A missing bundle where one is needed, or a path that is no readable file, is a ConfigError."""
        if self.ca_bundle:
            path, source = os.fspath(self.ca_bundle), "ca_bundle"
        elif os.environ.get(CA_BUNDLE_ENV_VAR):
            path, source = os.environ[CA_BUNDLE_ENV_VAR], f"${CA_BUNDLE_ENV_VAR}"
        elif self.effective_sslmode == "require":
            return None
        else:
            raise ConfigError(
                [
                    f"sslmode={self.effective_sslmode} needs the CA bundle that signed the database's certificate; set ca_bundle= "
                    f"or ${CA_BUNDLE_ENV_VAR} to it: on AWS the RDS bundle ({RDS_CA_BUNDLE_URL}), "
                    "on the local cloud the one `rentaliq local env` exports"
                ]
            )
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise ConfigError([f"{source}={path!r} is not a readable file; allowed: a PEM CA bundle such as AWS's {RDS_CA_BUNDLE_URL}"])
        return path


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
    for name in (
        "connect_timeout_s",
        "pool_timeout_s",
        "pool_max_idle_s",
        "pool_max_lifetime_s",
        "pool_check_idle_s",
        "instance_check_ttl_s",
        "retry_base_delay_s",
        "retry_max_delay_s",
    ):
        number(name, minimum=0)
    number("pool_min_size", minimum=0, integer=True)
    number("pool_max_size", minimum=1, integer=True)
    if isinstance(c.pool_min_size, int) and isinstance(c.pool_max_size, int) and c.pool_max_size < c.pool_min_size:
        bad("pool_max_size", f"at least pool_min_size ({c.pool_min_size})")
    number("retry_attempts", minimum=1, integer=True)
    if not isinstance(c.application_name, str) or len(c.application_name.encode()) > 63:
        bad("application_name", "a string of at most 63 bytes")
    if c.sse is not None and c.sse not in _SSE:
        bad("sse", " or ".join(_SSE))
    if c.sse_kms_key_id is not None and c.sse not in ("aws:kms", None):
        bad("sse_kms_key_id", "None unless sse='aws:kms'")
    number("multipart_threshold", minimum=5 * MiB, integer=True)
    number("multipart_chunksize", minimum=5 * MiB, integer=True)
    number("max_concurrency", minimum=1, integer=True)
    if isinstance(c.presign_expiry_s, bool) or not isinstance(c.presign_expiry_s, int) or not 1 <= c.presign_expiry_s <= 604800:
        bad("presign_expiry_s", "1 to 604800 seconds (SigV4's limit of 7 days)")
    return problems
