"""The audit trail on the synthesized templates: PROD has a multi-region, validated, KMS-encrypted trail into a bucket
only CloudTrail and Config (of this account, this trail) may write to, and a Config recorder with its rules;
LAB and QA have none of it. Plus the ``[audit]`` spec section's rules."""

from __future__ import annotations

import pytest

from rentaliq.audit_rules import MANAGED_RULES, managed_rules
from rentaliq.environments import load_spec
from rentaliq.spec.errors import SpecError
from tests.unit.templates import of_type, one, ref, tags

AUDIT_TYPES = ("AWS::CloudTrail::Trail", "AWS::Config::ConfigurationRecorder", "AWS::Config::DeliveryChannel", "AWS::Config::ConfigRule")


def _statements(template: dict, bucket_id: str) -> dict[str, dict]:
    _, policy = one(template, "AWS::S3::BucketPolicy", Bucket=ref(bucket_id))
    return {s.get("Sid", ""): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_prod_trail_is_multi_region_validated_encrypted_and_logging(synthesized):
    template = synthesized["prod"]
    trail_id, trail = one(template, "AWS::CloudTrail::Trail", TrailName="rentaliq-prod-trail")
    props = trail["Properties"]
    assert props["IsLogging"] is True
    assert props["IsMultiRegionTrail"] is True
    assert props["IncludeGlobalServiceEvents"] is True
    assert props["EnableLogFileValidation"] is True
    bucket_id, bucket = one(template, "AWS::S3::Bucket", BucketName="rentaliq-prod-trail-logs")
    assert props["S3BucketName"] == ref(bucket_id)
    key_id = props["KMSKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    # CloudTrail checks the bucket policy when the trail is created: the trail must come after it.
    policy_id, _ = one(template, "AWS::S3::BucketPolicy", Bucket=ref(bucket_id))
    assert policy_id in trail.get("DependsOn", [])
    assert tags(trail)["Environment"] == "prod" and tags(trail)["Project"] == "RentalIQ"


def test_trail_logs_bucket_is_kms_encrypted_private_tls_only_with_lifecycle(synthesized):
    template = synthesized["prod"]
    bucket_id, bucket = one(template, "AWS::S3::Bucket", BucketName="rentaliq-prod-trail-logs")
    props = bucket["Properties"]
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert encryption["BucketKeyEnabled"] is True
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    spec = load_spec("prod").audit
    rule = next(r for r in props["LifecycleConfiguration"]["Rules"] if r["Id"] == "age-out-logs")
    assert rule["ExpirationInDays"] == spec.trail_logs_expire_after_days
    assert [(t["StorageClass"], t["TransitionInDays"]) for t in rule["Transitions"]] == [
        ("STANDARD_IA", spec.trail_logs_ia_after_days),
        ("GLACIER", spec.trail_logs_glacier_after_days),
    ]
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "rentaliq-prod-trail-logs/"  # PROD's access-logs bucket
    statements = _statements(template, bucket_id)
    deny = next(s for s in statements.values() if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    trail_arn = {"Fn::Join": ["", ["arn:aws:cloudtrail:us-east-1:", {"Ref": "AWS::AccountId"}, ":trail/rentaliq-prod-trail"]]}
    write = statements["CloudTrailWrite"]
    assert write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert write["Action"] == "s3:PutObject"
    assert write["Condition"]["StringEquals"] == {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}
    assert statements["CloudTrailAclCheck"]["Condition"]["StringEquals"] == {"aws:SourceArn": trail_arn}
    assert statements["ConfigWrite"]["Principal"] == {"Service": "config.amazonaws.com"}
    assert statements["ConfigWrite"]["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_audit_key_lets_cloudtrail_encrypt_only_for_this_trail(synthesized):
    template = synthesized["prod"]
    _, trail = one(template, "AWS::CloudTrail::Trail", TrailName="rentaliq-prod-trail")
    key = template["Resources"][trail["Properties"]["KMSKeyId"]["Fn::GetAtt"][0]]
    statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    encrypt = statements["CloudTrailEncryptLogs"]
    assert encrypt["Action"] == "kms:GenerateDataKey*"
    assert "aws:SourceArn" in encrypt["Condition"]["StringEquals"]
    assert "kms:EncryptionContext:aws:cloudtrail:arn" in encrypt["Condition"]["StringLike"]
    _, alias = one(template, "AWS::KMS::Alias", AliasName="alias/rentaliq-prod-audit")


def test_prod_config_recorder_channel_and_rules(synthesized):
    template = synthesized["prod"]
    recorder_id, recorder = one(template, "AWS::Config::ConfigurationRecorder", Name="rentaliq-prod-config-recorder")
    assert recorder["Properties"]["RecordingGroup"] == {"AllSupported": True, "IncludeGlobalResourceTypes": True}
    role_id = recorder["Properties"]["RoleARN"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    assert role["RoleName"] == "rentaliq-prod-config-role"
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "config.amazonaws.com"}
    assert "service-role/AWS_ConfigRole" in str(role["ManagedPolicyArns"])
    _, channel = one(template, "AWS::Config::DeliveryChannel", Name="rentaliq-prod-config-channel")
    bucket_id, _ = one(template, "AWS::S3::Bucket", BucketName="rentaliq-prod-trail-logs")
    assert channel["Properties"]["S3BucketName"] == ref(bucket_id)
    assert channel["Properties"]["S3KeyPrefix"] == "config"
    assert recorder_id in channel["DependsOn"]  # Config refuses a channel without a recorder
    rules = of_type(template, "AWS::Config::ConfigRule")
    identifiers = {r["Properties"]["Source"]["SourceIdentifier"] for r in rules.values()}
    assert identifiers == {rule.identifier for rule in MANAGED_RULES}
    assert {"RDS_STORAGE_ENCRYPTED", "S3_BUCKET_SSL_REQUESTS_ONLY", "VPC_FLOW_LOGS_ENABLED", "CLOUD_TRAIL_ENABLED"} <= identifiers
    for rule in rules.values():
        assert rule["Properties"]["Source"]["Owner"] == "AWS"
        assert recorder_id in rule["DependsOn"]
        assert rule["Properties"]["ConfigRuleName"].startswith("rentaliq-prod-")


@pytest.mark.parametrize("env", ["lab", "qa"])
def test_lab_and_qa_have_no_audit_resources(synthesized, env):
    template = synthesized[env]
    for resource_type in AUDIT_TYPES:
        assert not of_type(template, resource_type), resource_type
    assert not [b for b in of_type(template, "AWS::S3::Bucket").values() if "trail" in str(b["Properties"].get("BucketName"))]


def test_spec_defaults_audit_on_in_prod_only():
    assert load_spec("prod").audit.cloudtrail and load_spec("prod").audit.config
    for env in ("lab", "qa"):
        assert not load_spec(env).audit.cloudtrail and not load_spec(env).audit.config


def test_config_without_trail_leaves_out_the_trail_rules():
    assert not [r for r in managed_rules(trail=False) if r.identifier.startswith("CLOUD_TRAIL")]
    assert len(managed_rules(trail=True)) == len(MANAGED_RULES)


def test_spec_refuses_trail_log_transitions_out_of_order(tmp_path):
    (tmp_path / "prod.toml").write_text("[audit]\ntrail_logs_glacier_after_days = 30\ntrail_logs_expire_after_days = 10\n")
    with pytest.raises(SpecError) as raised:
        load_spec("prod", directory=tmp_path)
    message = str(raised.value)
    assert "audit.trail_logs_glacier_after_days" in message and "more than audit.trail_logs_ia_after_days (30)" in message
    assert "audit.trail_logs_expire_after_days" in message


def test_spec_refuses_a_non_boolean_audit_flag(tmp_path):
    (tmp_path / "lab.toml").write_text('[audit]\ncloudtrail = "yes"\n')
    with pytest.raises(SpecError) as raised:
        load_spec("lab", directory=tmp_path)
    assert "audit.cloudtrail" in str(raised.value)
