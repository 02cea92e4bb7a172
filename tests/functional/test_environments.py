"""Deployed environments on the local cloud: real databases over TLS, buckets, restarts, guard rails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from rentaliq import naming
from rentaliq.deploy import stacks
from rentaliq.deploy.changesets import DeployError, deploy
from rentaliq.deploy.database import connect as connect_with
from rentaliq.deploy.database import credentials
from rentaliq.deploy.db_tls import ca_bundle
from rentaliq.environments import build_spec, load_spec
from rentaliq.spec.rules import DeployedValues, compare_with_deployed
from tests.functional.throwaway import renamed, template_file

ENVS = ("lab", "qa", "prod")


def rentaliq(cloud_env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, env=cloud_env, cwd=cwd, timeout=600)


def connect(creds, **overrides):
    return connect_with(creds, **{"connect_timeout": 5, **overrides})


@pytest.mark.parametrize("env", ENVS)
def test_up_deploys_a_working_environment(deployed, target, env):
    result = deployed[env]
    assert result.deploy.status == "CREATE_COMPLETE"
    outputs = result.deploy.outputs
    creds = credentials(target, load_spec(env))
    # The secret, the stack outputs and the RDS API all point at the same real server.
    db = target.client("rds").describe_db_instances(DBInstanceIdentifier=f"rentaliq-{env}-db")["DBInstances"][0]
    assert (creds["host"], creds["port"]) == (db["Endpoint"]["Address"], db["Endpoint"]["Port"]) == (outputs["DbEndpoint"], int(outputs["DbPort"]))
    assert creds["dbInstanceIdentifier"] == f"rentaliq-{env}-db" and creds["engine"] == "postgres"


@pytest.mark.parametrize("env", ENVS)
def test_the_live_database_matches_its_spec_and_a_lower_value_is_caught(deployed, target, env):
    # The deploy side's contract: DeployedValues read from the real RDS API, compared before a change set.
    [db] = target.client("rds").describe_db_instances(DBInstanceIdentifier=f"rentaliq-{env}-db")["DBInstances"]
    spec, live = load_spec(env), DeployedValues.from_db_instance(db)
    assert live == DeployedValues(spec.database.allocated_storage_gib, spec.database.max_allocated_storage_gib, spec.database.backup_retention_days)
    assert compare_with_deployed(spec, live) == []
    lower = {"allocated_storage_gib": 20, "max_allocated_storage_gib": 40, "backup_retention_days": 1}
    findings = compare_with_deployed(build_spec(env, {"database": lower}), live)
    if env != "lab":  # LAB already runs at the minimum storage
        assert [f.severity for f in findings if f.field == "database.allocated_storage_gib"] == ["error"]
    assert {f.field for f in findings if f.severity == "warning"} == {"database.max_allocated_storage_gib", "database.backup_retention_days"}


@pytest.mark.parametrize("env", ENVS)
def test_database_takes_tls_and_refuses_plaintext(deployed, target, env):
    creds = credentials(target, load_spec(env))
    with connect(creds) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("rentaliq_admin", "rentaliq")
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("15")
    with pytest.raises(psycopg.OperationalError):  # rds.force_ssl=1
        connect(creds, sslmode="disable").close()


def test_connection_string_secret_reaches_the_database(deployed, target):
    url = json.loads(target.client("secretsmanager").get_secret_value(SecretId="rentaliq/qa/db/connection-string")["SecretString"])["DATABASE_URL"]
    # The URL as it is (sslmode=verify-full): libpq verifies the server against the CA the client trusts.
    with psycopg.connect(url, connect_timeout=5, sslrootcert=ca_bundle(target)) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_put_and_get_an_object_under_the_tls_only_bucket_policy(deployed, target):
    s3 = target.client("s3")
    s3.put_object(Bucket="rentaliq-qa-files", Key="docs/lease.txt", Body=b"signed")
    got = s3.get_object(Bucket="rentaliq-qa-files", Key="docs/lease.txt")
    assert got["Body"].read() == b"signed" and got["ServerSideEncryption"] == "AES256"


def test_repeated_up_makes_no_change(deployed, cloud_env):
    result = rentaliq(cloud_env, "up", "lab", "--json")
    assert result.returncode == 0, result.stderr
    [summary] = json.loads(result.stdout)
    assert summary["changed"] is False and summary["status"] == "CREATE_COMPLETE"


def test_an_unsupported_resource_type_fails_clearly(deployed, target, tmp_path):
    template = template_file(tmp_path / "odd.json", {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}})
    with pytest.raises(DeployError, match=r"Unrecognized resource types: \[AWS::SQS::Queue\]"):
        deploy(target, renamed(load_spec("lab"), "rentaliq-odd"), template)
    assert stacks.describe(target, "rentaliq-odd") is None


def test_a_failing_resource_rolls_back_and_reports_the_event(deployed, target, tmp_path):
    fine = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-rollback-probe"}}
    broken = {"Type": "AWS::RDS::DBSubnetGroup", "DependsOn": "Fine", "Properties": {"DBSubnetGroupDescription": "x", "SubnetIds": ["subnet-doesnotexist"]}}
    template = template_file(tmp_path / "bad.json", {"Fine": fine, "Broken": broken})
    with pytest.raises(DeployError) as info:
        deploy(target, renamed(load_spec("lab"), "rentaliq-rollback"), template)
    assert "ROLLBACK_COMPLETE" in str(info.value)
    assert [e.logical_id for e in info.value.events] == ["Broken"]
    buckets = [b["Name"] for b in target.client("s3").list_buckets()["Buckets"]]
    assert "rentaliq-rollback-probe" not in buckets  # nothing half-created is left


def test_destroying_prod_without_the_flag_is_refused_and_changes_nothing(deployed, target, cloud_env):
    before = target.client("cloudformation").describe_stack_resources(StackName="rentaliq-prod")["StackResources"]
    result = rentaliq(cloud_env, "destroy", "prod")
    assert result.returncode == 1
    assert "pass --confirm-prod" in result.stderr
    result = rentaliq(cloud_env, "destroy", "prod", "--confirm-prod")
    assert result.returncode == 1 and "deletion protection" in result.stderr and "rentaliq protection off prod" in result.stderr
    assert stacks.describe(target, "rentaliq-prod")["StackStatus"] == "CREATE_COMPLETE"
    after = target.client("cloudformation").describe_stack_resources(StackName="rentaliq-prod")["StackResources"]
    assert len(after) == len(before)
    secret = target.client("secretsmanager").describe_secret(SecretId="rentaliq/prod/db/credentials")
    assert "DeletedDate" not in secret


def test_destroying_a_non_empty_bucket_needs_the_flag(deployed, target, cloud_env):
    target.client("s3").put_object(Bucket="rentaliq-lab-files", Key="keep.txt", Body=b"x")
    result = rentaliq(cloud_env, "destroy", "lab")
    assert result.returncode == 1 and "rentaliq-lab-files (1 object versions) not empty" in result.stderr
    assert stacks.describe(target, "rentaliq-lab") is not None
    target.client("s3").delete_object(Bucket="rentaliq-lab-files", Key="keep.txt")


def test_restart_and_kill_9_lose_nothing(deployed, target, cloud):
    s3, sm = target.client("s3"), target.client("secretsmanager")
    first = s3.put_object(Bucket="rentaliq-prod-files", Key="restart/a.txt", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket="rentaliq-prod-files", Key="restart/a.txt", Body=b"two")["VersionId"]
    creds = credentials(target, load_spec("prod"))
    with connect(creds) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS durable (id int primary key, note text)")
        conn.execute("INSERT INTO durable VALUES (1, 'kept') ON CONFLICT DO NOTHING")
    secret_before = sm.get_secret_value(SecretId="rentaliq/prod/api/keys")["VersionId"]

    def everything_is_back():
        assert {s["StackName"] for s in target.client("cloudformation").describe_stacks()["Stacks"]} >= {"rentaliq-lab", "rentaliq-qa", "rentaliq-prod"}
        versions = s3.list_object_versions(Bucket="rentaliq-prod-files", Prefix="restart/")["Versions"]
        assert {v["VersionId"] for v in versions} == {first, second}
        assert s3.get_object(Bucket="rentaliq-prod-files", Key="restart/a.txt", VersionId=first)["Body"].read() == b"one"
        assert sm.get_secret_value(SecretId="rentaliq/prod/api/keys")["VersionId"] == secret_before
        with connect(credentials(target, load_spec("prod"))) as conn:
            assert conn.execute("SELECT note FROM durable WHERE id = 1").fetchone() == ("kept",)

    cloud.stop()
    cloud.start()
    everything_is_back()

    pid = cloud.status().pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while cloud.status().pid and time.time() < deadline:  # until the killed process is gone
        time.sleep(0.1)
    cloud.start()
    everything_is_back()


def test_destroying_lab_removes_everything(deployed, target, cloud_env, outdir):
    target.client("s3").put_object(Bucket="rentaliq-lab-files", Key="gone.txt", Body=b"x")
    result = rentaliq(cloud_env, "destroy", "lab", "--empty-buckets")
    assert result.returncode == 0, result.stderr
    assert stacks.describe(target, "rentaliq-lab") is None
    assert "rentaliq-lab-files" not in [b["Name"] for b in target.client("s3").list_buckets()["Buckets"]]
    assert not target.client("rds").describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": ["rentaliq-lab-db"]}])["DBInstances"]
    names = [s["Name"] for s in target.client("secretsmanager").list_secrets()["SecretList"]]
    assert not [n for n in names if n.startswith("rentaliq/lab/")]  # recovery window 0: gone at once
    assert not target.client("iam").list_policies(Scope="Local")["Policies"] or all(
        p["PolicyName"] != naming.read_secrets_policy("lab") for p in target.client("iam").list_policies(Scope="Local")["Policies"]
    )
    # Put LAB back for whatever runs after this test.
    from rentaliq.deploy.lifecycle import up

    up(target, [load_spec("lab")], outdir)
