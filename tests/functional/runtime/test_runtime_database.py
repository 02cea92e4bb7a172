"""Database: TLS really negotiated, the URL helper, rotation recovery, restart recovery, bounded retries.

The instance's master password (``TRICKY_PASSWORD``) contains ``@:/?#%[]``, quotes, a backslash, a
space and a non-ASCII letter, so every test here exercises such a password end to end.
"""

from __future__ import annotations

import logging
import secrets as tokens
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from rentaliq.ops.smoke import scratch_round_trip
from rentaliq.runtime import (
    DB_CONNECTION_STRING,
    DB_CREDENTIALS,
    Credentials,
    Database,
    RuntimeConfig,
    Secrets,
    database_url,
    is_auth_failure,
)
from tests.functional.runtime.seeded_cloud import TRICKY_PASSWORD, SeededCloud

pytestmark = pytest.mark.functional


def ssl_row(conn: psycopg.Connection) -> tuple[Any, ...]:
    return conn.execute("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()


class Workload:
    """Threads issuing idempotent requests through ``db`` until stopped; records every failure."""

    def __init__(self, db: Database, threads: int, request: Callable[[int, int], Any]) -> None:
        self.db = db
        self.request = request
        self.failures: list[BaseException] = []
        self.done = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(threads)]

    def _loop(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                self.request(worker, n)
                with self._lock:
                    self.done += 1
            except BaseException as exc:  # noqa: BLE001 - every failure is a test failure
                self.failures.append(exc)
            n += 1

    def __enter__(self) -> Workload:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        start = self.done
        while self.done < start + count:
            assert time.monotonic() < deadline, "workload made no progress"
            time.sleep(0.01)


# --------------------------------------------------------------------------- TLS


def test_pool_negotiates_tls(db: Database) -> None:
    status = db.tls_status()
    assert status.ssl is True
    assert status.version in ("TLSv1.2", "TLSv1.3")
    assert status.cipher and status.bits and status.bits >= 128
    assert status.sslmode == "verify-full"  # the default: against $PGSSLROOTCERT, the local CA (test_runtime_tls.py)
    assert status.user == "rentaliq_admin"
    assert status.server_version.startswith("15")


def test_direct_connection_negotiates_tls(db: Database) -> None:
    with db.connect(autocommit=True) as conn:
        assert ssl_row(conn)[0] is True
        assert conn.pgconn.ssl_in_use


# --------------------------------------------------------------------------- DATABASE_URL


@pytest.mark.parametrize("password", ["@:/?#%[]", "%41%", "p@ss word", "a/b?c#d", "[::1]", "é€😀", "'\"\\"])
def test_database_url_round_trips_any_password(password: str) -> None:
    creds = Credentials(username="us@r:x", password=password, host="db.example.com", port=5432, dbname="rent/aliq")
    url = database_url(creds)
    assert url.startswith("postgresql://") and url.endswith("?sslmode=verify-full")
    parsed = conninfo_to_dict(url)
    assert (parsed["user"], parsed["password"], parsed["dbname"], parsed["host"], parsed["port"]) == ("us@r:x", password, "rent/aliq", "db.example.com", "5432")


def test_database_url_matches_the_deployed_secret_and_connects(seeded_cloud: SeededCloud, secrets: Secrets) -> None:
    creds = secrets.credentials()
    assert creds.password == TRICKY_PASSWORD or creds.password == seeded_cloud.password
    url = database_url(creds)
    assert url == secrets.get(DB_CONNECTION_STRING)["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        assert ssl_row(conn)[0] is True
        assert conn.execute("SELECT current_user").fetchone() == ("rentaliq_admin",)


# --------------------------------------------------------------------------- work


def test_query_execute_run_and_round_trip(db: Database) -> None:
    assert db.query("SELECT %s::int + 1, %s::text", (41, "x")) == [(42, "x")]
    db.execute("CREATE TABLE IF NOT EXISTS rt_items (id int PRIMARY KEY, name text)")
    db.execute("TRUNCATE rt_items")
    assert db.execute("INSERT INTO rt_items VALUES (1, 'a'), (2, 'b')") == 2
    assert db.query("SELECT count(*) FROM rt_items") == [(2,)]

    def fails_after_insert(conn: psycopg.Connection) -> None:
        conn.execute("INSERT INTO rt_items VALUES (3, 'c')")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        db.run(fails_after_insert)
    assert db.query("SELECT count(*) FROM rt_items") == [(2,)]  # the transaction was rolled back

    trip = scratch_round_trip(db)
    assert trip.ok and trip.table == "rentaliq_scratch"
    assert db.query("SELECT to_regclass('rentaliq_scratch')") == [(None,)]  # temporary: nothing left
    trip = scratch_round_trip(db, "rt_scratch")
    assert trip.ok
    assert db.query("SELECT count(*) FROM rt_scratch") == [(0,)]


def test_connect_refuses_credential_overrides(db: Database) -> None:
    with pytest.raises(ValueError, match="sslmode"):
        db.connect(sslmode="disable")


# --------------------------------------------------------------------------- rotation


def rotate(seeded_cloud: SeededCloud, password: str, *, update_secret: bool = True) -> None:
    seeded_cloud.rotate_password(password, update_secret=update_secret)


def test_pool_recovers_from_rotation_without_a_failed_request(seeded_cloud: SeededCloud, db: Database) -> None:
    original = seeded_cloud.password
    assert db.query("SELECT 1") == [(1,)]  # pool warm, secret cached with the old password
    old_version = db.secrets.get(DB_CREDENTIALS).version_id
    new_password = "N3w@:/?#%[]-" + tokens.token_hex(4)
    try:
        rotate(seeded_cloud, new_password)
        db.pool.drain()  # every connection from now on is new, and first tries the cached old password
        with Workload(db, 6, lambda w, n: db.query("SELECT current_user")) as work:
            work.wait_for(300)
        assert work.failures == []
        fresh = db.secrets.get(DB_CREDENTIALS)
        assert fresh["password"] == new_password and fresh.version_id != old_version
        with db.connect() as conn:  # a direct connection works too
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # A new process (fresh cache) uses DATABASE_URL from the rotated secret:
        with psycopg.connect(Secrets(RuntimeConfig(env="lab")).get(DB_CONNECTION_STRING)["DATABASE_URL"]) as conn:
            assert ssl_row(conn)[0] is True
    finally:
        rotate(seeded_cloud, original)


def test_rotation_window_database_first_then_secret(seeded_cloud: SeededCloud, db: Database) -> None:
    """The database already has the new password while the secret still holds the old one."""
    original = seeded_cloud.password
    db.query("SELECT 1")
    try:
        with Workload(db, 4, lambda w, n: db.query("SELECT 1")) as work:
            work.wait_for(50)
            rotate(seeded_cloud, "W1ndow@:/?#%[]-" + tokens.token_hex(4), update_secret=False)
            db.pool.drain()
            time.sleep(0.3)
            seeded_cloud.publish_password()
            work.wait_for(200)
        assert work.failures == []
    finally:
        rotate(seeded_cloud, original)


def test_wrong_secret_fails_clearly_after_one_refresh(seeded_cloud: SeededCloud) -> None:
    import boto3

    client = boto3.client("secretsmanager")
    calls: list[str] = []
    client.meta.events.register("before-parameter-build.secrets-manager.GetSecretValue", lambda params, **_: calls.append(params["SecretId"]))
    good = seeded_cloud.read_secret("lab", "db/credentials")
    wrong = "Wr0ng@:/?#%[]-" + tokens.token_hex(4)
    seeded_cloud.put_secret("lab", "db/credentials", {**good, "password": wrong})
    try:
        with Database(Secrets(RuntimeConfig(env="lab"), client=client)) as db:
            with pytest.raises(psycopg.OperationalError) as info:
                db.connect()
    finally:
        seeded_cloud.put_secret("lab", "db/credentials", good)
    err = info.value
    assert is_auth_failure(err)
    assert "password authentication failed" in str(err)
    assert calls == ["rentaliq/lab/db/credentials"] * 2  # the first read and exactly one refresh
    assert err.pgconn is None and err.__context__ is None and err.__cause__ is None
    text = "".join(traceback.format_exception(err)) + repr(err)
    assert wrong not in text and TRICKY_PASSWORD not in text


# --------------------------------------------------------------------------- restart and retries


@pytest.mark.parametrize("outage", ["restart", "failover"])
def test_restart_or_failover_mid_workload_loses_no_idempotent_request(
    seeded_cloud: SeededCloud, db: Database, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    """A reboot, or a Multi-AZ failover to the standby behind the same endpoint: no idempotent request fails."""
    caplog.set_level(logging.INFO, logger="rentaliq.runtime.database")
    db.execute("CREATE TABLE IF NOT EXISTS rt_events (worker int, n int, PRIMARY KEY (worker, n))")
    db.execute("TRUNCATE rt_events")
    written: set[tuple[int, int]] = set()
    if outage == "failover":
        seeded_cloud.engine.add_standby(seeded_cloud.db_instance)

    def request(worker: int, n: int) -> None:
        if n % 2:
            db.query("SELECT count(*) FROM rt_events")
        else:
            db.execute("INSERT INTO rt_events VALUES (%s, %s) ON CONFLICT DO NOTHING", (worker, n), idempotent=True)
            written.add((worker, n))

    try:
        with Workload(db, 4, request) as work:
            work.wait_for(100)
            if outage == "failover":
                seeded_cloud.engine.failover(seeded_cloud.db_instance)
            else:
                seeded_cloud.engine.reboot(seeded_cloud.db_instance)
            work.wait_for(200)
    finally:
        seeded_cloud.engine.remove_standby(seeded_cloud.db_instance)
    assert work.failures == []
    assert any("retrying" in r.getMessage() for r in caplog.records)  # the outage was really felt
    stored = set(db.query("SELECT worker, n FROM rt_events"))
    assert written <= stored


def test_non_idempotent_work_is_not_replayed_and_retries_are_bounded(db: Database) -> None:
    calls: list[int] = []

    def dies(conn: psycopg.Connection) -> None:
        calls.append(1)
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(psycopg.OperationalError):
        db.run(dies, idempotent=False)
    assert len(calls) == 1

    calls.clear()
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        db.run(dies, idempotent=True, attempts=3)
    assert len(calls) == 3
    assert time.monotonic() - started < 10

    calls.clear()

    def dies_once(conn: psycopg.Connection) -> int:
        calls.append(1)
        if len(calls) == 1:
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return conn.execute("SELECT 7").fetchone()[0]

    assert db.run(dies_once) == 7
    assert len(calls) == 2


def test_unreachable_database_gives_up_after_bounded_attempts(seeded_cloud: SeededCloud, secrets: Secrets) -> None:
    config = RuntimeConfig(env="lab", pool_timeout_s=0.3, retry_attempts=2, retry_base_delay_s=0.01)
    with Database(secrets, config=config) as db:
        db.query("SELECT 1")
        seeded_cloud.engine.stop(seeded_cloud.db_instance)
        try:
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                db.query("SELECT 1")
            assert time.monotonic() - started < 5
        finally:
            seeded_cloud.engine.start(seeded_cloud.db_instance)


def test_dead_idle_connections_are_discarded_before_non_idempotent_work(seeded_cloud: SeededCloud, secrets: Secrets) -> None:
    """After a restart during a quiet period, the checkout check (not a retry) protects non-idempotent work."""
    config = RuntimeConfig(env="lab", pool_check_idle_s=0.1)
    with Database(secrets, config=config) as db:
        db.execute("CREATE TABLE IF NOT EXISTS rt_once (id int PRIMARY KEY)")
        db.execute("TRUNCATE rt_once")
        seeded_cloud.engine.reboot(seeded_cloud.db_instance)
        time.sleep(0.2)  # the pooled connection is now idle long enough to be pinged before use
        assert db.execute("INSERT INTO rt_once VALUES (1)", idempotent=False) == 1
        assert db.query("SELECT id FROM rt_once") == [(1,)]
        assert db.pool.get_stats().get("connections_lost", 0) >= 1
