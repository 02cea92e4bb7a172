"""Change sets and templates on the local CloudFormation, over the wire with boto3, as AWS answers them.

Small hand-written templates keep these fast; each test reads the resources back through their own APIs.
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError, WaiterError

pytestmark = pytest.mark.functional


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _wait(cfn, stack: str, change_set: str) -> dict:
    try:
        cfn.get_waiter("change_set_create_complete").wait(StackName=stack, ChangeSetName=change_set, WaiterConfig={"Delay": 1})
    except WaiterError:
        pass
    return cfn.describe_change_set(StackName=stack, ChangeSetName=change_set)


def _change_set(cfn, stack: str, template: dict | str, kind: str, parameters: dict | None = None, **kwargs) -> dict:
    name = _name("cs")
    body = template if isinstance(template, str) else json.dumps(template)
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()]
    cfn.create_change_set(StackName=stack, ChangeSetName=name, TemplateBody=body, ChangeSetType=kind, Parameters=params, **kwargs)
    return _wait(cfn, stack, name)


def _execute(cfn, change_set: dict) -> dict:
    cfn.execute_change_set(StackName=change_set["StackName"], ChangeSetName=change_set["ChangeSetId"])
    return cfn.describe_stacks(StackName=change_set["StackName"])["Stacks"][0]


def _deploy(cfn, stack: str, template: dict | str, kind: str = "CREATE", parameters: dict | None = None) -> dict:
    return _execute(cfn, _change_set(cfn, stack, template, kind, parameters))


def _delete(cfn, stack: str) -> None:
    cfn.delete_stack(StackName=stack)


def _bucket_template(bucket_name: str | None, *, policy: bool = True, tags: dict | None = None) -> dict:
    bucket: dict = {"Type": "AWS::S3::Bucket", "Properties": {}}
    if bucket_name:
        bucket["Properties"]["BucketName"] = bucket_name
    if tags:
        bucket["Properties"]["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    resources: dict = {"Files": bucket}
    if policy:
        resources["FilesPolicy"] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "Files"},
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [{"Fn::GetAtt": ["Files", "Arn"]}, {"Fn::Sub": "${Files.Arn}/*"}],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }]},
            },
        }
    return {"Resources": resources}


def _changes(change_set: dict) -> dict[str, dict]:
    return {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"] for c in change_set["Changes"]}


# -- 1. replacement ------------------------------------------------------------------------------------------------


def test_bucket_rename_is_reported_as_replacement_and_replaces(target) -> None:
    cfn, s3 = target.client("cloudformation"), target.client("s3")
    stack, old_name, new_name = _name("repl"), _name("repl-old"), _name("repl-new")
    assert _deploy(cfn, stack, _bucket_template(old_name))["StackStatus"] == "CREATE_COMPLETE"
    try:
        change_set = _change_set(cfn, stack, _bucket_template(new_name), "UPDATE")
        changes = _changes(change_set)
        files = changes["Files"]
        assert (files["Action"], files["Replacement"], files["Scope"], files["PhysicalResourceId"]) == ("Modify", "True", ["Properties"], old_name)
        assert files["Details"] == [{
            "Target": {"Attribute": "Properties", "Name": "BucketName", "RequiresRecreation": "Always"},
            "Evaluation": "Static", "ChangeSource": "DirectModification",
        }]
        # The policy's template is unchanged, but it reaches the replaced bucket: AWS lists it.
        policy = changes["FilesPolicy"]
        assert policy["Action"] == "Modify" and policy["Replacement"] == "True"
        sources = {(d["ChangeSource"], d.get("CausingEntity"), d["Target"]["Name"], d["Target"]["RequiresRecreation"]) for d in policy["Details"]}
        assert ("ResourceReference", "Files", "Bucket", "Always") in sources
        assert ("ResourceAttribute", "Files.Arn", "PolicyDocument", "Never") in sources

        assert _execute(cfn, change_set)["StackStatus"] == "UPDATE_COMPLETE"
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert new_name in buckets and old_name not in buckets
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
        assert physical["Files"] == new_name
        statement = json.loads(s3.get_bucket_policy(Bucket=new_name)["Policy"])["Statement"][0]
        assert f"arn:aws:s3:::{new_name}" in json.dumps(statement["Resource"])
    finally:
        _delete(cfn, stack)


def test_in_place_change_is_no_replacement(target) -> None:
    cfn, s3 = target.client("cloudformation"), target.client("s3")
    stack, bucket = _name("inplace"), _name("inplace")
    _deploy(cfn, stack, _bucket_template(bucket, policy=False))
    try:
        change_set = _change_set(cfn, stack, _bucket_template(bucket, policy=False, tags={"Team": "data"}), "UPDATE")
        files = _changes(change_set)["Files"]
        assert (files["Replacement"], files["Scope"]) == ("False", ["Tags"])
        assert files["Details"][0]["Target"] == {"Attribute": "Tags", "RequiresRecreation": "Never"}
        assert _execute(cfn, change_set)["StackStatus"] == "UPDATE_COMPLETE"
        assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "Team", "Value": "data"}]
    finally:
        _delete(cfn, stack)


def _secret_template(description: str) -> dict:
    props = {"Name": {"Ref": "Name"}, "Description": description, "SecretString": "{\"k\": \"v\"}"}
    return {"Parameters": {"Name": {"Type": "String"}},
            "Resources": {"Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": props}}}


def test_parameter_driven_replacement(target) -> None:
    """A create-only property fed by a changed parameter: ParameterReference, Static, and a new secret."""
    cfn, sm = target.client("cloudformation"), target.client("secretsmanager")
    stack, first, second = _name("secret-repl"), _name("s1"), _name("s2")
    _deploy(cfn, stack, _secret_template("one"), parameters={"Name": first})
    try:
        change_set = _change_set(cfn, stack, _secret_template("one"), "UPDATE", parameters={"Name": second})
        secret = _changes(change_set)["Secret"]
        assert secret["Replacement"] == "True"
        assert secret["Details"] == [{"Target": {"Attribute": "Properties", "Name": "Name", "RequiresRecreation": "Always"},
                                      "Evaluation": "Static", "ChangeSource": "ParameterReference", "CausingEntity": "Name"}]
        assert _execute(cfn, change_set)["StackStatus"] == "UPDATE_COMPLETE"
        assert sm.describe_secret(SecretId=second)["Description"] == "one"
        with pytest.raises(ClientError):
            sm.get_secret_value(SecretId=first)  # deleted (or scheduled): no longer readable
    finally:
        _delete(cfn, stack)


def test_db_name_change_is_a_replacement(target) -> None:
    """The issue's case: a DBName change is a replacement (not a plain modify); a class change is not.

    Replaced when the name is generated; refused, with CloudFormation's message, when the template names it.
    """
    cfn, rds = target.client("cloudformation"), target.client("rds")
    stack = _name("dbrepl")

    def template(db_name: str, instance_class: str, identifier: str | None = None) -> dict:
        props = {"Engine": "postgres", "EngineVersion": "15.10", "DBInstanceClass": instance_class, "AllocatedStorage": "20",
                 "MasterUsername": "rentaliq_admin", "MasterUserPassword": "Passw0rd-long-enough", "DBName": db_name}
        if identifier:
            props["DBInstanceIdentifier"] = identifier
        return {"Resources": {"Db": {"Type": "AWS::RDS::DBInstance", "DeletionPolicy": "Delete", "Properties": props}}}

    _deploy(cfn, stack, template("first", "db.t3.micro"))
    try:
        old_id = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="Db")["StackResourceDetail"]["PhysicalResourceId"]
        klass = _changes(_change_set(cfn, stack, template("first", "db.t3.small"), "UPDATE"))["Db"]
        assert (klass["Replacement"], klass["Details"][0]["Target"]["RequiresRecreation"]) == ("False", "Never")
        change_set = _change_set(cfn, stack, template("second", "db.t3.micro"), "UPDATE")
        db = _changes(change_set)["Db"]
        assert (db["Replacement"], db["Details"][0]["Target"]) == ("True", {"Attribute": "Properties", "Name": "DBName", "RequiresRecreation": "Always"})
        assert _execute(cfn, change_set)["StackStatus"] == "UPDATE_COMPLETE"
        new_id = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="Db")["StackResourceDetail"]["PhysicalResourceId"]
        assert new_id != old_id
        assert rds.describe_db_instances(DBInstanceIdentifier=new_id)["DBInstances"][0]["DBName"] == "second"
        with pytest.raises(ClientError, match="DBInstanceNotFound"):
            rds.describe_db_instances(DBInstanceIdentifier=old_id)

        custom = _name("custom-db")
        assert _deploy(cfn, stack, template("second", "db.t3.micro", custom), "UPDATE")["StackStatus"] == "UPDATE_COMPLETE"
        change_set = _change_set(cfn, stack, template("third", "db.t3.micro", custom), "UPDATE")
        assert _changes(change_set)["Db"]["Replacement"] == "True"
        assert _execute(cfn, change_set)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        reasons = [e.get("ResourceStatusReason") or "" for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]]
        assert any(f"custom-named resource requires replacing. Rename {custom} and update the stack again" in r for r in reasons)
        assert rds.describe_db_instances(DBInstanceIdentifier=custom)["DBInstances"][0]["DBName"] == "second"
    finally:
        _delete(cfn, stack)
