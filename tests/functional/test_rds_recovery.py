"""RDS backup and recovery through the API, on the local cloud, checked against the rows themselves.

Each test writes rows, runs the RDS call a runbook would (snapshot, restore, point-in-time restore, read
replica, modify), then reads the rows back from the instance the call produced.
"""

from __future__ import annotations

import datetime
import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.functional

PASSWORD = "recovery-api-password"


def wait_for(rds, name: str, status: str = "available", timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        db = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        if db["DBInstanceStatus"] == status:
            return db
        assert time.monotonic() < deadline, f"{name} still {db['DBInstanceStatus']}"
        time.sleep(0.2)


def wait_snapshot(rds, snapshot_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]
        if snapshot["Status"] == "available":
            return snapshot
        assert snapshot["Status"] == "creating", snapshot["Status"]
        assert time.monotonic() < deadline
        time.sleep(0.1)


def wait_restorable(rds, name: str, moment: datetime.datetime, timeout: float = 60) -> None:
    """Until the instance's LatestRestorableTime is past ``moment`` (the archive tick is 1 s in tests)."""
    deadline = time.monotonic() + timeout
    while rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0].get("LatestRestorableTime", moment) <= moment:
        assert time.monotonic() < deadline, f"LatestRestorableTime of {name} did not pass {moment}"
        time.sleep(0.2)


def connect(rds, name: str, password: str = PASSWORD) -> psycopg.Connection:
    endpoint = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["Endpoint"]
    return psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], user="master", password=password, dbname="app", sslmode="require", autocommit=True)


def notes(rds, name: str) -> list[str]:
    with connect(rds, name) as conn:
        return [row[0] for row in conn.execute("SELECT note FROM notes ORDER BY id")]


def add(rds, name: str, *values: str) -> None:
    with connect(rds, name) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, note text NOT NULL)")
        for value in values:
            conn.execute("INSERT INTO notes (note) VALUES (%s)", (value,))


def create(rds, name: str, retention: int = 1, **extra) -> None:
    """A PostgreSQL instance through the API, as every test here starts from one."""
    settings = {"DBInstanceClass": "db.t3.micro", "MasterUsername": "master", "MasterUserPassword": PASSWORD, "DBName": "app", "AllocatedStorage": 20}
    rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", BackupRetentionPeriod=retention, **{**settings, **extra})


def make(rds, name: str, retention: int = 1, **extra) -> None:
    """``create``, deleted by the ``rds`` fixture after the test."""
    create(rds, name, retention, **extra)
    rds.made.append(name)


def test_snapshot_restore_brings_back_exactly_the_rows_before_the_snapshot(rds) -> None:
    make(rds, "snap-source")
    add(rds, "snap-source", "one", "two")
    created = rds.create_db_snapshot(DBInstanceIdentifier="snap-source", DBSnapshotIdentifier="snap-source-manual")["DBSnapshot"]
    assert created["Status"] == "creating"
    snapshot = wait_snapshot(rds, "snap-source-manual")
    assert snapshot["PercentProgress"] == 100 and snapshot["AllocatedStorage"] == 20
    add(rds, "snap-source", "after-snapshot")

    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="snap-restored", DBSnapshotIdentifier="snap-source-manual", DBInstanceClass="db.t3.small")
    rds.made.append("snap-restored")
    restored = wait_for(rds, "snap-restored")

    assert notes(rds, "snap-restored") == ["one", "two"]
    assert restored["DBInstanceClass"] == "db.t3.small"
    assert "ReadReplicaSourceDBInstanceIdentifier" not in restored
    with connect(rds, "snap-restored") as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("225",)  # db.t3.small's, not the source's

    with pytest.raises(rds.exceptions.DBSnapshotAlreadyExistsFault):
        rds.create_db_snapshot(DBInstanceIdentifier="snap-source", DBSnapshotIdentifier="snap-source-manual")
    with pytest.raises(rds.exceptions.DBInstanceAlreadyExistsFault):
        rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="snap-restored", DBSnapshotIdentifier="snap-source-manual")


def test_snapshots_outlive_their_instance_and_copies_are_independent(rds) -> None:
    make(rds, "short-lived", retention=0)
    add(rds, "short-lived", "kept")
    rds.delete_db_instance(DBInstanceIdentifier="short-lived", FinalDBSnapshotIdentifier="short-lived-final")
    final = rds.describe_db_snapshots(DBSnapshotIdentifier="short-lived-final")["DBSnapshots"][0]
    assert final["Status"] == "available"

    rds.copy_db_snapshot(SourceDBSnapshotIdentifier="short-lived-final", TargetDBSnapshotIdentifier="short-lived-copy")
    rds.delete_db_snapshot(DBSnapshotIdentifier="short-lived-final")
    with pytest.raises(rds.exceptions.DBSnapshotNotFoundFault):
        rds.describe_db_snapshots(DBSnapshotIdentifier="short-lived-final")

    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="from-copy", DBSnapshotIdentifier="short-lived-copy")
    rds.made.append("from-copy")
    wait_for(rds, "from-copy")
    assert notes(rds, "from-copy") == ["kept"]
    rds.delete_db_snapshot(DBSnapshotIdentifier="short-lived-copy")


def test_point_in_time_restore_replays_up_to_the_restore_time(rds) -> None:
    make(rds, "pitr-source")
    add(rds, "pitr-source", "early")
    time.sleep(0.2)
    restore_time = datetime.datetime.now(datetime.UTC)
    time.sleep(0.2)
    add(rds, "pitr-source", "late")
    wait_restorable(rds, "pitr-source", restore_time)

    rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="pitr-source", TargetDBInstanceIdentifier="pitr-restored", RestoreTime=restore_time)
    rds.made.append("pitr-restored")
    restored = wait_for(rds, "pitr-restored")

    assert notes(rds, "pitr-restored") == ["early"]
    assert "ReadReplicaSourceDBInstanceIdentifier" not in restored
    add(rds, "pitr-restored", "writable")


def test_latest_restorable_time_and_restore_window_are_real(rds) -> None:
    make(rds, "window-source")
    add(rds, "window-source", "latest-row")
    backups = rds.describe_db_instance_automated_backups(DBInstanceIdentifier="window-source")["DBInstanceAutomatedBackups"]
    window = backups[0]["RestoreWindow"]
    assert window["EarliestTime"] <= window["LatestTime"]
    automated = rds.describe_db_snapshots(DBInstanceIdentifier="window-source", SnapshotType="automated")["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"].startswith("rds:window-source-") for s in automated] == [True]

    with pytest.raises(rds.exceptions.ClientError, match="InvalidRestoreTime"):
        rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier="window-source",
            TargetDBInstanceIdentifier="window-too-early",
            RestoreTime=window["EarliestTime"] - datetime.timedelta(hours=1),
        )
    assert not rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": ["window-too-early"]}])["DBInstances"]

    written = datetime.datetime.now(datetime.UTC)
    wait_restorable(rds, "window-source", written)
    rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier="window-source", TargetDBInstanceIdentifier="window-latest", UseLatestRestorableTime=True
    )
    rds.made.append("window-latest")
    wait_for(rds, "window-latest")
    assert notes(rds, "window-latest") == ["latest-row"]


def test_retention_zero_stops_archiving(rds) -> None:
    make(rds, "no-backups", retention=0)
    db = rds.describe_db_instances(DBInstanceIdentifier="no-backups")["DBInstances"][0]
    assert "LatestRestorableTime" not in db
    with pytest.raises(rds.exceptions.ClientError, match="InvalidDBInstanceState"):
        rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="no-backups", TargetDBInstanceIdentifier="never", UseLatestRestorableTime=True)


def test_read_replica_streams_refuses_writes_and_promotes(rds) -> None:
    make(rds, "replica-primary")
    add(rds, "replica-primary", "before")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="replica-one", SourceDBInstanceIdentifier="replica-primary")
    rds.made.append("replica-one")
    replica = wait_for(rds, "replica-one")
    primary = rds.describe_db_instances(DBInstanceIdentifier="replica-primary")["DBInstances"][0]
    assert replica["Endpoint"]["Port"] != primary["Endpoint"]["Port"]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == "replica-primary"
    assert primary["ReadReplicaDBInstanceIdentifiers"] == ["replica-one"]

    add(rds, "replica-primary", "streamed")
    deadline = time.monotonic() + 10
    while notes(rds, "replica-one")[-1] != "streamed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with connect(rds, "replica-one") as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as refused:
        conn.execute("INSERT INTO notes (note) VALUES ('nope')")
    assert refused.value.sqlstate == "25006"

    rds.promote_read_replica(DBInstanceIdentifier="replica-one")
    promoted = wait_for(rds, "replica-one")
    assert "ReadReplicaSourceDBInstanceIdentifier" not in promoted
    add(rds, "replica-one", "independent")
    assert "independent" not in notes(rds, "replica-primary")


def test_deleting_a_primary_promotes_its_replicas(rds) -> None:
    make(rds, "doomed-primary")
    add(rds, "doomed-primary", "inherited")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="orphan", SourceDBInstanceIdentifier="doomed-primary")
    rds.made.append("orphan")
    wait_for(rds, "orphan")
    rds.delete_db_instance(DBInstanceIdentifier="doomed-primary", SkipFinalSnapshot=True)
    orphan = wait_for(rds, "orphan")
    assert "ReadReplicaSourceDBInstanceIdentifier" not in orphan
    add(rds, "orphan", "now-writable")
    assert notes(rds, "orphan") == ["inherited", "now-writable"]


def test_a_replica_needs_automated_backups_on_its_source(rds) -> None:
    make(rds, "unbacked", retention=0)
    with pytest.raises(rds.exceptions.ClientError, match="InvalidDBInstanceState.*Automated backups are not enabled"):
        rds.create_db_instance_read_replica(DBInstanceIdentifier="unbacked-replica", SourceDBInstanceIdentifier="unbacked")
    assert not rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": ["unbacked-replica"]}])["DBInstances"]


def test_modify_class_restarts_now_or_waits_for_the_window(rds) -> None:
    make(rds, "scaled", retention=0)
    rds.modify_db_instance(DBInstanceIdentifier="scaled", DBInstanceClass="db.t3.large", ApplyImmediately=True)
    db = wait_for(rds, "scaled")
    assert db["DBInstanceClass"] == "db.t3.large"
    with connect(rds, "scaled") as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("901",)

    rds.modify_db_instance(DBInstanceIdentifier="scaled", DBInstanceClass="db.t3.medium", AllocatedStorage=30)
    db = wait_for(rds, "scaled")
    assert db["DBInstanceClass"] == "db.t3.large"
    assert db["PendingModifiedValues"] == {"DBInstanceClass": "db.t3.medium", "AllocatedStorage": 30}
    with connect(rds, "scaled") as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("901",)

    rds.modify_db_instance(DBInstanceIdentifier="scaled", AllocatedStorage=40, ApplyImmediately=True)  # applies the queue too
    db = wait_for(rds, "scaled")
    assert (db["DBInstanceClass"], db["AllocatedStorage"], db.get("PendingModifiedValues") or {}) == ("db.t3.medium", 40, {})
    with connect(rds, "scaled") as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("450",)


def test_multi_az_failover_promotes_the_standby_behind_the_same_endpoint(rds) -> None:
    make(rds, "multi-az", MultiAZ=True, AvailabilityZone="us-east-1a")
    before = wait_for(rds, "multi-az")
    assert before["SecondaryAvailabilityZone"] == "us-east-1b"
    add(rds, "multi-az", *[f"committed-{n}" for n in range(50)])

    rds.reboot_db_instance(DBInstanceIdentifier="multi-az", ForceFailover=True)

    after = wait_for(rds, "multi-az")
    assert after["Endpoint"] == before["Endpoint"]
    assert (after["AvailabilityZone"], after["SecondaryAvailabilityZone"]) == ("us-east-1b", "us-east-1a")
    assert notes(rds, "multi-az") == [f"committed-{n}" for n in range(50)]
    add(rds, "multi-az", "after-failover")  # the promoted standby takes writes
    messages = [e["Message"] for e in rds.describe_events(SourceIdentifier="multi-az", SourceType="db-instance")["Events"]]
    assert any("failover" in m and "started" in m for m in messages) and any("failover" in m and "complete" in m for m in messages)

    rds.reboot_db_instance(DBInstanceIdentifier="multi-az", ForceFailover=True)  # and back: the old primary is the new standby
    assert notes(rds, "multi-az")[-1] == "after-failover"
    add(rds, "multi-az", "after-two-failovers")

    # The archive went on across both failovers (new timelines): the latest restore has every row.
    wait_restorable(rds, "multi-az", datetime.datetime.now(datetime.UTC))
    rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="multi-az", TargetDBInstanceIdentifier="after-failovers", UseLatestRestorableTime=True)
    rds.made.append("after-failovers")
    restored = wait_for(rds, "after-failovers")
    assert notes(rds, "after-failovers") == [*[f"committed-{n}" for n in range(50)], "after-failover", "after-two-failovers"]
    assert restored["MultiAZ"] is False  # a restore is Single-AZ unless asked


def test_a_dead_standby_is_rebuilt(rds, cloud) -> None:
    make(rds, "standby-dies", MultiAZ=True)
    add(rds, "standby-dies", "kept")
    standby_data = Path(cloud.state_dir) / "postgres" / "standby-dies--standby" / "data"
    pid = int((standby_data / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:  # the backup schedule's pass (every second in tests) brings it back
        try:
            if int((standby_data / "postmaster.pid").read_text().split()[0]) != pid:
                break
        except (FileNotFoundError, ValueError):
            pass
        assert time.monotonic() < deadline, "the standby was not brought back"
        time.sleep(0.2)
    rds.reboot_db_instance(DBInstanceIdentifier="standby-dies", ForceFailover=True)
    assert notes(rds, "standby-dies") == ["kept"]


def test_failover_of_a_single_az_instance_is_refused(rds) -> None:
    make(rds, "single-az", retention=0)
    with pytest.raises(rds.exceptions.ClientError, match="InvalidParameterCombination.*not Multi-AZ"):
        rds.reboot_db_instance(DBInstanceIdentifier="single-az", ForceFailover=True)


def test_classes_and_retention_rds_does_not_offer_are_refused(rds) -> None:
    make(rds, "validated", retention=0)
    with pytest.raises(rds.exceptions.ClientError, match="InvalidParameterCombination.*db.bogus.huge"):
        rds.modify_db_instance(DBInstanceIdentifier="validated", DBInstanceClass="db.bogus.huge", ApplyImmediately=True)
    with pytest.raises(rds.exceptions.ClientError, match="InvalidParameterValue.*35"):
        rds.modify_db_instance(DBInstanceIdentifier="validated", BackupRetentionPeriod=36)
    with pytest.raises(rds.exceptions.ClientError, match="InvalidParameterCombination.*db.nope"):
        rds.create_db_instance(
            DBInstanceIdentifier="never-made",
            DBInstanceClass="db.nope",
            Engine="postgres",
            MasterUsername="master",
            MasterUserPassword=PASSWORD,
            AllocatedStorage=20,
        )
    assert not rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": ["never-made"]}])["DBInstances"]
    db = rds.describe_db_instances(DBInstanceIdentifier="validated")["DBInstances"][0]
    assert (db["DBInstanceClass"], db["BackupRetentionPeriod"]) == ("db.t3.micro", 0)
