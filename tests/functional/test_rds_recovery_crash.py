"""kill -9 of the local cloud around RDS recovery: snapshots, archives and replicas come through with their data.

The servers are separate processes, so a kill -9 of the local cloud leaves them running; what must
survive is the cloud's own record of snapshots and backups, and the files they point at. A snapshot
cut off mid-copy is copied again at restart; a replica keeps streaming through a kill and a clean
stop/start; a point-in-time restore after the restart still finds its base backup and WAL.
"""

from __future__ import annotations

import datetime
import os
import signal
import time

import pytest

from tests.aws_clients import one_try_client
from tests.clouds import private_cloud
from tests.functional.test_local_cloud import _wait_dead
from tests.functional.test_rds_recovery import add, create, notes, wait_for, wait_restorable, wait_snapshot

pytestmark = [pytest.mark.functional, pytest.mark.slow]


def client(cloud):
    return one_try_client(cloud, "rds", read_timeout=120)


def kill_and_restart(cloud) -> None:
    pid = cloud.status().pid
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)
    cloud.start(timeout=90)


def wait_replica_has(rds, name: str, value: str) -> None:
    deadline = time.monotonic() + 20
    while value not in notes(rds, name):
        assert time.monotonic() < deadline, f"{name} never got {value!r}"
        time.sleep(0.1)


def test_snapshots_backups_and_replicas_survive_kill_9_and_stop_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENTALIQ_LOCAL_ARCHIVE_SECONDS", "1")
    with private_cloud("rds-crash") as cloud:
        rds = client(cloud)
        create(rds, "crashy")
        add(rds, "crashy", *[f"row-{n}" for n in range(200)])
        rds.create_db_instance_read_replica(DBInstanceIdentifier="crashy-replica", SourceDBInstanceIdentifier="crashy")
        wait_for(rds, "crashy-replica")
        assert rds.create_db_snapshot(DBInstanceIdentifier="crashy", DBSnapshotIdentifier="mid-copy")["DBSnapshot"]["Status"] == "creating"

        kill_and_restart(cloud)  # at once: the copy may be cut off

        deadline = time.monotonic() + 60
        while (status := rds.describe_db_snapshots(DBSnapshotIdentifier="mid-copy")["DBSnapshots"][0]["Status"]) == "creating":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # Finished before the kill, or failed: never copied again later from a server that has moved on.
        assert status in ("available", "failed")
        if status == "failed":
            rds.delete_db_snapshot(DBSnapshotIdentifier="mid-copy")
            rds.create_db_snapshot(DBInstanceIdentifier="crashy", DBSnapshotIdentifier="mid-copy")
            wait_snapshot(rds, "mid-copy")
        add(rds, "crashy", "after-kill")
        wait_replica_has(rds, "crashy-replica", "after-kill")

        cloud.stop()
        cloud.start(timeout=90)
        add(rds, "crashy", "after-stop-start")
        wait_replica_has(rds, "crashy-replica", "after-stop-start")

        rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="from-mid-copy", DBSnapshotIdentifier="mid-copy")
        wait_for(rds, "from-mid-copy")
        assert notes(rds, "from-mid-copy") == [f"row-{n}" for n in range(200)]

        wait_restorable(rds, "crashy", datetime.datetime.now(datetime.UTC))
        rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="crashy", TargetDBInstanceIdentifier="crashy-latest", UseLatestRestorableTime=True)
        wait_for(rds, "crashy-latest")
        assert notes(rds, "crashy-latest")[-2:] == ["after-kill", "after-stop-start"]
