"""The audit trail on the local cloud: PROD's CloudTrail and AWS Config resources deploy through CloudFormation and read
back as the template says; a create never adopts a trail made by hand; and the local cloud's own API calls come
back from ``lookup-events`` with the principal that made them (an IAM user's deploy, an assumed role's secret
read, a failed call with its error code), never with a secret value, newest first, across a kill -9."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from rentaliq.local.cloud import _wait_dead
from tests.aws_clients import one_try_client
from tests.clouds import own_cloud

cloud = own_cloud("audit", "The cloud these tests deploy the audit trail into, and kill -9.")

SECRET_VALUE = "s3cr3t-audit-Value!"  # must never appear in an event
STACK = "rentaliq-audit-test"


def _client(cloud: Any, service: str, key: str = "test", secret: str = "test", token: str | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=120),
    )


def _events(cloud: Any, **attribute: str) -> list[dict[str, Any]]:
    """Every event matching one lookup attribute, through the paginator (pages of 50, newest first)."""
    trail = one_try_client(cloud, "cloudtrail")
    kwargs: dict[str, Any] = {"LookupAttributes": [{"AttributeKey": k, "AttributeValue": v} for k, v in attribute.items()]} if attribute else {}
    return [event for page in trail.get_paginator("lookup_events").paginate(**kwargs) for event in page["Events"]]


def _record(event: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(event["CloudTrailEvent"])
    return record


def _audit_template(synthesized_prod: dict[str, Any]) -> dict[str, Any]:
    """PROD's audit resources as synthesized, as a stack of their own (less the server access logs, which belong to
    the storage half of the stack)."""
    resources = synthesized_prod["Resources"]
    kept = {lid: r for lid, r in resources.items() if lid.startswith("Audit")}
    (bucket,) = [r for r in kept.values() if r["Type"] == "AWS::S3::Bucket"]
    bucket["Properties"].pop("LoggingConfiguration")
    for resource in kept.values():
        if isinstance(resource.get("DependsOn"), list):
            resource["DependsOn"] = [d for d in resource["DependsOn"] if d in kept]
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": kept}


@pytest.fixture(scope="module")
def operator(cloud):
    """An IAM user with an access key of its own: the principal who deploys."""
    iam = one_try_client(cloud, "iam")
    iam.create_user(UserName="audit-operator")
    key = iam.create_access_key(UserName="audit-operator")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def audit_stack(cloud, operator, tmp_path_factory):
    from rentaliq.environments import load_spec
    from rentaliq.infra.app import synthesize

    (result,) = synthesize([load_spec("prod")], tmp_path_factory.mktemp("cdk.out"))
    template = _audit_template(result.template)
    cfn = _client(cloud, "cloudformation", *operator)
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"])
    deadline = time.monotonic() + 120
    while (status := cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    reasons = [e.get("ResourceStatusReason") for e in cfn.describe_stack_events(StackName=STACK)["StackEvents"] if "FAILED" in e["ResourceStatus"]]
    assert status == "CREATE_COMPLETE", reasons
    return template


def test_prod_trail_reads_back_multi_region_validated_encrypted_and_logging(cloud, audit_stack):
    trails = one_try_client(cloud, "cloudtrail")
    trail = trails.get_trail(Name="rentaliq-prod-trail")["Trail"]
    assert trail["IsMultiRegionTrail"] is True
    assert trail["LogFileValidationEnabled"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["S3BucketName"] == "rentaliq-prod-trail-logs"
    key_arn = trail["KmsKeyId"]
    assert one_try_client(cloud, "kms").describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"] == "Enabled"
    assert trails.get_trail_status(Name="rentaliq-prod-trail")["IsLogging"] is True
    tags = {t["Key"]: t["Value"] for t in trails.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"][0]["TagsList"]}
    assert tags["Environment"] == "prod" and tags["aws:cloudformation:stack-name"] == STACK
    s3 = one_try_client(cloud, "s3")
    rule = s3.get_bucket_encryption(Bucket="rentaliq-prod-trail-logs")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    policy = json.loads(s3.get_bucket_policy(Bucket="rentaliq-prod-trail-logs")["Policy"])
    assert any(s.get("Principal") == {"Service": "cloudtrail.amazonaws.com"} and s["Action"] == "s3:PutObject" for s in policy["Statement"])


def test_config_recorder_records_into_its_channel_with_the_managed_rules(cloud, audit_stack):
    from rentaliq.audit_rules import MANAGED_RULES

    config = one_try_client(cloud, "config")
    (status,) = config.describe_configuration_recorder_status(ConfigurationRecorderNames=["rentaliq-prod-config-recorder"])["ConfigurationRecordersStatus"]
    assert status["recording"] is True  # started as soon as the channel existed
    (recorder,) = config.describe_configuration_recorders()["ConfigurationRecorders"]
    assert recorder["recordingGroup"]["allSupported"] is True and recorder["recordingGroup"]["includeGlobalResourceTypes"] is True
    assert recorder["roleARN"].endswith(":role/rentaliq-prod-config-role")
    (channel,) = config.describe_delivery_channels()["DeliveryChannels"]
    assert (channel["s3BucketName"], channel["s3KeyPrefix"]) == ("rentaliq-prod-trail-logs", "config")
    rules = config.describe_config_rules()["ConfigRules"]
    assert {r["Source"]["SourceIdentifier"] for r in rules} == {rule.identifier for rule in MANAGED_RULES}
    assert all(r["ConfigRuleState"] == "ACTIVE" and r["ConfigRuleName"].startswith("rentaliq-prod-") for r in rules)


def test_the_deploy_shows_up_with_the_user_who_ran_it(cloud, audit_stack, operator):
    (create,) = [e for e in _events(cloud, EventName="CreateStack") if _record(e)["requestParameters"]["stackName"] == STACK]
    record = _record(create)
    assert create["Username"] == "audit-operator" and create["EventSource"] == "cloudformation.amazonaws.com"
    assert record["userIdentity"]["type"] == "IAMUser" and record["userIdentity"]["accessKeyId"] == operator[0]
    assert {"ResourceType": "AWS::CloudFormation::Stack", "ResourceName": STACK} in create["Resources"]
    assert "templateBody" not in record["requestParameters"]  # parameters are kept by an allowlist of identifiers
    # The calls CloudFormation made for it carry the operator, invoked by CloudFormation.
    (trail,) = _events(cloud, EventName="CreateTrail")
    assert trail["Username"] == "audit-operator"
    assert _record(trail)["userIdentity"]["invokedBy"] == "cloudformation.amazonaws.com"
    assert _record(trail)["userIdentity"]["arn"] == record["userIdentity"]["arn"]
    assert trail["ReadOnly"] == "false"
    put_rules = _events(cloud, EventName="PutConfigRule")
    assert len(put_rules) >= 10 and all(e["Username"] == "audit-operator" for e in put_rules)


def test_a_create_never_adopts_a_trail_made_by_hand(cloud, audit_stack):
    trails = one_try_client(cloud, "cloudtrail")
    trails.create_trail(Name="made-by-hand", S3BucketName="rentaliq-prod-trail-logs")
    template = {
        "Resources": {
            "Trail": {
                "Type": "AWS::CloudTrail::Trail",
                "Properties": {"TrailName": "made-by-hand", "S3BucketName": "rentaliq-prod-trail-logs", "IsLogging": True},
            }
        }
    }
    cfn = one_try_client(cloud, "cloudformation")
    cfn.create_stack(StackName="adopt-attempt", TemplateBody=json.dumps(template))
    deadline = time.monotonic() + 60
    while (status := cfn.describe_stacks(StackName="adopt-attempt")["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert status == "ROLLBACK_COMPLETE"
    reasons = " ".join(e.get("ResourceStatusReason") or "" for e in cfn.describe_stack_events(StackName="adopt-attempt")["StackEvents"])
    assert "TrailAlreadyExistsException" in reasons
    assert trails.get_trail(Name="made-by-hand")["Trail"]["S3BucketName"] == "rentaliq-prod-trail-logs"  # the rollback left it alone
    assert trails.get_trail_status(Name="made-by-hand")["IsLogging"] is False  # and never started it
    trails.delete_trail(Name="made-by-hand")
    cfn.delete_stack(StackName="adopt-attempt")


def test_a_secret_read_by_an_assumed_role_names_the_session_and_never_the_value(cloud):
    iam, sts = one_try_client(cloud, "iam"), one_try_client(cloud, "sts")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="audit-app-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="web-task-1")["Credentials"]
    admin = one_try_client(cloud, "secretsmanager")
    admin.create_secret(Name="rentaliq/prod/audit/probe", SecretString=SECRET_VALUE)
    admin.put_secret_value(SecretId="rentaliq/prod/audit/probe", SecretString=json.dumps({"password": SECRET_VALUE}))
    app = _client(cloud, "secretsmanager", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert app.get_secret_value(SecretId="rentaliq/prod/audit/probe")["SecretString"]
    with pytest.raises(app.exceptions.ResourceNotFoundException):
        app.get_secret_value(SecretId="rentaliq/prod/audit/missing")

    reads = _events(cloud, EventName="GetSecretValue")
    found, failed = (
        next(e for e in reads if {"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": name} in e["Resources"])
        for name in ("rentaliq/prod/audit/probe", "rentaliq/prod/audit/missing")
    )
    identity = _record(found)["userIdentity"]
    assert found["Username"] == "web-task-1" and found["ReadOnly"] == "true"
    assert identity["type"] == "AssumedRole" and identity["arn"].endswith(":assumed-role/audit-app-role/web-task-1")
    assert identity["sessionContext"]["sessionIssuer"]["arn"] == role["Arn"]
    assert "errorCode" not in _record(found)
    # The failed attempt: same principal, CloudTrail's error fields.
    failed_record = _record(failed)
    assert failed["Username"] == "web-task-1"
    assert failed_record["errorCode"] == "ResourceNotFoundException" and "can't find" in failed_record["errorMessage"]
    # By principal: the session's events are exactly its two reads.
    assert [e["EventName"] for e in _events(cloud, Username="web-task-1")] == ["GetSecretValue", "GetSecretValue"]
    # Never the value, in any event (CreateSecret and PutSecretValue included).
    everything = json.dumps(_events(cloud), default=str)
    assert SECRET_VALUE not in everything and "SecretString" not in everything
    assert _events(cloud, EventName="PutSecretValue") and _events(cloud, EventName="CreateSecret")


def test_s3_object_calls_are_data_events_and_are_not_recorded(cloud):
    s3 = one_try_client(cloud, "s3")
    s3.create_bucket(Bucket="audit-data-events")
    s3.put_object(Bucket="audit-data-events", Key="lease.pdf", Body=b"%PDF")
    s3.get_object(Bucket="audit-data-events", Key="lease.pdf")
    named = {e["EventName"] for e in _events(cloud, ResourceName="audit-data-events")}
    assert "CreateBucket" in named
    assert not named & {"PutObject", "GetObject", "ListBucket"}


def test_lookup_events_pages_newest_first_within_a_time_range_and_refuses_bad_input(cloud):
    kms = one_try_client(cloud, "kms")
    before = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(7):
        kms.list_keys()
    trail = one_try_client(cloud, "cloudtrail")
    attribute = [{"AttributeKey": "EventName", "AttributeValue": "ListKeys"}]
    first = trail.lookup_events(LookupAttributes=attribute, MaxResults=3, StartTime=before)
    second = trail.lookup_events(LookupAttributes=attribute, MaxResults=3, StartTime=before, NextToken=first["NextToken"])
    third = trail.lookup_events(LookupAttributes=attribute, MaxResults=3, StartTime=before, NextToken=second["NextToken"])
    pages = first["Events"] + second["Events"] + third["Events"]
    assert len(pages) == 7 and "NextToken" not in third
    assert len({e["EventId"] for e in pages}) == 7
    times = [e["EventTime"] for e in pages]
    assert times == sorted(times, reverse=True)
    assert not trail.lookup_events(LookupAttributes=attribute, EndTime=before)["Events"] or all(
        e["EventTime"] <= before for e in trail.lookup_events(LookupAttributes=attribute, EndTime=before)["Events"]
    )
    two = [{"AttributeKey": "EventName", "AttributeValue": "ListKeys"}, {"AttributeKey": "ReadOnly", "AttributeValue": "true"}]
    with pytest.raises(trail.exceptions.InvalidLookupAttributesException):
        trail.lookup_events(LookupAttributes=two)
    with pytest.raises(trail.exceptions.InvalidTimeRangeException):
        trail.lookup_events(StartTime=datetime.now(UTC), EndTime=before)
    with pytest.raises(trail.exceptions.InvalidNextTokenException):
        trail.lookup_events(NextToken="bm90LWEtdG9rZW4=")


def test_events_survive_kill_9(cloud):
    one_try_client(cloud, "sns").create_topic(Name="audit-before-the-crash")
    (before,) = _events(cloud, EventName="CreateTopic")
    pid = cloud.status().pid
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid, 20)
    cloud.start(timeout=90)
    after = [e for e in _events(cloud, EventName="CreateTopic") if e["EventId"] == before["EventId"]]
    assert after == [before]
    # And the history keeps growing after the restart.
    one_try_client(cloud, "sns").create_topic(Name="audit-after-the-crash")
    assert len(_events(cloud, EventName="CreateTopic")) == 2


def _verify_audit(cloud: Any, env: str) -> list[Any]:
    from rentaliq.deploy.target import Target
    from rentaliq.environments import load_spec
    from rentaliq.ops.verify import audit as audit_area
    from rentaliq.ops.verify.checks import Recorder
    from rentaliq.ops.verify.reader import Audit, Reader

    audit = Audit(load_spec(env), Reader(Target.local(cloud.endpoint_url), Recorder()))
    audit_area.check(audit)
    return audit.record.checks


def test_verify_passes_prod_audit_trail_and_fails_a_stopped_trail(cloud, audit_stack):
    checks = _verify_audit(cloud, "prod")
    failed = [(c.name, c.expected, c.actual, c.detail) for c in checks if c.status != "pass"]
    assert not failed
    names = {c.name for c in checks}
    assert {"rentaliq-prod-trail logging", "rentaliq-prod-trail multi-region", "rentaliq-prod-trail log file validation"} <= names
    assert {"rentaliq-prod-config-recorder recording", "config rules", "rentaliq-prod-trail-logs lifecycle"} <= names
    # LAB turns the audit trail off: none of LAB's exists, and PROD's recorder is not LAB's.
    assert [c for c in _verify_audit(cloud, "lab") if c.status != "pass"] == []
    trails = one_try_client(cloud, "cloudtrail")
    trails.stop_logging(Name="rentaliq-prod-trail")
    try:
        (logging,) = [c for c in _verify_audit(cloud, "prod") if c.name == "rentaliq-prod-trail logging"]
        assert (logging.status, logging.actual) == ("fail", False)
    finally:
        trails.start_logging(Name="rentaliq-prod-trail")


def test_cloudtrail_api_refuses_what_aws_refuses(cloud, audit_stack):
    trails = one_try_client(cloud, "cloudtrail")
    with pytest.raises(trails.exceptions.TrailAlreadyExistsException):
        trails.create_trail(Name="rentaliq-prod-trail", S3BucketName="rentaliq-prod-trail-logs")
    assert trails.get_trail(Name="rentaliq-prod-trail")["Trail"]["KmsKeyId"]  # untouched by the refused create
    s3 = one_try_client(cloud, "s3")
    s3.create_bucket(Bucket="audit-no-policy")
    with pytest.raises(trails.exceptions.InsufficientS3BucketPolicyException):
        trails.create_trail(Name="no-policy-trail", S3BucketName="audit-no-policy")
    with pytest.raises(trails.exceptions.KmsKeyNotFoundException):
        trails.create_trail(Name="no-key-trail", S3BucketName="rentaliq-prod-trail-logs", KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/nope")
    other_key = one_try_client(cloud, "kms").create_key()["KeyMetadata"]["Arn"]  # the default policy grants CloudTrail nothing
    with pytest.raises(trails.exceptions.InsufficientEncryptionPolicyException):
        trails.create_trail(Name="wrong-key-trail", S3BucketName="rentaliq-prod-trail-logs", KmsKeyId=other_key)
    with pytest.raises(trails.exceptions.TrailNotFoundException):
        trails.delete_trail(Name="no-such-trail")
    assert [t["Name"] for t in trails.list_trails()["Trails"]] == ["rentaliq-prod-trail"]
    assert trails.describe_trails(trailNameList=["no-such-trail"])["trailList"] == []  # the name filter is honoured
    assert [t["Name"] for t in trails.describe_trails(trailNameList=["rentaliq-prod-trail"])["trailList"]] == ["rentaliq-prod-trail"]
    # Each refusal is in the event history with its error code.
    codes = {_record(e).get("errorCode") for e in _events(cloud, EventName="CreateTrail")}
    assert {"TrailAlreadyExistsException", "InsufficientS3BucketPolicyException", "InsufficientEncryptionPolicyException"} <= codes


def test_deleting_the_stack_removes_trail_recorder_and_rules_and_keeps_the_retained_bucket(cloud, audit_stack):
    cfn = one_try_client(cloud, "cloudformation")
    stack_id = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackId"]  # a deleted stack answers by id only
    cfn.delete_stack(StackName=STACK)
    deadline = time.monotonic() + 120
    while (status := cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status == "DELETE_COMPLETE"
    assert one_try_client(cloud, "cloudtrail").list_trails()["Trails"] == []
    config = one_try_client(cloud, "config")
    assert config.describe_configuration_recorders()["ConfigurationRecorders"] == []
    assert config.describe_delivery_channels()["DeliveryChannels"] == []
    assert config.describe_config_rules()["ConfigRules"] == []
    # PROD's logs bucket is retained (DeletionPolicy Retain): an audit record outlives the stack.
    assert "rentaliq-prod-trail-logs" in [b["Name"] for b in one_try_client(cloud, "s3").list_buckets()["Buckets"]]
    (delete,) = [e for e in _events(cloud, EventName="DeleteTrail") if "invokedBy" in _record(e)["userIdentity"]]
    assert delete["Username"] == "root" and _record(delete)["userIdentity"]["invokedBy"] == "cloudformation.amazonaws.com"


def test_a_change_set_deploy_names_its_executor_on_every_call_it_makes(cloud, operator):
    """The deploy path `rentaliq deploy` takes: CreateChangeSet, then ExecuteChangeSet by the change set's ARN."""
    cfn = _client(cloud, "cloudformation", *operator)
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "audit-change-set-topic"}}}}
    change_set = cfn.create_change_set(StackName="audit-change-set", ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=json.dumps(template))
    cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set["Id"], WaiterConfig={"Delay": 1})
    cfn.execute_change_set(ChangeSetName=change_set["Id"])
    cfn.get_waiter("stack_create_complete").wait(StackName="audit-change-set", WaiterConfig={"Delay": 1})
    (execute,) = _events(cloud, EventName="ExecuteChangeSet")
    assert execute["Username"] == "audit-operator"
    assert {"ResourceType": "AWS::CloudFormation::Stack", "ResourceName": "audit-change-set"} in execute["Resources"]
    (create_topic,) = [e for e in _events(cloud, EventName="CreateTopic") if "invokedBy" in _record(e)["userIdentity"]]
    assert create_topic["Username"] == "audit-operator"
    assert _record(create_topic)["userIdentity"]["type"] == "IAMUser"
    assert _record(create_topic)["sourceIPAddress"] == "cloudformation.amazonaws.com"


def test_a_denied_call_is_recorded_as_access_denied_with_its_principal():
    """With moto's own IAM authorization on (after the first two calls, which create the user and its key), a user
    without a policy is denied GetSecretValue; the event carries CloudTrail's AccessDenied and the user.
    (The project's IAM enforcement, issue 12 section 1, goes through the same recorder.)"""
    from botocore.exceptions import ClientError

    from tests.clouds import private_cloud

    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "2"
    try:
        started = private_cloud("audit-denied")
        enforced = started.__enter__()
    finally:
        del os.environ["INITIAL_NO_AUTH_ACTION_COUNT"]
    try:
        iam = one_try_client(enforced, "iam")
        iam.create_user(UserName="intruder")
        key = iam.create_access_key(UserName="intruder")["AccessKey"]
        secrets = _client(enforced, "secretsmanager", key["AccessKeyId"], key["SecretAccessKey"])
        with pytest.raises(ClientError) as denied:
            secrets.get_secret_value(SecretId="rentaliq/prod/db/credentials")
        (event,) = _events(enforced, EventName="GetSecretValue")
        record = _record(event)
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert event["Username"] == "intruder" and record["userIdentity"]["type"] == "IAMUser"
        assert record["errorCode"] == "AccessDenied" and "not authorized to perform: secretsmanager:GetSecretValue" in record["errorMessage"]
        assert {"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": "rentaliq/prod/db/credentials"} in event["Resources"]
    finally:
        started.__exit__(None, None, None)
