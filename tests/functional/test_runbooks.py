"""The spec's Backup & DR and Scaling runbooks, run as written (through `rentaliq aws`) against a deployed PROD.

ARCHITECTURE.md gives the commands an operator runs on the bad day. Each runs here unchanged apart from
the endpoint (which `rentaliq aws` adds), and each step checks the data: rows written before a
snapshot are in its restore, a point-in-time restore stops at its time, a replica streams, a class
change restarts the server with the new class's connection slots.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time

import psycopg
import pytest

from rentaliq.deploy.database import connect as connect_with
from tests.functional.test_rds_recovery import wait_for, wait_restorable, wait_snapshot

pytestmark = [pytest.mark.functional, pytest.mark.slow]

DB = "rentaliq-prod-db"
RESTORED = "rentaliq-prod-db-restored"
REPLICA = "rentaliq-prod-db-replica-1"


def aws(cloud_env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", "aws", *args], capture_output=True, text=True, env=cloud_env, timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.fixture(scope="module")
def prod(deployed, target):
    rds, sm = target.client("rds"), target.client("secretsmanager")
    creds = json.loads(sm.get_secret_value(SecretId="rentaliq/prod/db/credentials")["SecretString"])
    yield rds, creds
    for name in (RESTORED, REPLICA):
        try:
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
        except rds.exceptions.DBInstanceNotFoundFault:
            pass


def connect(rds, creds: dict, name: str) -> psycopg.Connection:
    endpoint = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["Endpoint"]
    return connect_with(creds, host=endpoint["Address"], port=endpoint["Port"], autocommit=True)


def runbook_rows(rds, creds: dict, name: str) -> list[str]:
    with connect(rds, creds, name) as conn:
        return [row[0] for row in conn.execute("SELECT note FROM runbook ORDER BY id")]


def write(rds, creds: dict, *notes: str) -> None:
    with connect(rds, creds, DB) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS runbook (id serial PRIMARY KEY, note text NOT NULL)")
        for note in notes:
            conn.execute("INSERT INTO runbook (note) VALUES (%s)", (note,))


def test_manual_snapshot_then_restore_from_it(prod, cloud_env) -> None:
    rds, creds = prod
    write(rds, creds, "in-the-snapshot")
    manual = f"rentaliq-prod-manual-{datetime.datetime.now(datetime.UTC):%Y%m%d}"
    existing = rds.describe_db_snapshots(DBInstanceIdentifier=DB, SnapshotType="manual")["DBSnapshots"]
    for snapshot in existing:  # another test (`rentaliq backup prod`) may have taken today's name
        if snapshot["DBSnapshotIdentifier"] in (manual, "rentaliq-prod-backup-20251108"):
            rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])

    ok(aws(cloud_env, "rds", "create-db-snapshot", "--db-instance-identifier", DB, "--db-snapshot-identifier", manual))
    wait_snapshot(rds, manual)
    write(rds, creds, "after-the-snapshot")
    rds.copy_db_snapshot(SourceDBSnapshotIdentifier=manual, TargetDBSnapshotIdentifier="rentaliq-prod-backup-20251108")  # the runbook's name

    ok(
        aws(
            cloud_env,
            "rds",
            "restore-db-instance-from-db-snapshot",
            "--db-instance-identifier",
            RESTORED,
            "--db-snapshot-identifier",
            "rentaliq-prod-backup-20251108",
        )
    )
    wait_for(rds, RESTORED)

    restored = runbook_rows(rds, creds, RESTORED)
    assert "in-the-snapshot" in restored and "after-the-snapshot" not in restored
    rds.delete_db_instance(DBInstanceIdentifier=RESTORED, SkipFinalSnapshot=True)
    rds.delete_db_snapshot(DBSnapshotIdentifier="rentaliq-prod-backup-20251108")


def test_point_in_time_restore_as_the_runbook_writes_it(prod, cloud_env) -> None:
    rds, creds = prod
    one_hour_ago = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = ["rds", "restore-db-instance-to-point-in-time", "--source-db-instance-identifier", DB, "--target-db-instance-identifier", RESTORED]
    too_early = aws(cloud_env, *command, "--restore-time", one_hour_ago)
    if too_early.returncode != 0:  # PROD was deployed less than an hour ago: AWS's answer, naming the window
        assert "InvalidRestoreTime" in too_early.stderr and "restorable window" in too_early.stderr, too_early.stderr
    else:
        rds.delete_db_instance(DBInstanceIdentifier=RESTORED, SkipFinalSnapshot=True)

    write(rds, creds, "before-the-restore-time")
    time.sleep(1.1)  # --restore-time has second resolution
    restore_time = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)
    write(rds, creds, "after-the-restore-time")
    wait_restorable(rds, DB, datetime.datetime.fromisoformat(restore_time.replace("Z", "+00:00")) + datetime.timedelta(seconds=1))

    ok(aws(cloud_env, *command, "--restore-time", restore_time))
    wait_for(rds, RESTORED)

    restored = runbook_rows(rds, creds, RESTORED)
    assert restored[-1] == "before-the-restore-time"
    rds.delete_db_instance(DBInstanceIdentifier=RESTORED, SkipFinalSnapshot=True)


def test_vertical_scaling_and_read_replica(prod, cloud_env, deployed) -> None:
    rds, creds = prod
    spec_class = rds.describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]["DBInstanceClass"]
    try:
        ok(aws(cloud_env, "rds", "modify-db-instance", "--db-instance-identifier", DB, "--db-instance-class", "db.t3.large", "--apply-immediately"))
        assert wait_for(rds, DB)["DBInstanceClass"] == "db.t3.large"
        with connect(rds, creds, DB) as conn:
            assert conn.execute("SHOW max_connections").fetchone() == ("901",)
        write(rds, creds, "after-scaling")

        ok(aws(cloud_env, "rds", "create-db-instance-read-replica", "--db-instance-identifier", REPLICA, "--source-db-instance-identifier", DB))
        wait_for(rds, REPLICA)
        write(rds, creds, "streamed-to-the-replica")
        deadline = time.monotonic() + 10
        while runbook_rows(rds, creds, REPLICA)[-1] != "streamed-to-the-replica":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with connect(rds, creds, REPLICA) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO runbook (note) VALUES ('refused')")
    finally:
        try:
            rds.delete_db_instance(DBInstanceIdentifier=REPLICA, SkipFinalSnapshot=True)
        except rds.exceptions.DBInstanceNotFoundFault:
            pass
        rds.modify_db_instance(DBInstanceIdentifier=DB, DBInstanceClass=spec_class, ApplyImmediately=True)
    assert wait_for(rds, DB)["DBInstanceClass"] == spec_class


def test_s3_version_restore_as_the_runbook_writes_it(deployed, target, cloud_env) -> None:
    s3 = target.client("s3")
    bucket, key = "rentaliq-prod-files", "path/to/file.txt"
    first = s3.put_object(Bucket=bucket, Key=key, Body=b"the good version", ServerSideEncryption="aws:kms")["VersionId"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"an accidental overwrite", ServerSideEncryption="aws:kms")

    listed = ok(aws(cloud_env, "s3api", "list-object-versions", "--bucket", bucket, "--prefix", key))
    assert first in [v["VersionId"] for v in listed["Versions"]]
    ok(aws(cloud_env, "s3api", "copy-object", "--bucket", bucket, "--copy-source", f"{bucket}/{key}?versionId={first}", "--key", key))

    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"the good version"
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 3  # history kept
