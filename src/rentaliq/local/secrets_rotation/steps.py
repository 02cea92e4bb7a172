"""The four steps of a single-user PostgreSQL rotation, as AWS's hosted rotation Lambda runs them, run by the local cloud.

Each step goes through the local cloud's own API (Secrets Manager, RDS), so each one is committed to the state
as any request is, and each is idempotent, so that a rotation a ``kill -9`` interrupted completes when it is run
again with the same token (the AWSPENDING version says which):

- ``createSecret``: AWSPENDING = the AWSCURRENT JSON with a new generated password (kept if it already exists);
- ``setSecret``: ModifyDBInstance MasterUserPassword, i.e. ALTER ROLE on the real server through the local
  cloud's admin path (the role's password is then either the old one or the pending one, never anything else);
- ``testSecret``: a real connection with the pending credentials, over verify-full TLS;
- ``finishSecret``: AWSCURRENT moves to the pending version (AWSPREVIOUS to the old one), AWSPENDING is removed.

Then ``rentaliq/{env}/db/connection-string`` is rewritten from the new AWSCURRENT (its ``DATABASE_URL`` with the
user and password percent-encoded, everything else, ``sslmode`` included, unchanged). On AWS nothing rewrites a
second secret; see the README ("Credential rotation") for how the deployed app stays in step there.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
import psycopg
from botocore.config import Config

from rentaliq.local.cfn.base import ACCOUNT_REGION_DEFAULTS

log = logging.getLogger(__name__)

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# The hosted rotation's default: 32 characters, none of those the stack's DatabaseSecret excludes.
PASSWORD_LENGTH = 32
EXCLUDED_CHARACTERS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\=,^"
CRASH_ENV = "RENTALIQ_LOCAL_ROTATION_CRASH_AFTER"  # tests only: kill -9 this server right after the named step


class RotationError(RuntimeError):
    """A step failed; AWSPENDING stays, and running the rotation again resumes it."""


def is_rotatable(value: dict[str, Any]) -> bool:
    """A DB credentials secret in RDS's layout (what a SecretTargetAttachment writes) for a PostgreSQL instance."""
    return value.get("engine") == "postgres" and all(value.get(k) for k in ("username", "password", "dbInstanceIdentifier"))


def connection_string_name(credentials_name: str) -> str | None:
    """``rentaliq/{env}/db/credentials`` -> ``rentaliq/{env}/db/connection-string``; None for another name."""
    suffix = "/db/credentials"
    return credentials_name[: -len(suffix)] + "/db/connection-string" if credentials_name.endswith(suffix) else None


def database_url(old_url: str, username: str, password: str) -> str:
    """``old_url`` with the user and password replaced (percent-encoded); host, port, database and query kept."""
    parts = urlsplit(old_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Rotation:
    """One rotation of one secret, identified by its token (the new version's id)."""

    def __init__(self, region: str, secret_id: str, token: str, *, ca_bundle: Callable[[], str]) -> None:
        self.region, self.secret_id, self.token = region, secret_id, token
        self._ca_bundle = ca_bundle
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=os.environ["RENTALIQ_LOCAL_ENDPOINT"],
                region_name=self.region,
                config=Config(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=60),
                **ACCOUNT_REGION_DEFAULTS,
            )
        return self._clients[service]

    def run(self) -> None:
        for step in STEPS:
            try:
                getattr(self, step.replace("Secret", "_secret"))()
            except RotationError:
                raise
            except Exception as error:  # noqa: BLE001 - one line, never a value: boto/psycopg messages carry none of ours
                raise RotationError(f"rotation of {self.secret_id} ({self.token}): {step} failed: {type(error).__name__}: {error}") from None
            log.info("rotation of %s (%s): %s done", self.secret_id, self.token, step)
            if os.environ.get(CRASH_ENV) == step:
                os.kill(os.getpid(), 9)
        self.sync_connection_string()

    # ------------------------------------------------------------------ the four steps

    def _value(self, **where: str) -> dict[str, Any] | None:
        sm = self.client("secretsmanager")
        try:
            return json.loads(sm.get_secret_value(SecretId=self.secret_id, **where)["SecretString"])
        except sm.exceptions.ResourceNotFoundException:
            return None

    def _pending(self) -> dict[str, Any]:
        value = self._value(VersionId=self.token, VersionStage=PENDING)
        if value is None:
            raise RotationError(f"rotation of {self.secret_id} ({self.token}): no AWSPENDING version with that id")
        return value

    def create_secret(self) -> None:
        if self._value(VersionId=self.token, VersionStage=PENDING) is not None:
            return  # a resumed rotation: keep the password it generated (it may already be on the server)
        sm = self.client("secretsmanager")
        current = self._value(VersionStage=CURRENT) or {}
        password = sm.get_random_password(PasswordLength=PASSWORD_LENGTH, ExcludeCharacters=EXCLUDED_CHARACTERS)["RandomPassword"]
        sm.put_secret_value(
            SecretId=self.secret_id, ClientRequestToken=self.token, SecretString=json.dumps({**current, "password": password}), VersionStages=[PENDING]
        )

    def set_secret(self) -> None:
        pending = self._pending()
        self.client("rds").modify_db_instance(
            DBInstanceIdentifier=pending["dbInstanceIdentifier"], MasterUserPassword=pending["password"], ApplyImmediately=False
        )

    def test_secret(self) -> None:
        pending = self._pending()
        with psycopg.connect(
            host=pending["host"],
            port=int(pending["port"]),
            user=pending["username"],
            password=pending["password"],
            dbname=pending.get("dbname") or "postgres",
            sslmode="verify-full",
            sslrootcert=self._ca_bundle(),
            connect_timeout=10,
            application_name="rentaliq-local-rotation",
        ) as conn:
            conn.execute("SELECT 1")

    def finish_secret(self) -> None:
        sm = self.client("secretsmanager")
        versions = sm.describe_secret(SecretId=self.secret_id).get("VersionIdsToStages", {})
        current = next((v for v, stages in versions.items() if CURRENT in stages), None)
        if current != self.token:
            sm.update_secret_version_stage(SecretId=self.secret_id, VersionStage=CURRENT, MoveToVersionId=self.token, RemoveFromVersionId=current)
        if PENDING in versions.get(self.token, []):
            sm.update_secret_version_stage(SecretId=self.secret_id, VersionStage=PENDING, RemoveFromVersionId=self.token)

    # ------------------------------------------------------------------ the second secret

    def sync_connection_string(self) -> bool:
        """Rewrite the connection-string secret when its DATABASE_URL's password is not AWSCURRENT's; True if it was."""
        sm = self.client("secretsmanager")
        described = sm.describe_secret(SecretId=self.secret_id)
        target = connection_string_name(described["Name"])
        creds = self._value(VersionStage=CURRENT)
        if target is None or creds is None:
            return False
        try:
            conn = json.loads(sm.get_secret_value(SecretId=target)["SecretString"])
        except sm.exceptions.ResourceNotFoundException:
            return False
        url = conn.get("DATABASE_URL") or ""
        new_url = database_url(url, creds["username"], creds["password"])
        if not url or new_url == url:
            return False
        sm.put_secret_value(SecretId=target, SecretString=json.dumps({**conn, "DATABASE_URL": new_url}))
        log.info("rotation of %s: %s rewritten", self.secret_id, target)
        return True
