"""A PostgreSQL server that dies behind an RDS instance is recovered as RDS recovers an instance.

Real components: the session's local cloud (moto server process) and its real PostgreSQL servers; the
crash is a real ``kill -9`` of the postmaster, and the data is read back after the recovery.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from rentaliq import naming
from rentaliq.deploy.database import DatabaseNotReady, wait_until_ready
from tests.functional.rds_client import SMALL_POSTGRES, recording_client

PASSWORD = "supervised-Pass_word1"


def describe(rds, name):
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def create(rds, name):
    rds.create_db_instance(DBInstanceIdentifier=name, MasterUserPassword=PASSWORD, **SMALL_POSTGRES)
    return describe(rds, name)


def connect(db, **overrides):
    params = dict(
        host=db["Endpoint"]["Address"], port=db["Endpoint"]["Port"], user="appadmin", password=PASSWORD, dbname="appdb", sslmode="require", connect_timeout=5
    )
    return psycopg.connect(**{**params, **overrides})


def postmaster_pid(cloud, name) -> int | None:
    pid_file = Path(cloud.state_dir) / "postgres" / name / "data" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def kill_postmaster(cloud, name) -> int:
    pid = postmaster_pid(cloud, name)
    assert pid, f"no running postmaster for {name}"
    os.kill(pid, signal.SIGKILL)
    return pid


def watch_status(rds, name, until, timeout=30.0) -> list[str]:
    """Every distinct status seen, polling fast, until ``until(statuses)`` holds."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = describe(rds, name)["DBInstanceStatus"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if until(seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{name}: statuses seen {seen} within {timeout}s")


def messages(rds, name) -> list[str]:
    events = rds.describe_events(SourceType="db-instance", SourceIdentifier=name)["Events"]
    return [e["Message"] for e in events]


def test_killed_postmaster_is_restarted_with_its_data_and_events(rds, cloud):
    rds.made.append("supervised-db")
    db = create(rds, "supervised-db")
    with connect(db) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before the crash')")
    killed = kill_postmaster(cloud, "supervised-db")

    statuses = watch_status(rds, "supervised-db", lambda s: s[-1] == "available" and "rebooting" in s)
    assert statuses[-2:] == ["rebooting", "available"]
    assert postmaster_pid(cloud, "supervised-db") not in (None, killed)
    with connect(describe(rds, "supervised-db")) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before the crash",)]
    events = rds.describe_events(SourceType="db-instance", SourceIdentifier="supervised-db")["Events"]
    recovery = [(e["Message"], e["EventCategories"]) for e in events][-4:]
    assert recovery == [
        ("DB instance shutdown.", ["availability"]),
        ("Recovery of the DB instance has started. Recovery time will vary with the amount of data to be recovered.", ["recovery"]),
        ("Recovery of the DB instance is complete.", ["recovery"]),
        ("DB instance restarted.", ["availability"]),
    ]
    assert all(e["SourceType"] == "db-instance" and e["SourceArn"].endswith(":db:supervised-db") for e in events)


def test_stopped_instance_is_not_restarted(rds, cloud):
    rds.made.append("stopped-db")
    create(rds, "stopped-db")
    rds.stop_db_instance(DBInstanceIdentifier="stopped-db")
    time.sleep(3)  # three supervision passes
    assert describe(rds, "stopped-db")["DBInstanceStatus"] == "stopped"
    assert postmaster_pid(cloud, "stopped-db") is None
    assert "DB instance restarted." not in messages(rds, "stopped-db")
    rds.start_db_instance(DBInstanceIdentifier="stopped-db")  # so that the delete below acts on a running one


def test_server_that_cannot_come_back_makes_the_instance_failed(rds, cloud):
    rds.made.append("broken-db")
    create(rds, "broken-db")
    data = Path(cloud.state_dir) / "postgres" / "broken-db" / "data"
    pid = postmaster_pid(cloud, "broken-db")
    shutil.rmtree(data)
    os.kill(pid, signal.SIGKILL)

    statuses = watch_status(rds, "broken-db", lambda s: s[-1] == "failed", timeout=40)
    assert "available" not in statuses[1:]
    assert messages(rds, "broken-db")[-1].startswith("The DB instance has failed")
    time.sleep(2)
    assert describe(rds, "broken-db")["DBInstanceStatus"] == "failed"  # RDS does not retry a failed instance


def test_up_wait_fails_within_60s_with_the_server_log(rds, cloud, target):
    """`up`'s wait on an environment whose database cannot come up: one error, quickly, with the log tail."""
    env = "waitcheck"
    name = naming.db_instance_id(env)
    rds.made.append(name)
    db = create(rds, name)
    secrets = target.client("secretsmanager")
    secrets.create_secret(
        Name=naming.secret_path(env, "db/credentials"),
        SecretString=json.dumps(
            {
                "username": "appadmin",
                "password": PASSWORD,
                "host": db["Endpoint"]["Address"],
                "port": db["Endpoint"]["Port"],
                "dbname": "appdb",
                "engine": "postgres",
                "dbInstanceIdentifier": name,
            }
        ),
    )
    try:
        spec = SimpleNamespace(name=env)
        assert "TLS on" in wait_until_ready(target, spec)
        pid = postmaster_pid(cloud, name)
        data = Path(cloud.state_dir) / "postgres" / name / "data"
        deadline = time.monotonic() + 10
        while data.exists():  # the live server (WAL archiving each second) may write a file in between: again
            assert time.monotonic() < deadline, f"could not remove {data}"
            shutil.rmtree(data, ignore_errors=True)
        os.kill(pid, signal.SIGKILL)

        started = time.monotonic()
        with pytest.raises(DatabaseNotReady) as failure:
            wait_until_ready(target, spec)
        assert time.monotonic() - started < 60
        message = str(failure.value)
        assert name in message and "RDS status: failed" in message
        assert "last server log lines:" in message
        assert re.search(r"UTC \[\d+\] (LOG|FATAL|PANIC):", message.split("last server log lines:", 1)[1])  # PostgreSQL's own lines
        assert PASSWORD not in message and "\n" not in message
    finally:
        secrets.delete_secret(SecretId=naming.secret_path(env, "db/credentials"), ForceDeleteWithoutRecovery=True)


@pytest.mark.slow
def test_restart_with_a_broken_server_keeps_the_cloud_up_and_marks_only_that_instance_failed(tmp_path):
    """A local cloud restarted over a server that cannot start: it serves, that instance is failed, the
    other instance is available with its data, and the events survive the restart."""
    from rentaliq.local.cloud import LocalCloud
    from tests.ports import free_port

    home = Path(tempfile.mkdtemp(prefix="rentaliq-restart-", dir="/tmp"))
    os.chmod(home, 0o755)
    own = LocalCloud(state_dir=home / "state", port=free_port())
    own.start()
    try:
        rds, server_errors = recording_client(own)
        healthy = create(rds, "healthy-db")
        create(rds, "broken-at-restart")
        fixable = create(rds, "fixable-db")
        with connect(healthy) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('across the restart')")
        with connect(fixable) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('kept while failed')")
        own.stop()
        shutil.rmtree(Path(own.state_dir) / "postgres" / "broken-at-restart" / "data")
        config = Path(own.state_dir) / "postgres" / "fixable-db" / "data" / "postgresql.conf"
        original = config.read_text()
        config.write_text(original + "\nbogus_parameter_xyz = 1\n")  # a configuration the server refuses
        own.start()

        watch_status(rds, "fixable-db", lambda s: s[-1] == "failed", timeout=30)
        watch_status(rds, "broken-at-restart", lambda s: s[-1] == "failed", timeout=30)
        assert messages(rds, "broken-at-restart")[-1].startswith("The DB instance has failed")
        assert describe(rds, "healthy-db")["DBInstanceStatus"] == "available"
        with connect(describe(rds, "healthy-db")) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("across the restart",)]
        own.stop()
        config.write_text(original)  # the cause fixed: a restart of the local cloud is the retry
        own.start()  # the instance that still cannot start stays failed, its event stays listed
        assert describe(rds, "broken-at-restart")["DBInstanceStatus"] == "failed"
        assert messages(rds, "broken-at-restart")[-1].startswith("The DB instance has failed")
        assert describe(rds, "fixable-db")["DBInstanceStatus"] == "available"
        assert messages(rds, "fixable-db")[-1] == "Recovery of the DB instance is complete."
        with connect(describe(rds, "fixable-db")) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("kept while failed",)]
        assert not server_errors, server_errors
    finally:
        own.stop()
        shutil.rmtree(home, ignore_errors=True)
