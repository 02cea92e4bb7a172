"""Physical copies behind RDS recovery, on real PostgreSQL 15 servers: snapshots, point-in-time restore, replicas.

These drive ``PostgresEngine`` directly (the RDS API on top is tested in test_rds_recovery.py) and look at
the data itself: rows written before a snapshot are in its restore and rows written after are not; a
point-in-time restore stops exactly at its target; a replica follows its primary and refuses writes.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rentaliq.local.postgres import PostgresEngine, PostgresEngineError
from rentaliq.local.postgres.archive import restore_window
from tests.postgres_dirs import postgres_top

pytestmark = pytest.mark.functional

MASTER = "master"
PASSWORD = "recovery-test-password"


@pytest.fixture(scope="module")
def top() -> Iterator[Path]:
    with postgres_top("pgrec") as top:
        yield top


@pytest.fixture(scope="module")
def engine(top: Path) -> PostgresEngine:
    return PostgresEngine(top / "postgres")


def connect(engine: PostgresEngine, instance_id: str, password: str = PASSWORD) -> psycopg.Connection:
    endpoint = engine.endpoint(instance_id)
    assert endpoint is not None
    return psycopg.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=MASTER,
        password=password,
        dbname="app",
        sslmode="verify-full",
        sslrootcert=str(engine.tls_cert_path(instance_id)),
        autocommit=True,
    )


def rows(engine: PostgresEngine, instance_id: str) -> list[str]:
    with connect(engine, instance_id) as conn:
        return [r[0] for r in conn.execute("SELECT note FROM notes ORDER BY id").fetchall()]


def write(engine: PostgresEngine, instance_id: str, *notes: str) -> None:
    with connect(engine, instance_id) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, note text NOT NULL)")
        for note in notes:
            conn.execute("INSERT INTO notes (note) VALUES (%s)", (note,))


@pytest.fixture(scope="module")
def primary(engine: PostgresEngine, top: Path) -> str:
    engine.create("primary", master_username=MASTER, master_password=PASSWORD, dbname="app", force_ssl=True)
    engine.enable_archiving("primary", top / "archives" / "primary")
    engine.base_backup("primary", top / "archives" / "primary")
    engine.archive_tick("primary")
    return "primary"


def test_snapshot_restores_exactly_the_rows_written_before_it(engine: PostgresEngine, primary: str, top: Path) -> None:
    write(engine, primary, "before-1", "before-2")
    info = engine.snapshot(primary, top / "snapshots" / "snap-1")
    write(engine, primary, "after")

    engine.restore_snapshot("restored", top / "snapshots" / "snap-1", force_ssl=True)

    assert info.size_bytes > 1_000_000
    assert rows(engine, "restored")[-2:] == ["before-1", "before-2"]
    assert "after" not in rows(engine, "restored")
    assert engine.endpoint("restored") != engine.endpoint(primary)
    write(engine, "restored", "restored-writes")  # an independent, writable primary
    assert "restored-writes" not in rows(engine, primary)
    engine.delete("restored")


def test_snapshot_of_a_stopped_instance_restores(engine: PostgresEngine, primary: str, top: Path) -> None:
    write(engine, primary, "while-running")
    engine.stop(primary)
    try:
        engine.snapshot(primary, top / "snapshots" / "stopped")
    finally:
        engine.start(primary)
    engine.restore_snapshot("from-stopped", top / "snapshots" / "stopped", force_ssl=False)
    assert rows(engine, "from-stopped")[-1] == "while-running"
    engine.delete("from-stopped")


def test_point_in_time_restore_stops_exactly_at_the_target(engine: PostgresEngine, primary: str, top: Path) -> None:
    write(engine, primary, "pitr-a")
    time.sleep(0.05)
    target = datetime.datetime.now(datetime.UTC)
    time.sleep(0.05)
    write(engine, primary, "pitr-b")
    latest = engine.archive_tick(primary)
    assert latest is not None and latest > target

    engine.restore_to_time("pitr", top / "archives" / "primary", target, force_ssl=True, source=primary)

    restored = rows(engine, "pitr")
    assert restored[-1] == "pitr-a"
    assert "pitr-b" not in restored
    write(engine, "pitr", "after-restore")  # promoted: writable
    engine.delete("pitr")


def test_a_target_after_the_last_marker_never_replays_later_commits(engine: PostgresEngine, primary: str, top: Path) -> None:
    """An idle tick moves the window past T without a marker; later writes fill and archive whole segments
    by themselves. The restore to T must stop at T, not at the end of whatever the archive holds by then."""
    write(engine, primary, "before-idle")
    engine.archive_tick(primary)
    engine.archive_tick(primary)  # idle: the latest restorable time moves, the last marker does not
    target = datetime.datetime.now(datetime.UTC)
    time.sleep(0.05)
    engine.archive_tick(primary)  # idle again: target < latest restorable time, target > last marker
    archived = {p.name for p in (top / "archives" / "primary" / "wal").iterdir()}
    write(engine, primary, *[os.urandom(2000).hex() for _ in range(1500)])  # ~6 MiB of WAL: segments archive themselves
    deadline = time.monotonic() + 10
    while len({p.name for p in (top / "archives" / "primary" / "wal").iterdir()} - archived) < 2:
        assert time.monotonic() < deadline, "the full segments were not archived"
        time.sleep(0.05)

    engine.restore_to_time("at-target", top / "archives" / "primary", target, force_ssl=True, source=primary)

    assert rows(engine, "at-target")[-1] == "before-idle"
    engine.delete("at-target")


def test_latest_restorable_time_includes_every_committed_row(engine: PostgresEngine, primary: str, top: Path) -> None:
    write(engine, primary, "latest-1")
    engine.archive_tick(primary)
    time.sleep(0.05)
    engine.archive_tick(primary)  # idle tick: the window moves on without a new segment

    engine.restore_to_time("latest", top / "archives" / "primary", None, force_ssl=True, source=primary)

    assert rows(engine, "latest") == rows(engine, primary)
    engine.delete("latest")


def test_a_time_outside_the_window_is_refused(engine: PostgresEngine, primary: str, top: Path) -> None:
    window = restore_window(top / "archives" / "primary")
    assert window is not None
    with pytest.raises(PostgresEngineError, match="outside the restore window"):
        engine.restore_to_time("too-late", top / "archives" / "primary", window[1] + datetime.timedelta(hours=1), force_ssl=True)
    assert engine.endpoint("too-late") is None


def test_replica_follows_its_primary_refuses_writes_and_promotes(engine: PostgresEngine, primary: str) -> None:
    write(engine, primary, "before-replica")
    engine.create_replica("replica", primary, force_ssl=True)
    write(engine, primary, "streamed")
    deadline = time.monotonic() + 10
    while rows(engine, "replica")[-1:] != ["streamed"]:
        assert time.monotonic() < deadline, "the replica did not follow within 10 s"
        time.sleep(0.05)
    with connect(engine, "replica") as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("INSERT INTO notes (note) VALUES ('no')")
    assert engine.replica_lag_seconds("replica") is not None

    engine.promote("replica")

    write(engine, "replica", "independent")
    assert "independent" not in rows(engine, primary)
    assert engine.replica_lag_seconds("replica") is None
    engine.delete("replica")
