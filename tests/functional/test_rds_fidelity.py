"""The local RDS answers as AWS does: storage only grows, managed master passwords, case-insensitive
identifiers, renames the PostgreSQL server follows. Real moto server, real PostgreSQL; any HTTP 500 fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.functional.rds_client import SMALL_POSTGRES

PASSWORD = "fidelity-Pass_word1"


def create(rds, name, **extra):
    kwargs: dict[str, object] = {"DBInstanceIdentifier": name, **SMALL_POSTGRES}
    kwargs.update(extra if "ManageMasterUserPassword" in extra else {"MasterUserPassword": PASSWORD, **extra})
    rds.made.append(name.lower())
    return rds.create_db_instance(**kwargs)["DBInstance"]


def describe(rds, name):
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def connect(db, password=PASSWORD):
    return psycopg.connect(
        host=db["Endpoint"]["Address"], port=db["Endpoint"]["Port"], user="appadmin", password=password, dbname="appdb", sslmode="require", connect_timeout=5
    )


def servers_of(cloud) -> dict[str, bool]:
    """{instance directory: its postmaster runs} under the local cloud's PostgreSQL root."""
    root = Path(cloud.state_dir) / "postgres"
    found = {}
    for inst in root.iterdir() if root.is_dir() else ():
        try:
            pid = int((inst / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
            found[inst.name] = True
        except (OSError, ValueError):
            found[inst.name] = False
    return found


def postgres_processes_for(path: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "postgres" in line and str(path) in line]


def test_storage_cannot_shrink(rds):
    create(rds, "shrink-db", AllocatedStorage=30)
    with pytest.raises(ClientError) as refused:
        rds.modify_db_instance(DBInstanceIdentifier="shrink-db", AllocatedStorage=20, ApplyImmediately=True)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert refused.value.response["Error"]["Message"] == "Invalid storage size for engine name postgres and storage type gp2: 20"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert describe(rds, "shrink-db")["AllocatedStorage"] == 30
    rds.modify_db_instance(DBInstanceIdentifier="shrink-db", AllocatedStorage=40, ApplyImmediately=True)
    assert describe(rds, "shrink-db")["AllocatedStorage"] == 40


def test_managed_master_password_lives_in_secrets_manager_and_opens_the_database(rds, target):
    made = create(rds, "managed-db", ManageMasterUserPassword=True)
    secret_ref = describe(rds, "managed-db")["MasterUserSecret"]
    assert secret_ref["SecretArn"].startswith("arn:aws:secretsmanager:us-east-1:") and ":secret:rds!db-" in secret_ref["SecretArn"]
    assert secret_ref["SecretStatus"] in {"creating", "active"} and secret_ref["KmsKeyId"]
    secret = json.loads(target.client("secretsmanager").get_secret_value(SecretId=secret_ref["SecretArn"])["SecretString"])
    assert secret["username"] == "appadmin" and len(secret["password"]) >= 20
    with connect(made, secret["password"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("appadmin",)
    with pytest.raises(psycopg.OperationalError):
        connect(made, "P@55w0rd!").close()  # moto's fixed password must not open it

    rds.modify_db_instance(DBInstanceIdentifier="managed-db", RotateMasterUserPassword=True, ApplyImmediately=True)
    rotated = json.loads(target.client("secretsmanager").get_secret_value(SecretId=secret_ref["SecretArn"])["SecretString"])
    assert rotated["password"] != secret["password"]
    with connect(made, rotated["password"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("appadmin",)
    with pytest.raises(psycopg.OperationalError):
        connect(made, secret["password"]).close()


def test_a_stopped_instance_refuses_reboot_and_server_changes(rds, cloud):
    create(rds, "resting-db")
    rds.stop_db_instance(DBInstanceIdentifier="resting-db")
    for call in (
        lambda: rds.reboot_db_instance(DBInstanceIdentifier="resting-db"),
        lambda: rds.modify_db_instance(DBInstanceIdentifier="resting-db", MasterUserPassword="other-Pass_word2", ApplyImmediately=True),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"] == {
            **refused.value.response["Error"],
            "Code": "InvalidDBInstanceState",
            "Message": "Instance resting-db is not in available state.",
        }
    assert describe(rds, "resting-db")["DBInstanceStatus"] == "stopped" and servers_of(cloud)["resting-db"] is False
    rds.start_db_instance(DBInstanceIdentifier="resting-db")
    with connect(describe(rds, "resting-db")) as conn:  # the refused password change did not happen
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_identifiers_are_case_insensitive(rds, cloud):
    made = create(rds, "Mixed-Case-DB")
    assert made["DBInstanceIdentifier"] == "mixed-case-db"
    rds.stop_db_instance(DBInstanceIdentifier="MIXED-case-db")
    assert describe(rds, "mixed-case-db")["DBInstanceStatus"] == "stopped"
    assert servers_of(cloud)["mixed-case-db"] is False
    rds.start_db_instance(DBInstanceIdentifier="Mixed-Case-Db")
    assert describe(rds, "Mixed-Case-DB")["DBInstanceStatus"] == "available"
    rds.reboot_db_instance(DBInstanceIdentifier="MIXED-CASE-DB")
    with connect(describe(rds, "mixed-case-db")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    rds.delete_db_instance(DBInstanceIdentifier="mIxEd-CaSe-Db", SkipFinalSnapshot=True)
    assert "mixed-case-db" not in servers_of(cloud)
    assert not postgres_processes_for(Path(cloud.state_dir) / "postgres" / "mixed-case-db")


def test_rename_moves_the_server_then_reboot_and_delete_act_on_it(rds, cloud):
    db = create(rds, "before-rename")
    with connect(db) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('survives the rename')")
    rds.made.append("after-rename")
    rds.modify_db_instance(DBInstanceIdentifier="before-rename", NewDBInstanceIdentifier="After-Rename", ApplyImmediately=True)
    assert servers_of(cloud).get("after-rename") is True and "before-rename" not in servers_of(cloud)
    with pytest.raises(ClientError):
        describe(rds, "before-rename")

    rds.reboot_db_instance(DBInstanceIdentifier="after-rename")
    renamed = describe(rds, "after-rename")
    assert renamed["DBInstanceStatus"] == "available"
    with connect(renamed) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("survives the rename",)]

    rds.delete_db_instance(DBInstanceIdentifier="after-rename", SkipFinalSnapshot=True)
    left = servers_of(cloud)
    assert "after-rename" not in left and "before-rename" not in left
    root = Path(cloud.state_dir) / "postgres"
    assert not postgres_processes_for(root / "after-rename") and not postgres_processes_for(root / "before-rename")
    with pytest.raises(psycopg.OperationalError):
        connect(renamed).close()


def test_a_server_action_that_fails_leaves_the_status_alone(rds, cloud):
    create(rds, "unstartable-db")
    rds.stop_db_instance(DBInstanceIdentifier="unstartable-db")
    data = Path(cloud.state_dir) / "postgres" / "unstartable-db" / "data"
    (data / "PG_VERSION").write_text("9\n")  # a server that cannot start: wrong major version
    with pytest.raises(ClientError) as refused:
        rds.start_db_instance(DBInstanceIdentifier="unstartable-db")
    assert refused.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    assert "unstartable-db" in refused.value.response["Error"]["Message"]
    assert describe(rds, "unstartable-db")["DBInstanceStatus"] == "stopped"
    assert servers_of(cloud)["unstartable-db"] is False


def test_read_replica_does_not_take_over_the_primary_server(rds, cloud):

    primary = create(rds, "Replicated-DB")
    rds.made.append("replica-db")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="Replica-DB", SourceDBInstanceIdentifier="REPLICATED-db")
    time.sleep(2.5)  # supervision passes
    assert describe(rds, "replica-db")["DBInstanceStatus"] == "available"
    rds.delete_db_instance(DBInstanceIdentifier="replica-db", SkipFinalSnapshot=True)
    with connect(primary) as conn:  # the primary's server is untouched
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_change_set_that_shrinks_storage_fails_and_rolls_back(rds, target):
    """The path `up` takes: the RDS refusal surfaces as the resource's failure, the stack rolls back."""

    cfn = target.client("cloudformation")

    def template(size: int) -> str:
        return json.dumps(
            {
                "Resources": {
                    "Db": {
                        "Type": "AWS::RDS::DBInstance",
                        "Properties": {
                            "DBInstanceIdentifier": "cfn-shrink-db",
                            "Engine": "postgres",
                            "EngineVersion": "15",
                            "DBInstanceClass": "db.t3.micro",
                            "MasterUsername": "appadmin",
                            "MasterUserPassword": PASSWORD,
                            "AllocatedStorage": str(size),
                            "DBName": "appdb",
                        },
                    }
                }
            }
        )

    def settled(change_set: str | None = None) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if change_set:
                status = cfn.describe_change_set(StackName="rds-fidelity-shrink", ChangeSetName=change_set)["Status"]
            else:
                status = cfn.describe_stacks(StackName="rds-fidelity-shrink")["Stacks"][0]["StackStatus"]
            if not status.endswith(("IN_PROGRESS", "PENDING")):
                return status
            time.sleep(0.5)
        raise AssertionError("CloudFormation did not settle within 120 s")

    cfn.create_stack(StackName="rds-fidelity-shrink", TemplateBody=template(30))
    try:
        assert settled() == "CREATE_COMPLETE"
        cfn.create_change_set(StackName="rds-fidelity-shrink", ChangeSetName="shrink", TemplateBody=template(20), ChangeSetType="UPDATE")
        assert settled("shrink") == "CREATE_COMPLETE"
        cfn.execute_change_set(StackName="rds-fidelity-shrink", ChangeSetName="shrink")
        assert settled() == "UPDATE_ROLLBACK_COMPLETE"
        reasons = [
            e.get("ResourceStatusReason", "")
            for e in cfn.describe_stack_events(StackName="rds-fidelity-shrink")["StackEvents"]
            if e["LogicalResourceId"] == "Db" and e["ResourceStatus"] == "UPDATE_FAILED"
        ]
        assert reasons and reasons[0] == "Invalid storage size for engine name postgres and storage type gp2: 20"
        assert describe(rds, "cfn-shrink-db")["AllocatedStorage"] == 30
    finally:
        cfn.delete_stack(StackName="rds-fidelity-shrink")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": ["cfn-shrink-db"]}])["DBInstances"]:
            time.sleep(0.5)
