"""PostgresEngine against real PostgreSQL 15 servers on 127.0.0.1.

One instance is shared by most tests (create costs about a second); tests that
change its state put it back.  Everything runs under a /tmp directory that the
``postgres`` system user can traverse, because as root the servers run as it.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rentaliq.local.postgres import (
    ADMIN_USER,
    Endpoint,
    PostgresEngine,
    PostgresEngineError,
    PostgresInstanceNotFound,
    PostgresNotInstalled,
    find_pg_bin,
)
from tests.ports import free_port
from tests.postgres_dirs import postgres_top

pytestmark = pytest.mark.functional

MASTER = "postgres"  # the RDS default master username; must not clash with the engine's own superuser
DBNAME = "appdb"
TRICKY_PASSWORD = "p@ss:/?#%[]'\"\\ with  spaces and ünïcode "


@dataclass
class Instance:
    engine: PostgresEngine
    instance_id: str
    endpoint: Endpoint
    password: str


@pytest.fixture(scope="module")
def pg_root() -> Iterator[Path]:
    with postgres_top("pg") as top:
        yield top / "postgres"


@pytest.fixture(scope="module")
def db(pg_root: Path) -> Instance:
    engine = PostgresEngine(pg_root)
    endpoint = engine.create("db-main", master_username=MASTER, master_password="initial-Pa55word", dbname=DBNAME)
    return Instance(engine, "db-main", endpoint, "initial-Pa55word")


def connect(endpoint: Endpoint, password: str, *, sslmode: str = "require", **extra: Any) -> psycopg.Connection:
    params: dict[str, Any] = {"user": MASTER, "dbname": DBNAME, "connect_timeout": 5, **extra}
    return psycopg.connect(host=endpoint.host, port=endpoint.port, password=password, sslmode=sslmode, autocommit=True, **params)


def test_master_connects_over_tls(db: Instance) -> None:
    with connect(db.endpoint, db.password) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()").fetchone()
        assert owner == (MASTER,)
        # RDS-like master: powerful, but not a superuser.
        attrs = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
        assert attrs == (False, True, True)
        conn.execute("CREATE TABLE tls_probe (id int)")
        conn.execute("DROP TABLE tls_probe")
    assert db.endpoint.host == "127.0.0.1"
    assert db.engine.status(db.instance_id) == "running"
    assert db.engine.instances() == [db.instance_id]


def test_certificate_verifies_with_verify_full(db: Instance) -> None:
    cert = db.engine.tls_cert_path(db.instance_id)
    with connect(db.endpoint, db.password, sslmode="verify-full", sslrootcert=str(cert)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def auth_failed(user: str) -> str:
    """The server's own refusal of a wrong password (28P01 invalid_password).

    libpq reports connection failures as text only (psycopg's sqlstate is None for them), so the
    exact server message is matched: any other OperationalError (server down, TLS refused, wrong
    port) must not pass for an authentication failure.
    """
    return f'FATAL:  password authentication failed for user "{user}"'


def test_tcp_requires_a_password(db: Instance) -> None:
    with pytest.raises(psycopg.OperationalError, match=auth_failed(MASTER)):
        connect(db.endpoint, "wrong-password")
    with pytest.raises(psycopg.OperationalError, match=auth_failed(ADMIN_USER)):
        psycopg.connect(
            host="127.0.0.1", port=db.endpoint.port, user=ADMIN_USER, dbname="postgres", password="wrong-password", sslmode="require", connect_timeout=5
        )
    # No password at all: the server asked for one (a trusting server would have let us in).
    with pytest.raises(psycopg.OperationalError, match="fe_sendauth: no password supplied"):
        psycopg.connect(host="127.0.0.1", port=db.endpoint.port, user=ADMIN_USER, dbname="postgres", password="", sslmode="require", connect_timeout=5)


def test_force_ssl_rejects_plaintext_until_disabled(db: Instance) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        connect(db.endpoint, db.password, sslmode="disable")
    db.engine.set_force_ssl(db.instance_id, False)
    try:
        with connect(db.endpoint, db.password, sslmode="disable") as conn:
            row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
            assert row == (False,)
        with connect(db.endpoint, db.password, sslmode="require") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        db.engine.set_force_ssl(db.instance_id, True)
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        connect(db.endpoint, db.password, sslmode="disable")


def test_data_survives_stop_start_and_a_new_engine(db: Instance, pg_root: Path) -> None:
    with connect(db.endpoint, db.password) as conn:
        conn.execute("CREATE TABLE survivors (name text)")
        conn.execute("INSERT INTO survivors VALUES ('before-stop')")

    db.engine.stop(db.instance_id)
    assert db.engine.status(db.instance_id) == "stopped"
    db.engine.stop(db.instance_id)  # no-op
    with pytest.raises(psycopg.OperationalError):
        connect(db.endpoint, db.password)
    assert db.engine.start(db.instance_id) == db.endpoint
    assert db.engine.start(db.instance_id) == db.endpoint  # no-op
    with connect(db.endpoint, db.password) as conn:
        assert conn.execute("SELECT name FROM survivors").fetchall() == [("before-stop",)]

    # A restarted local cloud process: new engine object, same directory.
    engine2 = PostgresEngine(pg_root)
    assert engine2.status(db.instance_id) == "running"
    assert engine2.endpoint(db.instance_id) == db.endpoint
    engine2.stop_all()
    assert engine2.status(db.instance_id) == "stopped"
    assert engine2.start_all() == {db.instance_id: db.endpoint}
    assert engine2.reboot(db.instance_id) == db.endpoint
    with connect(db.endpoint, db.password) as conn:
        assert conn.execute("SELECT name FROM survivors").fetchall() == [("before-stop",)]
        conn.execute("DROP TABLE survivors")


def test_set_master_password_with_special_characters(db: Instance, pg_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rentaliq")
    old = db.password
    db.engine.set_master_password(db.instance_id, MASTER, TRICKY_PASSWORD)
    db.password = TRICKY_PASSWORD
    with pytest.raises(psycopg.OperationalError, match=auth_failed(MASTER)):
        connect(db.endpoint, old)
    with connect(db.endpoint, TRICKY_PASSWORD) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (MASTER,)
        # Only a SCRAM verifier reached the server, so the plaintext is nowhere to be read back.
        stored = conn.execute("SELECT count(*) FROM pg_stat_statements WHERE query LIKE %s", (f"%{TRICKY_PASSWORD}%",)).fetchone()
        assert stored == (0,)
    assert TRICKY_PASSWORD not in caplog.text
    assert TRICKY_PASSWORD not in (pg_root / db.instance_id / "server.log").read_text(errors="replace")
    for path in (pg_root / db.instance_id).glob("*.json"):
        assert TRICKY_PASSWORD not in path.read_text()

    with pytest.raises(PostgresEngineError, match="does not exist"):
        db.engine.set_master_password(db.instance_id, "nobody_here", "x")


def test_pg_stat_statements_is_preloaded(db: Instance) -> None:
    with connect(db.endpoint, db.password) as conn:
        libraries = conn.execute("SHOW shared_preload_libraries").fetchone()
        assert libraries is not None and "pg_stat_statements" in libraries[0]
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")  # as on RDS, the master may
        assert conn.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone() == (True,)


def test_server_runs_as_the_unprivileged_server_user(db: Instance, pg_root: Path) -> None:
    expected_uid = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    data = pg_root / db.instance_id / "data"
    pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    assert os.stat(f"/proc/{pid}").st_uid == expected_uid
    key = (data / "server.key").stat()
    assert (key.st_mode & 0o777, key.st_uid) == (0o600, expected_uid)
    secret = (pg_root / db.instance_id / "admin.secret").stat()
    assert secret.st_mode & 0o777 == 0o600


def test_lifecycle_explicit_port_conflict_and_delete(pg_root: Path, db: Instance) -> None:
    engine = PostgresEngine(pg_root)
    port = free_port()
    endpoint = engine.create("db-aux", master_username="admin_user", master_password="Aux-Pa55", dbname=None, force_ssl=False, port=port)
    assert endpoint == Endpoint("127.0.0.1", port)
    assert engine.create("db-aux", master_username="admin_user", master_password="ignored", dbname=None) == endpoint  # idempotent
    with psycopg.connect(host="127.0.0.1", port=port, user="admin_user", password="Aux-Pa55", dbname="postgres", sslmode="disable", connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("admin_user",)

    with pytest.raises(PostgresEngineError, match="already used by another instance"):
        engine.create("db-other", master_username="u", master_password="p", dbname=None, port=port)
    assert engine.status("db-other") == "absent"

    # Stopped on purpose: a local cloud restart leaves it stopped, as RDS would.
    engine.stop("db-aux")
    started = engine.start_all()
    assert "db-aux" not in started and engine.status("db-aux") == "stopped"

    # Startup failure: one line, naming the instance, with the server log's tail.
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(PostgresEngineError) as excinfo:
            engine.start("db-aux")
    message = str(excinfo.value)
    assert "'db-aux'" in message and "Address already in use" in message and "\n" not in message
    assert "Aux-Pa55" not in message

    assert engine.start("db-aux") == endpoint  # the port is free again

    engine.delete("db-aux")
    assert not (pg_root / "db-aux").exists()
    assert engine.status("db-aux") == "absent"
    assert engine.endpoint("db-aux") is None
    assert "db-aux" not in engine.instances()
    engine.delete("db-aux")  # no-op
    with pytest.raises(PostgresInstanceNotFound):
        engine.start("db-aux")


def test_rejects_identifiers_that_could_escape_root_dir(pg_root: Path) -> None:
    engine = PostgresEngine(pg_root)
    for bad in ("../escape", "a/b", "", "-x"):
        with pytest.raises(PostgresEngineError, match="invalid DB instance identifier"):
            engine.create(bad, master_username="u", master_password="p", dbname=None)
    with pytest.raises(PostgresEngineError, match="reserved"):
        engine.create("db-x", master_username=ADMIN_USER, master_password="p", dbname=None)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the servers to another user")
def test_untraversable_parent_is_reported_not_chmodded() -> None:
    private = Path(tempfile.mkdtemp(prefix="rentaliq-pg-private-", dir="/tmp"))  # 0700, owned by root
    try:
        with pytest.raises(PostgresEngineError) as excinfo:
            PostgresEngine(private / "postgres").create("db-x", master_username="u", master_password="p", dbname=None)
        assert str(private) in str(excinfo.value) and "chmod o+x" in str(excinfo.value)
        assert private.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_find_pg_bin_reports_missing_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENTALIQ_PG_BIN", str(tmp_path))
    with pytest.raises(PostgresNotInstalled, match="postgresql-15"):
        find_pg_bin()


def test_rename_moves_the_server_and_its_data(pg_root: Path) -> None:
    engine = PostgresEngine(pg_root)
    endpoint = engine.create("db-old-name", master_username=MASTER, master_password="rename-Pa55word", dbname=DBNAME)
    with connect(endpoint, "rename-Pa55word") as conn:
        conn.execute("CREATE TABLE moved (v text)")
        conn.execute("INSERT INTO moved VALUES ('along')")
    try:
        assert engine.rename("db-old-name", "db-new-name") == endpoint
        assert engine.status("db-old-name") == "absent" and not (pg_root / "db-old-name").exists()
        assert engine.status("db-new-name") == "running"
        with connect(endpoint, "rename-Pa55word") as conn:
            assert conn.execute("SELECT v FROM moved").fetchall() == [("along",)]
        with pytest.raises(PostgresEngineError, match="already exists"):
            engine.rename("db-new-name", "db-new-name")
        assert engine.status("db-new-name") == "running"  # a refused rename leaves the server as it was
    finally:
        engine.delete("db-new-name")
    assert not (pg_root / "db-new-name").exists()


def test_recover_restarts_a_killed_postmaster_only(pg_root: Path) -> None:
    engine = PostgresEngine(pg_root)
    endpoint = engine.create("db-crash", master_username=MASTER, master_password="crash-Pa55word", dbname=DBNAME)
    shown: list[str] = []
    try:
        assert engine.recover("db-crash", lambda: shown.append("down")) is False  # running: nothing to do
        with connect(endpoint, "crash-Pa55word") as conn:
            conn.execute("CREATE TABLE crashed (v text)")
            conn.execute("INSERT INTO crashed VALUES ('committed')")
        pid = int((pg_root / "db-crash" / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while engine.status("db-crash") == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.recover("db-crash", lambda: shown.append("down")) is True
        assert shown == ["down"]
        with connect(endpoint, "crash-Pa55word") as conn:
            assert conn.execute("SELECT v FROM crashed").fetchall() == [("committed",)]
        engine.stop("db-crash")
        assert engine.recover("db-crash", lambda: shown.append("down")) is False  # stopped on purpose
        assert engine.status("db-crash") == "stopped"
    finally:
        engine.delete("db-crash")
