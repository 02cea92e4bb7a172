"""The local CloudFormation keeps CloudFormation's guarantees: no adoption on create, a rollback deletes only
what its operation created, one operation per stack at a time, unique final snapshots.

A cloud of its own (free port, temp dir): these tests create and destroy PROD.
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from rentaliq.deploy import destroy as destroy_mod
from rentaliq.deploy import stacks
from rentaliq.deploy.changesets import DeployError, deploy, diff
from rentaliq.deploy.lifecycle import RetainedFound, up
from rentaliq.deploy.target import Target
from rentaliq.environments import load_spec
from rentaliq.infra.cache import templates
from tests.clouds import own_cloud
from tests.functional.throwaway import renamed, template_file, tls_only_policy

guarantees_cloud = own_cloud("guarantees", "A cloud where these tests make and break throwaway stacks.")


@pytest.fixture(scope="module")
def local(guarantees_cloud) -> Target:
    return Target.local(guarantees_cloud.endpoint_url)


def _deploy(target, stack_name, tmp_path, resources, name="t.json"):
    # `deploy` passes the API-key parameters every RentalIQ template declares (UsePreviousValue on updates).
    parameters = {k: {"Type": "String", "NoEcho": True} for k in ("ApiKey", "JwtSecret", "EncryptionKey")}
    return deploy(target, renamed(load_spec("lab"), stack_name), template_file(tmp_path / name, resources, parameters))


def _versions(s3, bucket):
    found = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        found |= {(v["Key"], v["VersionId"]) for v in page.get("Versions", [])}
    return found


def _wait_settled(cfn, stack_name, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"{stack_name} still in progress")


@pytest.mark.slow
def test_retained_prod_buckets_keep_every_version_when_the_second_up_fails(local, tmp_path):
    """The issue's sequence: up prod, objects, protection off, destroy (buckets retained), up prod again."""
    prod = load_spec("prod")
    outdir = tmp_path / "cdk.out"
    up(local, [prod], outdir)
    s3 = local.client("s3")
    for bucket in ("rentaliq-prod-files", "rentaliq-access-logs"):
        for body in (b"one", b"two"):
            s3.put_object(Bucket=bucket, Key="kept/report.txt", Body=body)
    before = {b: _versions(s3, b) for b in ("rentaliq-prod-files", "rentaliq-access-logs")}
    assert all(len(v) >= 2 for v in before.values())

    destroy_mod.set_deletion_protection(local, prod, False)
    plan = destroy_mod.plan(local, prod)
    destroy_mod.check(local, prod, plan, confirm_prod=True, empty_buckets=False)
    assert destroy_mod.destroy(local, prod, plan) == "DELETE_COMPLETE"

    # `up` sees what the destroy retained and stops before creating anything (the deploy side's guard) ...
    with pytest.raises(RetainedFound, match="rentaliq-prod-files"):
        up(local, [prod], outdir)
    # ... and the engine's own guarantee holds without it: a create that meets them fails and rolls back
    # without touching them (what `rentaliq deploy prod` or another tool would run into).
    with pytest.raises(DeployError) as failed:
        deploy(local, prod, templates([prod], outdir)[prod.stack_name])
    assert "ROLLBACK_COMPLETE" in str(failed.value)
    reasons = " ".join(e.reason or "" for e in failed.value.events)
    assert "already exists" in reasons, reasons
    for bucket, versions in before.items():  # every version of the retained buckets is still there
        assert _versions(s3, bucket) >= versions
        assert s3.get_object(Bucket=bucket, Key="kept/report.txt")["Body"].read() == b"two"
    secret = local.client("secretsmanager").describe_secret(SecretId="rentaliq/prod/db/credentials")
    assert "DeletedDate" in secret  # still in its recovery window, untouched by the rollback


def test_a_create_never_adopts_an_existing_secret_bucket_or_role(local, tmp_path):
    sm, s3, iam = local.client("secretsmanager"), local.client("s3"), local.client("iam")
    sm.create_secret(Name="rentaliq/probe/existing", SecretString="keep-me")
    s3.create_bucket(Bucket="rentaliq-probe-existing")
    s3.put_object(Bucket="rentaliq-probe-existing", Key="k", Body=b"mine")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role_id = iam.create_role(RoleName="rentaliq-probe-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["RoleId"]
    cases = {
        "rentaliq/probe/existing": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "rentaliq/probe/existing", "SecretString": "theirs"}},
        "rentaliq-probe-existing": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-probe-existing"}},
        "rentaliq-probe-role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "rentaliq-probe-role", "AssumeRolePolicyDocument": trust}},
    }
    for i, (name, resource) in enumerate(cases.items()):
        with pytest.raises(DeployError) as failed:
            _deploy(local, f"rentaliq-adopt-{i}", tmp_path, {"Probe": resource})
        assert [e.reason for e in failed.value.events if e.logical_id == "Probe"] == [f"{name} already exists"]
        assert stacks.describe(local, f"rentaliq-adopt-{i}")["StackStatus"] == "ROLLBACK_COMPLETE"
    assert sm.get_secret_value(SecretId="rentaliq/probe/existing")["SecretString"] == "keep-me"
    assert s3.get_object(Bucket="rentaliq-probe-existing", Key="k")["Body"].read() == b"mine"
    assert iam.get_role(RoleName="rentaliq-probe-role")["Role"]["RoleId"] == role_id


def test_a_secret_scheduled_for_deletion_fails_the_create_with_aws_message(local, tmp_path):
    sm = local.client("secretsmanager")
    sm.create_secret(Name="rentaliq/probe/scheduled", SecretString="old")
    sm.delete_secret(SecretId="rentaliq/probe/scheduled", RecoveryWindowInDays=7)
    with pytest.raises(DeployError) as failed:
        _deploy(
            local,
            "rentaliq-scheduled",
            tmp_path,
            {"S": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "rentaliq/probe/scheduled", "SecretString": "new"}}},
        )
    [reason] = [e.reason for e in failed.value.events if e.logical_id == "S"]
    assert "rentaliq/probe/scheduled already exists" in reason
    assert "You can't create this secret because a secret with this name is already scheduled for deletion." in reason
    assert "DeletedDate" in sm.describe_secret(SecretId="rentaliq/probe/scheduled")


def _secrets(n, prefix, value):
    return {f"S{i}": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": f"{prefix}/{i}", "SecretString": value}} for i in range(n)}


def _database(identifier, policy="Delete"):
    """A real PostgreSQL server behind it: seconds to create, so an operation that adds one stays in progress a while."""
    return {
        "Type": "AWS::RDS::DBInstance",
        "DeletionPolicy": policy,
        "Properties": {
            "DBInstanceIdentifier": identifier,
            "Engine": "postgres",
            "DBInstanceClass": "db.t3.micro",
            "AllocatedStorage": "20",
            "MasterUsername": "rentaliq_admin",
            "MasterUserPassword": "Passw0rdPassw0rd",
        },
    }


def _create(cfn, stack_name, resources):
    cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps({"Resources": resources}))
    assert _wait_settled(cfn, stack_name) == "CREATE_COMPLETE"


def test_two_concurrent_executes_the_second_is_refused_and_the_first_completes(local, tmp_path):
    cfn = local.client("cloudformation")
    _create(cfn, "rentaliq-race", _secrets(2, "rentaliq/race", "v0"))
    bodies = {tag: json.dumps({"Resources": {**_secrets(12, "rentaliq/race", tag), "Db": _database(f"rentaliq-race-{tag}")}}) for tag in ("first", "second")}
    ids = {
        tag: cfn.create_change_set(StackName="rentaliq-race", ChangeSetName=f"cs-{tag}", ChangeSetType="UPDATE", TemplateBody=body)["Id"]
        for tag, body in bodies.items()
    }
    cfn.execute_change_set(ChangeSetName=ids["first"])
    with pytest.raises(ClientError) as refused:
        cfn.execute_change_set(ChangeSetName=ids["second"])
    stack_id = cfn.describe_stacks(StackName="rentaliq-race")["Stacks"][0]["StackId"]
    message = refused.value.response["Error"]["Message"]
    assert message in (
        f"Stack:{stack_id} is in UPDATE_IN_PROGRESS state and can not be updated.",
        f"ChangeSet [{ids['second']}] cannot be executed in its current status of [OBSOLETE]",
    )
    assert _wait_settled(cfn, "rentaliq-race") == "UPDATE_COMPLETE"
    # AWS deletes a stack's other change sets once one has executed: the second can never run later either.
    assert [s["ChangeSetId"] for s in cfn.list_change_sets(StackName="rentaliq-race")["Summaries"]] == [ids["first"]]
    with pytest.raises(ClientError) as again:
        cfn.execute_change_set(ChangeSetName=ids["second"])
    assert again.value.response["Error"]["Code"] == "ChangeSetNotFound"
    sm = local.client("secretsmanager")
    assert {sm.get_secret_value(SecretId=f"rentaliq/race/{i}")["SecretString"] for i in range(12)} == {"first"}
    rds = local.client("rds")
    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"].startswith("rentaliq-race")] == [
        "rentaliq-race-first"
    ]


def test_an_operation_on_a_busy_stack_is_refused_with_aws_error(local, tmp_path):
    cfn = local.client("cloudformation")
    _create(cfn, "rentaliq-busy", _secrets(1, "rentaliq/busy", "v0"))
    cfn.update_stack(
        StackName="rentaliq-busy", TemplateBody=json.dumps({"Resources": {**_secrets(1, "rentaliq/busy", "v1"), "Db": _database("rentaliq-busy-db")}})
    )
    stack_id = cfn.describe_stacks(StackName="rentaliq-busy")["Stacks"][0]["StackId"]
    for call in (
        lambda: cfn.delete_stack(StackName="rentaliq-busy"),
        lambda: cfn.create_change_set(
            StackName="rentaliq-busy", ChangeSetName="late", ChangeSetType="UPDATE", TemplateBody=json.dumps({"Resources": _secrets(1, "rentaliq/busy", "v2")})
        ),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Message"] == f"Stack:{stack_id} is in UPDATE_IN_PROGRESS state and can not be updated."
    assert _wait_settled(cfn, "rentaliq-busy") == "UPDATE_COMPLETE"


def test_diff_of_a_new_stack_leaves_nothing_behind(local, tmp_path):
    changes = diff(local, renamed(load_spec("lab"), "rentaliq-diff"), template_file(tmp_path / "diff.json", _secrets(1, "rentaliq/diff", "v")))
    assert [(c.action, c.logical_id) for c in changes] == [("Add", "S0")]
    assert stacks.describe(local, "rentaliq-diff") is None
    assert not [s for s in local.client("secretsmanager").list_secrets()["SecretList"] if s["Name"].startswith("rentaliq/diff")]


def test_a_failed_update_rolls_back_only_its_own_additions(local, tmp_path):
    s3, sm = local.client("s3"), local.client("secretsmanager")
    s3.create_bucket(Bucket="rentaliq-update-outsider")
    s3.put_object(Bucket="rentaliq-update-outsider", Key="k", Body=b"outsider")
    base = {
        "Kept": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-update-kept"}},
        "Value": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "rentaliq/update/value", "SecretString": "v1"}},
    }
    _deploy(local, "rentaliq-update", tmp_path, base)
    s3.put_object(Bucket="rentaliq-update-kept", Key="data", Body=b"stays")
    changed = {
        **base,
        "Value": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "rentaliq/update/value", "SecretString": "v2"}},
        "Added": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-update-added"}},
        "Collides": {"Type": "AWS::S3::Bucket", "DependsOn": ["Added", "Value"], "Properties": {"BucketName": "rentaliq-update-outsider"}},
    }
    with pytest.raises(DeployError) as failed:
        _deploy(local, "rentaliq-update", tmp_path, changed, "changed.json")
    assert "UPDATE_ROLLBACK_COMPLETE" in str(failed.value)
    assert [e.reason for e in failed.value.events if e.logical_id == "Collides"] == ["rentaliq-update-outsider already exists"]
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert "rentaliq-update-added" not in buckets  # its own addition: deleted
    assert {"rentaliq-update-kept", "rentaliq-update-outsider"} <= buckets
    assert s3.get_object(Bucket="rentaliq-update-outsider", Key="k")["Body"].read() == b"outsider"
    assert s3.get_object(Bucket="rentaliq-update-kept", Key="data")["Body"].read() == b"stays"
    assert sm.get_secret_value(SecretId="rentaliq/update/value")["SecretString"] == "v1"  # its modification: restored
    resources = local.client("cloudformation").describe_stack_resources(StackName="rentaliq-update")["StackResources"]
    assert sorted(r["LogicalResourceId"] for r in resources) == ["Kept", "Value"]


def test_two_destroys_with_deletion_policy_snapshot_make_two_final_snapshots(local, tmp_path):
    database = {"Db": _database("rentaliq-snap-db", "Snapshot")}
    cfn, rds = local.client("cloudformation"), local.client("rds")
    for _ in range(2):
        _deploy(local, "rentaliq-snap", tmp_path, database)
        stack_id = cfn.describe_stacks(StackName="rentaliq-snap")["Stacks"][0]["StackId"]
        cfn.delete_stack(StackName="rentaliq-snap")
        assert _wait_settled(cfn, stack_id) == "DELETE_COMPLETE"
    snapshots = [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(DBInstanceIdentifier="rentaliq-snap-db")["DBSnapshots"]]
    assert len(snapshots) == 2 and len(set(snapshots)) == 2, snapshots
    for name in snapshots:
        assert name.startswith("rentaliq-snap-db-") and name == name.lower() and len(name) <= 255 and "--" not in name


def test_what_an_interrupted_create_made_is_found_again(local, monkeypatch):
    """Recovery after a crash between a provider's create and its recorded result finds the resource by the
    name it was given or by the CloudFormation tags given with the create call, for every type our stacks use."""
    from rentaliq.local.cfn.base import Context
    from rentaliq.local.cfn.engine import REGISTRY

    monkeypatch.setenv("RENTALIQ_LOCAL_ENDPOINT", local.endpoint_url)
    stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/rentaliq-locate/1"
    made: dict[str, str] = {}

    def make(logical_id, type_name, props):
        ctx = Context("123456789012", "us-east-1", "rentaliq-locate", logical_id, stack_id=stack_id)
        provider = REGISTRY[type_name]
        physical_id = provider.create(props, ctx)
        again = Context("123456789012", "us-east-1", "rentaliq-locate", logical_id, stack_id=stack_id, suffix=ctx.suffix)
        assert provider.locate(props, again) == [physical_id], type_name
        made[logical_id] = physical_id
        return physical_id

    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    vpc = make("Vpc", "AWS::EC2::VPC", {"CidrBlock": "10.77.0.0/16"})
    subnet = make("Subnet", "AWS::EC2::Subnet", {"VpcId": vpc, "CidrBlock": "10.77.1.0/24", "AvailabilityZone": "us-east-1a"})
    table = make("Table", "AWS::EC2::RouteTable", {"VpcId": vpc})
    make("Assoc", "AWS::EC2::SubnetRouteTableAssociation", {"SubnetId": subnet, "RouteTableId": table})
    igw = make("Igw", "AWS::EC2::InternetGateway", {})
    make("Attach", "AWS::EC2::VPCGatewayAttachment", {"VpcId": vpc, "InternetGatewayId": igw})
    make("Route", "AWS::EC2::Route", {"RouteTableId": table, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw})
    make("Eip", "AWS::EC2::EIP", {"Domain": "vpc"})
    allocation = local.client("ec2").describe_addresses(PublicIps=[made["Eip"]])["Addresses"][0]["AllocationId"]
    make("Nat", "AWS::EC2::NatGateway", {"SubnetId": subnet, "AllocationId": allocation})
    make("Endpoint", "AWS::EC2::VPCEndpoint", {"VpcId": vpc, "ServiceName": "com.amazonaws.us-east-1.s3", "RouteTableIds": [table]})
    role = make("Role", "AWS::IAM::Role", {"AssumeRolePolicyDocument": trust})
    make(
        "Inline",
        "AWS::IAM::Policy",
        {
            "PolicyName": "rentaliq-locate-inline",
            "Roles": [role],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]},
        },
    )
    logs = make("Logs", "AWS::Logs::LogGroup", {})
    role_arn = local.client("iam").get_role(RoleName=role)["Role"]["Arn"]
    make("Flow", "AWS::EC2::FlowLog", {"ResourceId": vpc, "ResourceType": "VPC", "LogGroupName": logs, "DeliverLogsPermissionArn": role_arn})
    group = make("Sg", "AWS::EC2::SecurityGroup", {"GroupDescription": "x", "VpcId": vpc})
    make("Ingress", "AWS::EC2::SecurityGroupIngress", {"GroupId": group, "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "CidrIp": "10.0.0.0/8"})
    bucket = make("Bucket", "AWS::S3::Bucket", {})
    make("BucketPolicy", "AWS::S3::BucketPolicy", {"Bucket": bucket, "PolicyDocument": tls_only_policy(f"arn:aws:s3:::{bucket}/*")})
    make("Secret", "AWS::SecretsManager::Secret", {"SecretString": "s"})
    make(
        "Managed",
        "AWS::IAM::ManagedPolicy",
        {"PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}},
    )
    make("Params", "AWS::RDS::DBParameterGroup", {"Family": "postgres15", "Description": "x"})
    make("Subnets", "AWS::RDS::DBSubnetGroup", {"DBSubnetGroupDescription": "x", "SubnetIds": [subnet]})
    make(
        "Alarm",
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "CPUUtilization",
            "Namespace": "AWS/RDS",
            "Statistic": "Average",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 80,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )
    # And a second create of a named one fails "already exists" instead of adopting it.
    with pytest.raises(Exception, match="already exists"):
        ctx = Context("123456789012", "us-east-1", "rentaliq-locate", "Role", stack_id=stack_id)
        REGISTRY["AWS::IAM::Role"].check_absent({"RoleName": role, "AssumeRolePolicyDocument": trust}, ctx)


def test_use_previous_value_for_an_unknown_parameter_is_a_validation_error(local):
    cfn = local.client("cloudformation")
    _create(cfn, "rentaliq-previous", _secrets(1, "rentaliq/previous", "v"))
    with pytest.raises(ClientError) as refused:
        cfn.create_change_set(
            StackName="rentaliq-previous",
            ChangeSetName="p",
            ChangeSetType="UPDATE",
            TemplateBody=json.dumps({"Resources": _secrets(2, "rentaliq/previous", "v")}),
            Parameters=[{"ParameterKey": "ApiKey", "UsePreviousValue": True}],
        )
    assert refused.value.response["Error"]["Code"] == "ValidationError" and "ApiKey" in refused.value.response["Error"]["Message"]


def test_a_database_name_change_fails_once_with_aws_message_and_is_not_retried(local):
    """A custom-named database cannot be replaced (the new one could not take the name): one failure, no retries."""
    cfn = local.client("cloudformation")
    db = _database("rentaliq-rename-db")
    db["Properties"]["DBName"] = "first"
    _create(cfn, "rentaliq-rename", {"Db": db})
    db["Properties"]["DBName"] = "second"
    cfn.update_stack(StackName="rentaliq-rename", TemplateBody=json.dumps({"Resources": {"Db": db}}))
    assert _wait_settled(cfn, "rentaliq-rename") == "UPDATE_ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="rentaliq-rename")["StackEvents"]
    failed = [e.get("ResourceStatusReason") for e in events if e["LogicalResourceId"] == "Db" and e["ResourceStatus"] == "UPDATE_FAILED"]
    assert failed == [
        "CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename rentaliq-rename-db and update the stack again."
    ]
    [instance] = local.client("rds").describe_db_instances(DBInstanceIdentifier="rentaliq-rename-db")["DBInstances"]
    assert instance["DBName"] == "first"
