"""Updates that must end as AWS ends them: outputs after an IMPORT, tag-only updates of every taggable type, and
database changes the change set must not call replacements. Over the wire with boto3, against the real local cloud."""

from __future__ import annotations

import copy

import pytest

from tests.functional.test_cfn_changesets import _change_set, _changes, _delete, _deploy, _execute, _import, _name

pytestmark = pytest.mark.functional


def _outputs(cfn, stack: str) -> dict[str, str] | None:
    outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs")
    return None if outputs is None else {o["OutputKey"]: o["OutputValue"] for o in outputs}


def test_outputs_after_import_are_the_new_templates_and_a_rollback_restores_them(target) -> None:
    """IMPORT (no Outputs, as AWS requires), then an UPDATE with the full template: its Outputs appear. A failed
    update's rollback gives back the outputs the stack had."""
    cfn, s3 = target.client("cloudformation"), target.client("s3")
    stack, bucket, taken = _name("outimp"), _name("outimp-files"), _name("outimp-taken")
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=taken)
    imported = {"Resources": {"Files": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {"BucketName": bucket}}}}
    try:
        change_set = _import(cfn, stack, imported,
                             [{"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Files", "ResourceIdentifier": {"BucketName": bucket}}])
        assert _execute(cfn, change_set)["StackStatus"] == "IMPORT_COMPLETE"
        assert _outputs(cfn, stack) is None

        full = copy.deepcopy(imported)
        full["Resources"]["Files"]["Properties"]["Tags"] = [{"Key": "Team", "Value": "data"}]
        full["Outputs"] = {"BucketName": {"Value": {"Ref": "Files"}}, "BucketArn": {"Value": {"Fn::GetAtt": ["Files", "Arn"]}}}
        assert _deploy(cfn, stack, full, "UPDATE")["StackStatus"] == "UPDATE_COMPLETE"
        expected = {"BucketName": bucket, "BucketArn": f"arn:aws:s3:::{bucket}"}
        assert _outputs(cfn, stack) == expected

        # A failed update (a new bucket whose name is taken) with another output: rolled back, old outputs back.
        failing = copy.deepcopy(full)
        failing["Resources"]["Taken"] = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": taken}}
        failing["Outputs"] = {"Other": {"Value": "x"}}
        assert _deploy(cfn, stack, failing, "UPDATE")["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        assert _outputs(cfn, stack) == expected

        # An update that only drops an output: the new template's outputs, nothing stale.
        fewer = copy.deepcopy(full)
        fewer["Outputs"].pop("BucketArn")
        assert _deploy(cfn, stack, fewer, "UPDATE")["StackStatus"] == "UPDATE_COMPLETE"
        assert _outputs(cfn, stack) == {"BucketName": bucket}
    finally:
        _delete(cfn, stack)
        for name in (bucket, taken):
            s3.delete_bucket(Bucket=name)


def _db_template(**changes) -> dict:
    props = {"Engine": "postgres", "EngineVersion": "15.10", "DBInstanceClass": "db.t3.micro", "AllocatedStorage": "20",
             "MasterUsername": "rentaliq_admin", "MasterUserPassword": "Passw0rd-long-enough", "DBName": "first",
             "BackupRetentionPeriod": 7, "MultiAZ": False, "PreferredMaintenanceWindow": "sun:03:00-sun:04:00", **changes}
    return {"Resources": {"Db": {"Type": "AWS::RDS::DBInstance", "DeletionPolicy": "Delete", "Properties": props}}}


@pytest.mark.parametrize(("changes", "replacement", "recreation"), [
    ({"BackupRetentionPeriod": 14}, "False", "Never"),
    ({"MultiAZ": True}, "False", "Never"),
    ({"PreferredMaintenanceWindow": "mon:03:00-mon:04:00"}, "False", "Never"),
    ({"DBName": "second"}, "True", "Always"),
])
def test_database_change_set_reports_what_the_update_does(db_stack, changes, replacement, recreation) -> None:
    """Properties conditional only for Aurora are modified in place on a standalone instance: the change set says
    Replacement False (the deploy side refuses database replacements), and executing it keeps the instance."""
    cfn, stack = db_stack
    db = _changes(_change_set(cfn, stack, _db_template(**changes), "UPDATE"))["Db"]
    [detail] = db["Details"]
    assert (db["Replacement"], detail["Target"]["Name"], detail["Target"]["RequiresRecreation"]) == (replacement, *changes, recreation)


@pytest.fixture(scope="module")
def db_stack(target):
    cfn = target.client("cloudformation")
    stack = _name("dbcond")
    assert _deploy(cfn, stack, _db_template())["StackStatus"] == "CREATE_COMPLETE"
    yield cfn, stack
    _delete(cfn, stack)


def test_backup_retention_change_executes_in_place(db_stack, target) -> None:
    cfn, stack = db_stack
    rds = target.client("rds")
    before = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="Db")["StackResourceDetail"]["PhysicalResourceId"]
    assert _deploy(cfn, stack, _db_template(BackupRetentionPeriod=14), "UPDATE")["StackStatus"] == "UPDATE_COMPLETE"
    after = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="Db")["StackResourceDetail"]["PhysicalResourceId"]
    assert after == before
    assert rds.describe_db_instances(DBInstanceIdentifier=after)["DBInstances"][0]["BackupRetentionPeriod"] == 14
