"""`rentaliq smoke ENV`: the spec's two data flows, end to end, as a RentalIQ service runs them.

1. credentials from Secrets Manager;  2. a TLS connection, proven server-side (pg_stat_ssl);
3. a row round-tripped in a scratch table;  4. an object uploaded, downloaded and deleted, its encryption
checked;  5. a version restore where versioning is on, and access logging in PROD.
Each step is timed; a failure is recorded with a message that never carries a secret value.
"""

from __future__ import annotations

import secrets as random_tokens
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from rentaliq import naming
from rentaliq.deploy.db_tls import ca_bundle
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.runtime import Database, Files, RuntimeConfig, Secrets


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str
    milliseconds: float


@dataclass(frozen=True)
class RoundTrip:
    """A write and read-back through the pool; ``ok`` when the row read is the row written."""

    table: str
    token: str
    read_back: str | None
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.read_back == self.token


def scratch_round_trip(database: Database, table: str | None = None) -> RoundTrip:
    """Write a random token to a scratch table and read it back, in one (replayable) transaction.

    Without ``table`` a temporary table is used (dropped at commit: nothing is left behind);
    with one, ``table`` is created if missing and the row is deleted again.
    """
    token = random_tokens.token_hex(16)
    name = table or "rentaliq_scratch"
    ident = sql.Identifier(name)

    def work(conn: psycopg.Connection) -> str | None:
        if table is None:
            conn.execute(
                sql.SQL("CREATE TEMPORARY TABLE {} (token text PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now()) ON COMMIT DROP").format(ident)
            )
        else:
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (token text PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now())").format(ident))
        conn.execute(sql.SQL("INSERT INTO {} (token) VALUES (%s)").format(ident), (token,))
        row = conn.execute(sql.SQL("SELECT token FROM {} WHERE token = %s").format(ident), (token,)).fetchone()
        if table is not None:
            conn.execute(sql.SQL("DELETE FROM {} WHERE token = %s").format(ident), (token,))
        return row[0] if row else None

    started = time.perf_counter()
    read_back = database.run(work, idempotent=True, transaction=True)
    return RoundTrip(name, token, read_back, (time.perf_counter() - started) * 1000.0)


def _run(name: str, action: Callable[[], str]) -> Step:
    started = time.perf_counter()
    try:
        detail, ok = action(), True
    except Exception as error:  # noqa: BLE001 - a smoke test reports, it does not crash
        detail, ok = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}", False
    return Step(name, ok, detail, (time.perf_counter() - started) * 1000)


def smoke(target: Target, spec: EnvironmentSpec) -> list[Step]:
    env = spec.name.value
    # A smoke test should fail in seconds, not ride out a service's patient retry budget.
    config = RuntimeConfig(env=env, ca_bundle=ca_bundle(target), connect_timeout_s=5, pool_timeout_s=5, retry_attempts=2, pool_min_size=0, pool_max_size=2)
    secrets = Secrets(config, client=target.client("secretsmanager"))
    database = Database(secrets)
    files = Files(secrets, client=target.client("s3"))
    key = f"smoke/{uuid.uuid4().hex}.txt"
    payload = f"rentaliq smoke {env} {time.time()}".encode()
    steps: list[Step] = []

    def credentials() -> str:
        creds = secrets.credentials()
        return f"{creds.username}@{creds.host}:{creds.port}/{creds.dbname} from {naming.secret_path(env, 'db/credentials')}"

    def tls() -> str:
        status = database.tls_status()
        if not status.ssl:
            raise AssertionError("pg_stat_ssl says this session is not encrypted")
        return f"{status.version} {status.cipher} ({status.bits} bits), sslmode={status.sslmode}, PostgreSQL {status.server_version}"

    def round_trip() -> str:
        result = scratch_round_trip(database)
        if not result.ok:
            raise AssertionError(f"read back {result.read_back!r}, wrote a different token")
        return f"wrote and read back a row in {result.table}"

    def objects() -> str:
        uploaded = files.upload(key, payload, content_type="text/plain")
        if uploaded.server_side_encryption not in ("AES256", "aws:kms"):
            raise AssertionError(f"object stored without server-side encryption ({uploaded.server_side_encryption!r})")
        if files.read(key) != payload:
            raise AssertionError("downloaded bytes differ from the upload")
        files.delete(key)
        return f"s3://{files.bucket}/{key}: {uploaded.size} bytes, SSE {uploaded.server_side_encryption}, checksum verified, deleted"

    def version_restore() -> str:
        first = files.upload(key, b"version one", content_type="text/plain")
        files.upload(key, b"version two", content_type="text/plain")
        if first.version_id is None:
            raise AssertionError("the upload got no version id: the bucket is not versioned")
        files.restore_version(key, first.version_id)
        restored = files.read(key)
        for version in files.list_versions(key):
            files.delete(key, version_id=version.version_id)
        if restored != b"version one":
            raise AssertionError("restoring the first version did not bring its bytes back")
        return "restored a previous version, then removed every version of the probe"

    def access_logging() -> str:
        logging = target.client("s3").get_bucket_logging(Bucket=files.bucket).get("LoggingEnabled")
        if not logging or logging.get("TargetBucket") != naming.access_logs_bucket():
            raise AssertionError(f"{files.bucket} does not log to {naming.access_logs_bucket()}")
        return f"{files.bucket} → s3://{logging['TargetBucket']}/{logging.get('TargetPrefix', '')}"

    try:
        steps.append(_run("credentials", credentials))
        steps.append(_run("tls connection", tls))
        steps.append(_run("row round-trip", round_trip))
        steps.append(_run("object upload/download/delete", objects))
        if spec.storage.versioning:
            steps.append(_run("version restore", version_restore))
        if spec.storage.access_logs:
            steps.append(_run("access logging", access_logging))
    finally:
        database.close()
        files.close()
    return steps
