"""The operator commands for RDS recovery (`backup`, `backups`, `restore`, `replica`, `scale`, `failover`), run
through the real CLI against the session's deployed environments, checked against rows and secret values.

Every test leaves the environments as it found them (secrets pointing at their own instance, class as the
spec says, no extra instances), because other test files share this session's cloud.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest

from rentaliq.environments import load_spec
from tests.cli_runs import ok, one_line_error
from tests.cli_runs import rentaliq as cli

pytestmark = pytest.mark.functional


def secret(target, env: str, logical: str) -> str:
    return target.client("secretsmanager").get_secret_value(SecretId=f"rentaliq/{env}/{logical}")["SecretString"]


def creds(target, env: str) -> dict:
    return json.loads(secret(target, env, "db/credentials"))


def describe(target, name: str) -> dict:
    return target.client("rds").describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def connect(target, env: str, instance: str | None = None, **extra) -> psycopg.Connection:
    """As a service would: credentials from the environment's secret; ``instance`` overrides where to connect."""
    c = creds(target, env)
    host, port = (
        (c["host"], c["port"]) if instance is None else (describe(target, instance)["Endpoint"]["Address"], describe(target, instance)["Endpoint"]["Port"])
    )
    options = {"sslmode": "require", **extra}
    return psycopg.connect(host=host, port=port, user=c["username"], password=c["password"], dbname=c["dbname"], autocommit=True, connect_timeout=10, **options)


def write(target, env: str, table: str, *notes: str) -> None:
    with connect(target, env) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id serial PRIMARY KEY, note text NOT NULL)")
        for note in notes:
            conn.execute(f"INSERT INTO {table} (note) VALUES (%s)", (note,))


def read(target, env: str, table: str, instance: str | None = None) -> list[str]:
    with connect(target, env, instance) as conn:
        return [row[0] for row in conn.execute(f"SELECT note FROM {table} ORDER BY id")]


def instance_ids(target) -> set[str]:
    return {db["DBInstanceIdentifier"] for db in target.client("rds").describe_db_instances()["DBInstances"]}


def snapshot_ids(target) -> set[str]:
    return {s["DBSnapshotIdentifier"] for s in target.client("rds").describe_db_snapshots()["DBSnapshots"]}


def version_stages(target, env: str) -> dict[str, dict]:
    sm = target.client("secretsmanager")
    return {name: sm.describe_secret(SecretId=f"rentaliq/{env}/{name}")["VersionIdsToStages"] for name in ("db/credentials", "db/connection-string")}


@pytest.fixture
def cleanup(target) -> Iterator[list[str]]:
    """Instances a test made (restores, replicas): deleted afterwards, with their servers."""
    made: list[str] = []
    yield made
    rds = target.client("rds")
    for name in made:
        try:
            rds.modify_db_instance(DBInstanceIdentifier=name, DeletionProtection=False, ApplyImmediately=True)
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
        except rds.exceptions.DBInstanceNotFoundFault:
            pass


def wait_restorable(target, instance: str, at: datetime, timeout: float = 150) -> None:
    """Point-in-time restore needs the WAL up to ``at`` archived (at most 60 s on the local cloud, ~5 min on AWS)."""
    deadline = time.monotonic() + timeout
    while describe(target, instance).get("LatestRestorableTime", datetime.min.replace(tzinfo=UTC)) < at:
        assert time.monotonic() < deadline, f"LatestRestorableTime of {instance} never reached {at}"
        time.sleep(1)


def test_backup_is_named_by_convention_waits_and_holds_the_rows(deployed, target, cloud_env, cleanup):
    write(target, "lab", "backup_rows", "one", "two")
    first = ok(cli(cloud_env, "backup", "lab"))
    name = re.search(r"snapshot (rentaliq-lab-manual-\d{8}(?:-\d+)?) of rentaliq-lab-db is available", first.stdout).group(1)
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert name.startswith(f"rentaliq-lab-manual-{today}")
    assert f"snapshot {name}: available" in first.stderr  # the wait was shown
    snap = target.client("rds").describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"][0]
    assert (snap["Status"], snap["SnapshotType"], snap["DBInstanceIdentifier"]) == ("available", "manual", "rentaliq-lab-db")
    write(target, "lab", "backup_rows", "after the backup")

    second = ok(cli(cloud_env, "backup", "lab"))
    suffix = int(name.rsplit("-", 1)[1]) if name.count("-") == 4 else 1
    base = f"rentaliq-lab-manual-{today}"
    assert f"snapshot {base}-{suffix + 1} of rentaliq-lab-db is available" in second.stdout

    listing = json.loads(ok(cli(cloud_env, "backups", "lab", "--json")).stdout)
    manual = {s["identifier"]: s for s in listing["snapshots"] if s["kind"] == "manual"}
    assert {name, f"{base}-{suffix + 1}"} <= set(manual) and manual[name]["status"] == "available"
    assert any(s["kind"] == "automated" for s in listing["snapshots"])
    window = listing["restore_window"]
    assert window["latest"] is not None and window["earliest"] is not None and window["earliest"] <= window["latest"]
    assert listing["backup_retention_days"] == load_spec("lab").database.backup_retention_days

    restored = "lab-backup-check"
    cleanup.append(restored)
    ok(cli(cloud_env, "restore", "lab", "--snapshot", name, "--as", restored))
    assert read(target, "lab", "backup_rows", restored) == ["one", "two"]
    assert read(target, "lab", "backup_rows") == ["one", "two", "after the backup"]


@pytest.mark.slow
def test_point_in_time_restore_is_a_new_instance_in_the_environments_network_as_of_that_time(deployed, target, cloud_env, cleanup):
    write(target, "qa", "pitr_rows", "before")
    time.sleep(1.5)
    at = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.5)
    write(target, "qa", "pitr_rows", "after")
    wait_restorable(target, "rentaliq-qa-db", at)
    restored = "qa-pitr-check"
    cleanup.append(restored)
    result = ok(cli(cloud_env, "restore", "qa", "--to-time", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "--as", restored))
    assert f"restored {restored} → 127.0.0.1:" in result.stdout
    assert read(target, "qa", "pitr_rows", restored) == ["before"]

    source, copy = describe(target, "rentaliq-qa-db"), describe(target, restored)
    assert copy["DBSubnetGroup"]["DBSubnetGroupName"] == source["DBSubnetGroup"]["DBSubnetGroupName"] == "rentaliq-qa-db-subnets"
    assert {g["VpcSecurityGroupId"] for g in copy["VpcSecurityGroups"]} == {g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]}
    assert copy["DBParameterGroups"][0]["DBParameterGroupName"] == "rentaliq-qa-db-params"
    assert copy["DBInstanceClass"] == source["DBInstanceClass"] and copy["PubliclyAccessible"] is False
    assert "ReadReplicaSourceDBInstanceIdentifier" not in copy
    tags = {t["Key"]: t["Value"] for t in copy.get("TagList", [])}
    assert tags["rentaliq:restored-from"] == f"rentaliq-qa-db@{at.strftime('%Y-%m-%dT%H:%M:%SZ')}" and tags["Environment"] == "qa"
    with pytest.raises(psycopg.OperationalError):  # rds.force_ssl from the environment's parameter group
        connect(target, "qa", restored, sslmode="disable")

    latest = "qa-latest-check"
    cleanup.append(latest)
    ok(cli(cloud_env, "restore", "qa", "--latest", "--as", latest))
    assert read(target, "qa", "pitr_rows", latest) == ["before", "after"]


def test_restore_refuses_in_one_line_and_creates_nothing(deployed, target, cloud_env):
    before = instance_ids(target)
    line = one_line_error(cli(cloud_env, "restore", "lab", "--snapshot", "rentaliq-lab-no-such-snapshot"))
    assert "rentaliq-lab-no-such-snapshot" in line and "DBSnapshotNotFound" in line
    line = one_line_error(cli(cloud_env, "restore", "lab", "--latest", "--as", "rentaliq-lab-db"))
    assert "refusing --as rentaliq-lab-db" in line and "already exists" in line
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"--to-time {future} is in the future" in one_line_error(cli(cloud_env, "restore", "lab", "--to-time", future))
    line = one_line_error(cli(cloud_env, "restore", "lab", "--to-time", "2001-01-01T00:00:00Z"))
    assert "--to-time 2001-01-01T00:00:00Z is before the earliest restorable time of rentaliq-lab-db" in line
    assert "--to-time 'soon' is not a time" in one_line_error(cli(cloud_env, "restore", "lab", "--to-time", "soon"))
    assert "exactly one of" in one_line_error(cli(cloud_env, "restore", "lab", "--snapshot", "x", "--latest"))
    assert "not a valid DB instance identifier" in one_line_error(cli(cloud_env, "restore", "lab", "--latest", "--as", "two--hyphens"))
    rds = target.client("rds")
    rds.create_db_snapshot(DBInstanceIdentifier="rentaliq-qa-db", DBSnapshotIdentifier="qa-snapshot-for-lab")
    rds.get_waiter("db_snapshot_available").wait(DBSnapshotIdentifier="qa-snapshot-for-lab", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    try:
        line = one_line_error(cli(cloud_env, "restore", "lab", "--snapshot", "qa-snapshot-for-lab"))
        assert "is a snapshot of rentaliq-qa-db, not of rentaliq-lab-db" in line
    finally:
        rds.delete_db_snapshot(DBSnapshotIdentifier="qa-snapshot-for-lab")
    assert "no cutover to roll back" in one_line_error(cli(cloud_env, "restore", "lab", "--rollback-cutover"))
    assert instance_ids(target) == before


def test_dry_run_prints_the_plan_and_changes_nothing(deployed, target, cloud_env):
    instances, snapshots, stages, lab = instance_ids(target), snapshot_ids(target), version_stages(target, "lab"), describe(target, "rentaliq-lab-db")
    runs = [
        (["backup", "lab", "--dry-run"], "backup lab: snapshot rentaliq-lab-db as rentaliq-lab-manual-"),
        (["restore", "lab", "--latest", "--cutover", "--dry-run"], "then cut over: point rentaliq/lab/db/credentials"),
        (["restore", "prod", "--latest", "--dry-run", "--confirm-prod"], "to a NEW instance rentaliq-prod-db-restored-"),
        (["replica", "create", "lab", "--dry-run"], "a read replica rentaliq-lab-db-replica of rentaliq-lab-db"),
        (["scale", "lab", "--class", "db.t3.small", "--storage", "40", "--now", "--dry-run"], "class db.t3.micro → db.t3.small, storage 20 → 40 GiB"),
        (["failover", "prod", "--confirm-prod", "--dry-run"], "failover prod: reboot rentaliq-prod-db with --force-failover"),
    ]
    for args, plan in runs:
        result = ok(cli(cloud_env, *args))
        assert plan in result.stdout and result.stdout.splitlines()[-1] == "dry run: nothing changed", (args, result.stdout)
    after = describe(target, "rentaliq-lab-db")
    assert instance_ids(target) == instances and snapshot_ids(target) == snapshots and version_stages(target, "lab") == stages
    assert (after["DBInstanceClass"], after["AllocatedStorage"], after.get("PendingModifiedValues", {})) == (
        lab["DBInstanceClass"],
        lab["AllocatedStorage"],
        {},
    )


def test_prod_changes_need_confirm_prod(deployed, target, cloud_env):
    instances, prod = instance_ids(target), describe(target, "rentaliq-prod-db")
    for args in (["restore", "prod", "--latest"], ["replica", "create", "prod"], ["scale", "prod", "--class", "db.t3.large"], ["failover", "prod"]):
        result = cli(cloud_env, *args)
        assert one_line_error(result).endswith("in PROD: pass --confirm-prod"), args
        assert "dry run" not in result.stdout
    after = describe(target, "rentaliq-prod-db")
    assert instance_ids(target) == instances and after["DBInstanceClass"] == prod["DBInstanceClass"] and not after.get("PendingModifiedValues")


@pytest.mark.slow
def test_cutover_moves_the_secrets_to_the_restored_data_and_rollback_puts_the_originals_back(deployed, target, cloud_env, cleanup):
    from rentaliq.ops.recovery import cutover

    write(target, "qa", "cutover_rows", "kept")
    name = re.search(r"snapshot (\S+) of", ok(cli(cloud_env, "backup", "qa")).stdout).group(1)
    write(target, "qa", "cutover_rows", "written after the backup")
    originals = {logical: secret(target, "qa", logical) for logical in ("db/credentials", "db/connection-string")}
    password = json.loads(originals["db/credentials"])["password"]
    url = json.loads(originals["db/connection-string"])["DATABASE_URL"]
    restored = "qa-cutover-check"
    cleanup.append(restored)
    try:
        result = ok(cli(cloud_env, "restore", "qa", "--snapshot", name, "--as", restored, "--cutover"))
        assert "the secrets of qa now point at qa-cutover-check" in result.stdout and "--rollback-cutover" in result.stdout
        endpoint = describe(target, restored)["Endpoint"]
        moved = creds(target, "qa")
        assert (moved["host"], moved["port"], moved["dbInstanceIdentifier"]) == (endpoint["Address"], endpoint["Port"], restored)
        assert moved["password"] == password and moved["username"] == json.loads(originals["db/credentials"])["username"]
        conn = json.loads(secret(target, "qa", "db/connection-string"))
        for key in ("DATABASE_URL", "JDBC_URL"):
            parts = urlsplit(conn[key].removeprefix("jdbc:"))
            assert (parts.hostname, parts.port) == (endpoint["Address"], endpoint["Port"]), key
        assert urlsplit(conn["DATABASE_URL"]).password == urlsplit(url).password
        assert read(target, "qa", "cutover_rows") == ["kept"]  # a service reading the secrets now gets the restored data

        status = ok(cli(cloud_env, "status", "qa"))
        assert f"cutover active: rentaliq/qa/db/credentials, rentaliq/qa/db/connection-string point at {restored}" in status.stdout
        report = json.loads(ok(cli(cloud_env, "verify", "qa", "--json")).stdout)
        assert report["summary"]["failed"] == 0 and report["summary"]["deviations"] == 1
        (deviation,) = [c for c in report["checks"] if c["status"] == "deviation"]
        assert (deviation["expected"], deviation["actual"]) == ("rentaliq-qa-db", restored) and "--rollback-cutover" in deviation["detail"]
        text = cli(cloud_env, "verify", "qa")
        assert text.returncode == 0 and "DELIBERATE DEVIATION" in text.stdout and "1 deliberate deviation" in text.stdout.splitlines()[-1]
        for output in (result, status, text):
            assert password not in output.stdout + output.stderr and url not in output.stdout + output.stderr

        back = ok(cli(cloud_env, "restore", "qa", "--rollback-cutover"))
        assert password not in back.stdout + back.stderr
    finally:
        if cutover.active(target, "qa") is not None:  # never leave the shared environment cut over
            cutover.rollback(target, load_spec("qa"), lambda message: None)
    assert {logical: secret(target, "qa", logical) for logical in originals} == originals  # byte for byte
    sm = target.client("secretsmanager")
    for logical in originals:
        described = sm.describe_secret(SecretId=f"rentaliq/qa/{logical}")
        assert not [t for t in described.get("Tags", []) if t["Key"].startswith("rentaliq:cutover")]
        assert not [v for v, stages in described["VersionIdsToStages"].items() if "RENTALIQ_PRE_CUTOVER" in stages]
    assert read(target, "qa", "cutover_rows") == ["kept", "written after the backup"]
    assert "cutover" not in ok(cli(cloud_env, "status", "qa")).stdout
    assert json.loads(ok(cli(cloud_env, "verify", "qa", "--json")).stdout)["summary"]["deviations"] == 0


@pytest.mark.slow
def test_replica_follows_refuses_writes_and_promote_makes_it_independent(deployed, target, cloud_env, cleanup):
    write(target, "lab", "replica_rows", "before the replica")
    cleanup.extend(["rentaliq-lab-db-replica", "rentaliq-lab-db-replica-2"])
    created = ok(cli(cloud_env, "replica", "create", "lab"))
    assert "✓ rentaliq-lab-db-replica → 127.0.0.1:" in created.stdout and "read replica of rentaliq-lab-db" in created.stdout
    replica, primary = describe(target, "rentaliq-lab-db-replica"), describe(target, "rentaliq-lab-db")
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == "rentaliq-lab-db" and replica["Endpoint"]["Port"] != primary["Endpoint"]["Port"]
    assert {g["VpcSecurityGroupId"] for g in replica["VpcSecurityGroups"]} == {g["VpcSecurityGroupId"] for g in primary["VpcSecurityGroups"]}
    write(target, "lab", "replica_rows", "streamed")
    deadline = time.monotonic() + 15
    while read(target, "lab", "replica_rows", "rentaliq-lab-db-replica") != ["before the replica", "streamed"]:
        assert time.monotonic() < deadline, "the replica did not follow its primary within 15 s"
        time.sleep(0.2)
    with connect(target, "lab", "rentaliq-lab-db-replica") as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("INSERT INTO replica_rows (note) VALUES ('refused')")
    topic = "arn:aws:sns:us-east-1:123456789012:rentaliq-lab-alerts"
    [lag] = target.client("cloudwatch").describe_alarms(AlarmNames=["rentaliq-lab-db-replica-lag"])["MetricAlarms"]
    assert (lag["MetricName"], lag["Threshold"], lag["Dimensions"]) == (
        "ReplicaLag",
        60.0,
        [{"Name": "DBInstanceIdentifier", "Value": "rentaliq-lab-db-replica"}],
    )
    assert lag["AlarmActions"] == lag["OKActions"] == [topic]

    ok(cli(cloud_env, "replica", "create", "lab"))  # the next default name
    assert describe(target, "rentaliq-lab-db-replica-2")["ReadReplicaSourceDBInstanceIdentifier"] == "rentaliq-lab-db"
    assert "give the replica's NAME: rentaliq-lab-db has 2 read replicas" in one_line_error(cli(cloud_env, "replica", "promote", "lab"))
    assert "is the environment's primary" in one_line_error(cli(cloud_env, "replica", "delete", "lab", "rentaliq-lab-db"))
    deleted = ok(cli(cloud_env, "replica", "delete", "lab", "rentaliq-lab-db-replica-2"))
    assert "read replica rentaliq-lab-db-replica-2 deleted" in deleted.stdout
    assert "rentaliq-lab-db-replica-2" not in instance_ids(target)
    alarms = target.client("cloudwatch").describe_alarms(AlarmNamePrefix="rentaliq-lab-db-replica")["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms] == ["rentaliq-lab-db-replica-lag"]  # the deleted replica's alarm went with it

    promoted = ok(cli(cloud_env, "replica", "promote", "lab"))  # now the only replica: NAME may be left out
    assert "rentaliq-lab-db-replica" in promoted.stdout and "independent, writable" in promoted.stdout
    assert "ReadReplicaSourceDBInstanceIdentifier" not in describe(target, "rentaliq-lab-db-replica")
    assert not target.client("cloudwatch").describe_alarms(AlarmNamePrefix="rentaliq-lab-db-replica")["MetricAlarms"]  # no lag to watch
    with connect(target, "lab", "rentaliq-lab-db-replica") as conn:
        conn.execute("INSERT INTO replica_rows (note) VALUES ('promoted')")
    assert read(target, "lab", "replica_rows") == ["before the replica", "streamed"]  # independent: the primary never sees it
    line = one_line_error(cli(cloud_env, "replica", "delete", "lab", "rentaliq-lab-db-replica"))
    assert "rentaliq-lab-db-replica is not a read replica of rentaliq-lab-db" in line


@pytest.mark.slow
def test_scale_waits_for_the_window_unless_now_and_storage_only_grows(deployed, target, cloud_env):
    write(target, "lab", "scale_rows", "survives")
    line = one_line_error(cli(cloud_env, "scale", "lab", "--storage", "10"))
    assert line == "error: refusing --storage 10: rentaliq-lab-db has 20 GiB and storage can only grow"
    assert "--class 'db.q9.huge' is not an RDS PostgreSQL instance class" in one_line_error(cli(cloud_env, "scale", "lab", "--class", "db.q9.huge"))
    assert "nothing to change" in one_line_error(cli(cloud_env, "scale", "lab", "--class", "db.t3.micro"))
    try:
        pending = ok(cli(cloud_env, "scale", "lab", "--class", "db.t3.small"))
        assert "pending until the maintenance window sun:04:00-sun:05:00: DBInstanceClass db.t3.small" in pending.stdout
        assert 'instance_class = "db.t3.small" in config/lab.toml' in pending.stdout
        db = describe(target, "rentaliq-lab-db")
        assert (db["DBInstanceClass"], db["PendingModifiedValues"]) == ("db.t3.micro", {"DBInstanceClass": "db.t3.small"})

        now = ok(cli(cloud_env, "scale", "lab", "--class", "db.t3.small", "--now"))
        assert "rentaliq-lab-db is db.t3.small with 20 GiB (available)" in now.stdout
        db = describe(target, "rentaliq-lab-db")
        assert db["DBInstanceClass"] == "db.t3.small" and not db.get("PendingModifiedValues")
        assert read(target, "lab", "scale_rows") == ["survives"]
    finally:
        ok(cli(cloud_env, "scale", "lab", "--class", "db.t3.micro", "--now"))  # back to the spec for the other tests
    db = describe(target, "rentaliq-lab-db")
    assert db["DBInstanceClass"] == "db.t3.micro" and not db.get("PendingModifiedValues")


@pytest.mark.slow
def test_failover_keeps_the_endpoint_and_the_data_and_needs_multi_az(deployed, target, cloud_env):
    line = one_line_error(cli(cloud_env, "failover", "lab"))
    assert line == "error: refusing to fail over rentaliq-lab-db: it is not Multi-AZ, so there is no standby to take over"
    write(target, "prod", "failover_rows", "committed before")
    before = describe(target, "rentaliq-prod-db")
    result = ok(cli(cloud_env, "failover", "prod", "--confirm-prod"))
    after = describe(target, "rentaliq-prod-db")
    assert after["Endpoint"] == before["Endpoint"] and after["DBInstanceStatus"] == "available"
    assert after["AvailabilityZone"] == before["SecondaryAvailabilityZone"] and after["SecondaryAvailabilityZone"] == before["AvailabilityZone"]
    assert f"zone {before['AvailabilityZone']} → {after['AvailabilityZone']}" in result.stdout
    write(target, "prod", "failover_rows", "written after")
    assert read(target, "prod", "failover_rows") == ["committed before", "written after"]
