"""Change sets and templates on the local CloudFormation, over the wire with boto3, as AWS answers them.

Small hand-written templates keep these fast; each test reads the resources back through their own APIs.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.functional.throwaway import tls_only_policy

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


def _settled(cfn, stack: str, timeout: float = 120) -> dict:
    """The stack once its operation is over: CloudFormation runs operations asynchronously, so callers poll."""
    deadline = time.monotonic() + timeout
    while True:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not described["StackStatus"].endswith("_IN_PROGRESS") or described["StackStatus"] == "REVIEW_IN_PROGRESS":
            return described
        assert time.monotonic() < deadline, f"{stack} still {described['StackStatus']} after {timeout}s"
        time.sleep(0.2)


def _execute(cfn, change_set: dict) -> dict:
    cfn.execute_change_set(StackName=change_set["StackName"], ChangeSetName=change_set["ChangeSetId"])
    return _settled(cfn, change_set["StackName"])


def _deploy(cfn, stack: str, template: dict | str, kind: str = "CREATE", parameters: dict | None = None) -> dict:
    return _execute(cfn, _change_set(cfn, stack, template, kind, parameters))


def _delete(cfn, stack: str) -> None:
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


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
                "PolicyDocument": tls_only_policy({"Fn::GetAtt": ["Files", "Arn"]}, {"Fn::Sub": "${Files.Arn}/*"}),
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
        assert files["Details"] == [
            {
                "Target": {"Attribute": "Properties", "Name": "BucketName", "RequiresRecreation": "Always"},
                "Evaluation": "Static",
                "ChangeSource": "DirectModification",
            }
        ]
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


def test_failed_update_after_a_replacement_keeps_the_original_and_its_data(target) -> None:
    """The rollback takes the original bucket back (its deletion waits for the cleanup phase) and deletes the new one."""
    cfn, s3 = target.client("cloudformation"), target.client("s3")
    stack, first, second = _name("repl-rb"), _name("repl-rb-1"), _name("repl-rb-2")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

    def template(bucket: str, trust_policy) -> dict:
        return {
            "Resources": {
                "Files": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}},
                "Reader": {"Type": "AWS::IAM::Role", "Properties": {"Description": {"Ref": "Files"}, "AssumeRolePolicyDocument": trust_policy}},
            }
        }

    _deploy(cfn, stack, template(first, trust))
    version = s3.put_object(Bucket=first, Key="kept.txt", Body=b"precious").get("VersionId")
    try:
        change_set = _change_set(cfn, stack, template(second, "{not a policy"), "UPDATE")
        assert _changes(change_set)["Files"]["Replacement"] == "True"
        assert _execute(cfn, change_set)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert first in buckets and second not in buckets
        assert s3.get_object(Bucket=first, Key="kept.txt")["Body"].read() == b"precious"
        assert s3.head_object(Bucket=first, Key="kept.txt").get("VersionId") == version
        physical = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="Files")["StackResourceDetail"]["PhysicalResourceId"]
        assert physical == first
    finally:
        s3.delete_object(Bucket=first, Key="kept.txt")
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
    props = {"Name": {"Ref": "Name"}, "Description": description, "SecretString": '{"k": "v"}'}
    return {"Parameters": {"Name": {"Type": "String"}}, "Resources": {"Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": props}}}


def test_parameter_driven_replacement(target) -> None:
    """A create-only property fed by a changed parameter: ParameterReference, Static, and a new secret."""
    cfn, sm = target.client("cloudformation"), target.client("secretsmanager")
    stack, first, second = _name("secret-repl"), _name("s1"), _name("s2")
    _deploy(cfn, stack, _secret_template("one"), parameters={"Name": first})
    try:
        change_set = _change_set(cfn, stack, _secret_template("one"), "UPDATE", parameters={"Name": second})
        secret = _changes(change_set)["Secret"]
        assert secret["Replacement"] == "True"
        assert secret["Details"] == [
            {
                "Target": {"Attribute": "Properties", "Name": "Name", "RequiresRecreation": "Always"},
                "Evaluation": "Static",
                "ChangeSource": "ParameterReference",
                "CausingEntity": "Name",
            }
        ]
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
        props = {
            "Engine": "postgres",
            "EngineVersion": "15.10",
            "DBInstanceClass": instance_class,
            "AllocatedStorage": "20",
            "MasterUsername": "rentaliq_admin",
            "MasterUserPassword": "Passw0rd-long-enough",
            "DBName": db_name,
        }
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


# -- 2. IMPORT change sets -----------------------------------------------------------------------------------------


def _import(cfn, stack: str, template: dict | str, resources: list[dict], parameters: dict | None = None) -> dict:
    return _change_set(cfn, stack, template, "IMPORT", parameters, ResourcesToImport=resources)


def _retained_bucket_template(bucket: str, tags: dict | None = None) -> dict:
    props: dict = {"BucketName": bucket, "VersioningConfiguration": {"Status": "Enabled"}}
    if tags:
        props["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return {"Resources": {"Files": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": props}}}


def test_import_existing_bucket_keeps_its_objects_then_updates_normally(target) -> None:
    cfn, s3 = target.client("cloudformation"), target.client("s3")
    stack, bucket = _name("import"), _name("retained")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    versions = [s3.put_object(Bucket=bucket, Key="report.csv", Body=body)["VersionId"] for body in (b"v1", b"v2")]
    try:
        change_set = _import(
            cfn,
            stack,
            _retained_bucket_template(bucket),
            [{"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Files", "ResourceIdentifier": {"BucketName": bucket}}],
        )
        assert change_set["Status"] == "CREATE_COMPLETE" and change_set["ExecutionStatus"] == "AVAILABLE"
        assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
        files = _changes(change_set)["Files"]
        assert (files["Action"], files["PhysicalResourceId"], files["ResourceType"]) == ("Import", bucket, "AWS::S3::Bucket")

        assert _execute(cfn, change_set)["StackStatus"] == "IMPORT_COMPLETE"
        events = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(cfn.describe_stack_events(StackName=stack)["StackEvents"])]
        assert [s for r, s in events if r == "Files"] == ["IMPORT_IN_PROGRESS", "IMPORT_COMPLETE"]
        assert events[-1] == (stack, "IMPORT_COMPLETE")
        resource = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="Files")["StackResourceDetail"]
        assert resource["PhysicalResourceId"] == bucket
        listed = s3.list_object_versions(Bucket=bucket)["Versions"]
        assert sorted(v["VersionId"] for v in listed) == sorted(versions)
        assert [s3.get_object(Bucket=bucket, Key="report.csv", VersionId=v)["Body"].read() for v in versions] == [b"v1", b"v2"]

        # A later update works on the imported bucket as on any other: a tag, in place.
        update = _change_set(cfn, stack, _retained_bucket_template(bucket, tags={"Restored": "true"}), "UPDATE")
        assert _changes(update)["Files"]["Replacement"] == "False"
        assert _execute(cfn, update)["StackStatus"] == "UPDATE_COMPLETE"
        assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "Restored", "Value": "true"}]
        assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 2
    finally:
        _delete(cfn, stack)  # Retain: the bucket stays
        assert bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}
        for v in s3.list_object_versions(Bucket=bucket).get("Versions", []):
            s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
        s3.delete_bucket(Bucket=bucket)


def test_import_secret_and_database_into_an_existing_stack(target) -> None:
    cfn, sm, rds, s3 = (target.client(s) for s in ("cloudformation", "secretsmanager", "rds", "s3"))
    stack, secret_name, db_id, bucket = _name("import2"), _name("imported/secret"), _name("imported-db"), _name("base")
    base = _retained_bucket_template(bucket)
    _deploy(cfn, stack, base)
    arn = sm.create_secret(Name=secret_name, SecretString='{"password": "kept"}')["ARN"]
    rds.create_db_instance(
        DBInstanceIdentifier=db_id,
        Engine="postgres",
        EngineVersion="15.10",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="rentaliq_admin",
        MasterUserPassword="Passw0rd-long-enough",
        DBName="kept",
    )
    template = json.loads(json.dumps(base))
    template["Resources"]["Secret"] = {
        "Type": "AWS::SecretsManager::Secret",
        "DeletionPolicy": "Retain",
        "Properties": {"Name": secret_name, "Description": "imported"},
    }
    template["Resources"]["Db"] = {
        "Type": "AWS::RDS::DBInstance",
        "DeletionPolicy": "Retain",
        "Properties": {
            "DBInstanceIdentifier": db_id,
            "Engine": "postgres",
            "EngineVersion": "15.10",
            "DBInstanceClass": "db.t3.micro",
            "AllocatedStorage": "20",
            "MasterUsername": "rentaliq_admin",
            "DBName": "kept",
        },
    }
    try:
        change_set = _import(
            cfn,
            stack,
            template,
            [
                {"ResourceType": "AWS::SecretsManager::Secret", "LogicalResourceId": "Secret", "ResourceIdentifier": {"Id": arn}},
                {"ResourceType": "AWS::RDS::DBInstance", "LogicalResourceId": "Db", "ResourceIdentifier": {"DBInstanceIdentifier": db_id}},
            ],
        )
        assert {k: v["Action"] for k, v in _changes(change_set).items()} == {"Secret": "Import", "Db": "Import"}
        assert _execute(cfn, change_set)["StackStatus"] == "IMPORT_COMPLETE"
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
        assert physical == {"Files": bucket, "Secret": arn, "Db": db_id}
        # Adopted, not modified: the secret's value and the database are as they were.
        assert json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]) == {"password": "kept"}
        assert "Description" not in sm.describe_secret(SecretId=arn)
        assert rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]["DBName"] == "kept"
        update = _change_set(
            cfn,
            stack,
            template
            | {
                "Resources": {
                    **template["Resources"],
                    "Secret": {**template["Resources"]["Secret"], "Properties": {"Name": secret_name, "Description": "managed now"}},
                }
            },
            "UPDATE",
        )
        assert _execute(cfn, update)["StackStatus"] == "UPDATE_COMPLETE"
        assert sm.describe_secret(SecretId=arn)["Description"] == "managed now"
    finally:
        _delete(cfn, stack)
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        rds.delete_db_instance(DBInstanceIdentifier=db_id, SkipFinalSnapshot=True)
        s3.delete_bucket(Bucket=bucket)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-deletion-policy", "The following resources to import [Files] must have DeletionPolicy attribute specified in the template."),
        ("missing-bucket", "does not exist"),
        ("unknown-logical-id", "The logical resource ids [Nope] provided in ResourcesToImport do not exist in the template."),
        ("extra-resource", "You have modified resources [Extra] in your template that are not being imported."),
        ("wrong-identifier", "AWS::S3::Bucket is identified by [BucketName]"),
    ],
)
def test_import_refusals(target, case: str, message: str) -> None:
    cfn, s3 = target.client("cloudformation"), target.client("s3")
    stack, bucket = _name("import-bad"), _name("import-bad")
    s3.create_bucket(Bucket=bucket)
    template = _retained_bucket_template(bucket)
    identifier = {"BucketName": bucket}
    logical = "Files"
    if case == "no-deletion-policy":
        del template["Resources"]["Files"]["DeletionPolicy"]
    elif case == "missing-bucket":
        identifier = {"BucketName": _name("absent")}
        template["Resources"]["Files"]["Properties"]["BucketName"] = identifier["BucketName"]
    elif case == "unknown-logical-id":
        logical = "Nope"
    elif case == "extra-resource":
        template["Resources"]["Extra"] = {"Type": "AWS::S3::Bucket", "Properties": {}}
    elif case == "wrong-identifier":
        identifier = {"Name": bucket}
    try:
        with pytest.raises(ClientError) as raised:
            _import(cfn, stack, template, [{"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": logical, "ResourceIdentifier": identifier}])
        assert raised.value.response["Error"]["Code"] == "ValidationError"
        assert message in raised.value.response["Error"]["Message"]
        stacks = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]
        assert stack not in stacks  # nothing half-created
        assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    finally:
        s3.delete_bucket(Bucket=bucket)


def test_import_refuses_a_resource_of_another_stack(target) -> None:
    cfn, s3 = target.client("cloudformation"), target.client("s3")
    owner, thief, bucket = _name("owner"), _name("thief"), _name("owned")
    _deploy(cfn, owner, _retained_bucket_template(bucket))
    try:
        with pytest.raises(ClientError, match=f"{bucket} already exists in stack arn:aws:cloudformation"):
            _import(
                cfn,
                thief,
                _retained_bucket_template(bucket),
                [{"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Files", "ResourceIdentifier": {"BucketName": bucket}}],
            )
    finally:
        _delete(cfn, owner)
        s3.delete_bucket(Bucket=bucket)


# -- 3. YAML with short-form intrinsics ----------------------------------------------------------------------------

YAML_TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Description: short-form intrinsics
Parameters:
  Env:
    Type: String
    AllowedValues: [lab, prod]
  Prefix:
    Type: String
Mappings:
  Retention:
    lab: {Days: "1"}
    prod: {Days: "30"}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsLab: !Not [!Condition IsProd]
  Either: !Or [!Condition IsProd, !Condition IsLab]
  Both: !And [!Condition Either, !Not [!Equals [!Ref Prefix, ""]]]
Resources:
  Files:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Join ["-", [!Ref Prefix, !Ref Env, files]]
      Tags:
        - Key: Tier
          Value: !If [IsProd, gold, bronze]
        - Key: First
          Value: !Select [0, !Split [",", "a,b,c"]]
        - Key: Days
          Value: !FindInMap [Retention, !Ref Env, Days]
        - Key: Encoded
          Value: !Base64 hello
        - Key: Zone
          Value: !Select [0, !GetAZs ""]
        - Key: Net
          Value: !Select [1, !Cidr ["10.0.0.0/16", 4, 8]]
  Secret:
    Type: AWS::SecretsManager::Secret
    Condition: Both
    Properties:
      Name: !Sub "${Prefix}/${Env}/config"
      SecretString: !Sub
        - '{"bucket": "${Bucket}", "arn": "${Arn}"}'
        - Bucket: !Ref Files
          Arn: !GetAtt Files.Arn
      Description: !GetAtt [Files, DomainName]
Outputs:
  BucketArn:
    Value: !GetAtt Files.Arn
"""


@pytest.mark.parametrize("via", ["create_stack", "change_set"])
def test_yaml_short_form_template_creates_the_stack(target, via: str) -> None:
    cfn, s3, sm = target.client("cloudformation"), target.client("s3"), target.client("secretsmanager")
    stack, prefix = _name("yaml"), _name("yaml")
    parameters = {"Env": "lab", "Prefix": prefix}
    if via == "create_stack":
        cfn.create_stack(StackName=stack, TemplateBody=YAML_TEMPLATE, Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
        status = _settled(cfn, stack)["StackStatus"]
    else:
        status = _deploy(cfn, stack, YAML_TEMPLATE, parameters=parameters)["StackStatus"]
    bucket = f"{prefix}-lab-files"
    try:
        assert status == "CREATE_COMPLETE"
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        assert tags == {"Tier": "bronze", "First": "a", "Days": "1", "Encoded": "aGVsbG8=", "Zone": "us-east-1a", "Net": "10.0.1.0/24"}
        value = json.loads(sm.get_secret_value(SecretId=f"{prefix}/lab/config")["SecretString"])
        assert value == {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
        assert outputs == [{"OutputKey": "BucketArn", "OutputValue": f"arn:aws:s3:::{bucket}"}]
        assert cfn.get_template(StackName=stack)["TemplateBody"] == YAML_TEMPLATE  # as given, tags and all
    finally:
        _delete(cfn, stack)


def test_malformed_yaml_is_a_template_format_error(target) -> None:
    cfn = target.client("cloudformation")
    with pytest.raises(ClientError) as raised:
        cfn.create_stack(StackName=_name("bad-yaml"), TemplateBody="Resources:\n  A: [unclosed\n")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"].startswith("Template format error: YAML not well-formed.")


# -- 4. generated names ----------------------------------------------------------------------------------------------


def test_long_stack_name_keeps_the_logical_id_in_generated_names(target) -> None:
    cfn = target.client("cloudformation")
    stack = _name("a-very-long-stack-name-for-an-environment-that-someone-named-generously")[:128]
    _deploy(
        cfn,
        stack,
        {
            "Resources": {
                "ArchiveBucket": {"Type": "AWS::S3::Bucket"},
                "ReaderRole": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {
                        "AssumeRolePolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
                        }
                    },
                },
            }
        },
    )
    try:
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
        bucket, role = physical["ArchiveBucket"], physical["ReaderRole"]
        # The logical ids fit whole; the stack name takes the room they leave (63 - 13 - 1 - len(logical id)).
        assert len(bucket) == 63 and bucket.startswith(stack[: 63 - 14 - len("ArchiveBucket")].lower() + "-archivebucket-")
        assert len(role) == 64 and role.startswith(stack[: 64 - 14 - len("ReaderRole")] + "-ReaderRole-")
    finally:
        _delete(cfn, stack)


# -- 5. NoEcho -------------------------------------------------------------------------------------------------------


def test_no_echo_parameters_are_masked_but_reach_the_resources(target, cloud) -> None:
    cfn, sm = target.client("cloudformation"), target.client("secretsmanager")
    stack, secret_name = _name("noecho"), _name("noecho/api")
    api_key, default_key = f"ak-{uuid.uuid4().hex}", f"dk-{uuid.uuid4().hex}"
    template = {
        "Parameters": {
            "ApiKey": {"Type": "String", "NoEcho": True},
            "DefaultKey": {"Type": "String", "NoEcho": "true", "Default": default_key},
            "Owner": {"Type": "String"},
        },
        "Resources": {
            "Keys": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {
                    "Name": secret_name,
                    "SecretString": {"Fn::Sub": '{"api_key": "${ApiKey}", "default_key": "${DefaultKey}", "owner": "${Owner}"}'},
                },
            }
        },
    }
    change_set = _change_set(cfn, stack, template, "CREATE", {"ApiKey": api_key, "Owner": "platform"})
    shown = {p["ParameterKey"]: p["ParameterValue"] for p in change_set["Parameters"]}
    assert shown["ApiKey"] == "****" and shown["Owner"] == "platform"
    try:
        described = _execute(cfn, change_set)
        assert {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]} == {"ApiKey": "****", "DefaultKey": "****", "Owner": "platform"}
        value = json.loads(sm.get_secret_value(SecretId=secret_name)["SecretString"])
        assert value == {"api_key": api_key, "default_key": default_key, "owner": "platform"}

        # UsePreviousValue still passes the real value on: an update keeps the secret intact.
        cfn.create_change_set(
            StackName=stack,
            ChangeSetName="keep",
            ChangeSetType="UPDATE",
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "ApiKey", "UsePreviousValue": True}, {"ParameterKey": "Owner", "ParameterValue": "data"}],
        )
        update = _wait(cfn, stack, "keep")
        assert {p["ParameterKey"]: p["ParameterValue"] for p in update["Parameters"]}["ApiKey"] == "****"
        assert _execute(cfn, update)["StackStatus"] == "UPDATE_COMPLETE"
        assert json.loads(sm.get_secret_value(SecretId=secret_name)["SecretString"])["api_key"] == api_key

        answers = (
            json.dumps(cfn.describe_stacks(StackName=stack), default=str)
            + json.dumps(cfn.describe_stack_events(StackName=stack), default=str)
            + json.dumps(update, default=str)
        )
        assert api_key not in answers and default_key not in answers
        for log in cloud.state_dir.rglob("*.log"):
            text = log.read_text(errors="replace")
            assert api_key not in text and default_key not in text, f"a NoEcho value is in {log}"
    finally:
        _delete(cfn, stack)
        sm.delete_secret(SecretId=secret_name, ForceDeleteWithoutRecovery=True)


def test_update_stack_without_change_set_replaces_too(target) -> None:
    cfn, s3 = target.client("cloudformation"), target.client("s3")
    stack, first, second = _name("upd"), _name("upd-1"), _name("upd-2")
    _deploy(cfn, stack, _bucket_template(first))
    try:
        cfn.update_stack(StackName=stack, TemplateBody=json.dumps(_bucket_template(second)))
        assert _settled(cfn, stack)["StackStatus"] == "UPDATE_COMPLETE"
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert second in buckets and first not in buckets
    finally:
        _delete(cfn, stack)
