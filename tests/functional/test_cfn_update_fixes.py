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
        change_set = _import(
            cfn, stack, imported, [{"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Files", "ResourceIdentifier": {"BucketName": bucket}}]
        )
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
    props = {
        "Engine": "postgres",
        "EngineVersion": "15.10",
        "DBInstanceClass": "db.t3.micro",
        "AllocatedStorage": "20",
        "MasterUsername": "rentaliq_admin",
        "MasterUserPassword": "Passw0rd-long-enough",
        "DBName": "first",
        "BackupRetentionPeriod": 7,
        "MultiAZ": False,
        "PreferredMaintenanceWindow": "sun:03:00-sun:04:00",
        **changes,
    }
    return {"Resources": {"Db": {"Type": "AWS::RDS::DBInstance", "DeletionPolicy": "Delete", "Properties": props}}}


@pytest.mark.parametrize(
    ("changes", "replacement", "recreation"),
    [
        ({"BackupRetentionPeriod": 14}, "False", "Never"),
        ({"MultiAZ": True}, "False", "Never"),
        ({"PreferredMaintenanceWindow": "mon:03:00-mon:04:00"}, "False", "Never"),
        ({"DBName": "second"}, "True", "Always"),
    ],
)
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


def _tags(items: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or [] if not t["Key"].startswith("aws:")}


def _network_template(bucket: str, *, vpc_tags: dict, flow_tags: dict, eip: dict | None = None, taken: str | None = None) -> dict:
    resources: dict = {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.42.0.0/16", "Tags": [{"Key": k, "Value": v} for k, v in vpc_tags.items()]}},
        "Logs": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}},
        "Flow": {
            "Type": "AWS::EC2::FlowLog",
            "Properties": {
                "ResourceId": {"Ref": "Vpc"},
                "ResourceType": "VPC",
                "TrafficType": "REJECT",
                "LogDestinationType": "s3",
                "LogDestination": {"Fn::GetAtt": ["Logs", "Arn"]},
                "Tags": [{"Key": k, "Value": v} for k, v in flow_tags.items()],
            },
        },
        "Ip": {"Type": "AWS::EC2::EIP", "Properties": {"Domain": "vpc", **(eip or {"Tags": [{"Key": "Use", "Value": "nat"}]})}},
    }
    if taken:
        resources["Taken"] = {"Type": "AWS::S3::Bucket", "DependsOn": ["Flow", "Vpc", "Ip"], "Properties": {"BucketName": taken}}
    return {"Resources": resources}


def test_tag_changes_update_in_place_and_a_rollback_restores_tags_exactly(target) -> None:
    """FlowLog/EIP Tags update in place (AWS), as the change set says; a failed update that added a VPC tag and
    changed the flow log's tags leaves both as they were; a property with no update path fails by name."""
    cfn, ec2, s3 = target.client("cloudformation"), target.client("ec2"), target.client("s3")
    stack, bucket, taken = _name("flowtags"), _name("flowtags-logs"), _name("flowtags-taken")
    s3.create_bucket(Bucket=taken)
    base = {"vpc_tags": {"Team": "data"}, "flow_tags": {"Team": "data"}}

    def physical(logical_id: str) -> str:
        return cfn.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)["StackResourceDetail"]["PhysicalResourceId"]

    def state() -> tuple[dict, dict, dict]:
        vpc = ec2.describe_vpcs(VpcIds=[physical("Vpc")])["Vpcs"][0]
        flow = ec2.describe_flow_logs(FlowLogIds=[physical("Flow")])["FlowLogs"][0]
        address = ec2.describe_addresses(PublicIps=[physical("Ip")])["Addresses"][0]
        return _tags(vpc.get("Tags")), _tags(flow.get("Tags")), _tags(address.get("Tags"))

    try:
        assert _deploy(cfn, stack, _network_template(bucket, **base))["StackStatus"] == "CREATE_COMPLETE"
        flow_id, ip = physical("Flow"), physical("Ip")

        retag = _network_template(bucket, vpc_tags={"Team": "data"}, flow_tags={"Team": "platform"}, eip={"Tags": [{"Key": "Use", "Value": "egress"}]})
        change_set = _change_set(cfn, stack, retag, "UPDATE")
        assert {n: c["Replacement"] for n, c in _changes(change_set).items()} == {"Flow": "False", "Ip": "False"}
        assert _execute(cfn, change_set)["StackStatus"] == "UPDATE_COMPLETE"
        assert (physical("Flow"), physical("Ip")) == (flow_id, ip)  # the same flow log and address, retagged
        assert state() == ({"Team": "data"}, {"Team": "platform"}, {"Use": "egress"})
        assert len(ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [physical("Vpc")]}])["FlowLogs"]) == 1

        # A failed update (a bucket name that is taken) after tagging: every tag back as it was, the added key gone.
        failing = _network_template(
            bucket, vpc_tags={"Team": "data", "CostCenter": "42"}, flow_tags={"Owner": "ops"}, eip={"Tags": [{"Key": "Use", "Value": "egress"}]}, taken=taken
        )
        assert _deploy(cfn, stack, failing, "UPDATE")["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        assert state() == ({"Team": "data"}, {"Team": "platform"}, {"Use": "egress"})

        # A property the local cloud cannot update in place fails by name, and nothing is replaced.
        unsupported = _network_template(
            bucket, vpc_tags={"Team": "data"}, flow_tags={"Team": "platform"}, eip={"Tags": [{"Key": "Use", "Value": "egress"}], "PublicIpv4Pool": "amazon"}
        )
        assert _deploy(cfn, stack, unsupported, "UPDATE")["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        reasons = [e.get("ResourceStatusReason") or "" for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]]
        assert any("cannot update PublicIpv4Pool of AWS::EC2::EIP in place" in r for r in reasons), reasons[:5]
        assert physical("Ip") == ip
    finally:
        _delete(cfn, stack)
        s3.delete_bucket(Bucket=taken)


def _service_template(tags: dict, roles: list[str], taken: str | None = None) -> dict:
    tag_items = [{"Key": k, "Value": v} for k, v in tags.items()]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    resources: dict = {
        "RoleA": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust, "Tags": tag_items}},
        "RoleB": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
        "Read": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
                "Roles": [{"Ref": r} for r in roles],
            },
        },
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"SecretString": "not-printed", "Tags": tag_items}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7, "Tags": tag_items}},
    }
    if taken:
        resources["Taken"] = {"Type": "AWS::S3::Bucket", "DependsOn": list(resources), "Properties": {"BucketName": taken}}
    return {"Resources": resources}


def test_service_tags_roll_back_exactly_and_policy_roles_change_in_place(target) -> None:
    cfn, iam, sm, logs, s3 = (target.client(s) for s in ("cloudformation", "iam", "secretsmanager", "logs", "s3"))
    stack, taken = _name("svctags"), _name("svctags-taken")
    s3.create_bucket(Bucket=taken)

    def physical(logical_id: str) -> str:
        return cfn.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)["StackResourceDetail"]["PhysicalResourceId"]

    def state() -> tuple[dict, dict, dict]:
        role = _tags(iam.list_role_tags(RoleName=physical("RoleA"))["Tags"])
        secret = _tags(sm.describe_secret(SecretId=physical("Secret")).get("Tags"))
        group = {k: v for k, v in logs.list_tags_log_group(logGroupName=physical("Logs"))["tags"].items() if not k.startswith("aws:")}
        return role, secret, group

    def attached(role_logical_id: str) -> list[str]:
        return [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=physical(role_logical_id))["AttachedPolicies"]]

    try:
        assert _deploy(cfn, stack, _service_template({"Team": "data"}, ["RoleA"]))["StackStatus"] == "CREATE_COMPLETE"
        policy = physical("Read")
        assert state() == ({"Team": "data"}, {"Team": "data"}, {"Team": "data"})

        failing = _service_template({"Team": "data", "CostCenter": "42"}, ["RoleA"], taken)
        assert _deploy(cfn, stack, failing, "UPDATE")["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        assert state() == ({"Team": "data"}, {"Team": "data"}, {"Team": "data"})

        # Roles of a managed policy are updatable (AWS): the same policy, attached to the new role, off the old one.
        moved = _change_set(cfn, stack, _service_template({"Team": "data"}, ["RoleB"]), "UPDATE")
        assert _changes(moved)["Read"]["Replacement"] == "False"
        assert _execute(cfn, moved)["StackStatus"] == "UPDATE_COMPLETE"
        assert physical("Read") == policy
        assert (attached("RoleA"), attached("RoleB")) == ([], [policy])
    finally:
        _delete(cfn, stack)
        s3.delete_bucket(Bucket=taken)
