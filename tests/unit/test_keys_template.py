"""Issue 12 section 4 on the synthesized templates: the environment's customer-managed key and what it encrypts.

PROD (key on by default) and LAB/QA (off: AWS-managed keys, the alerts topic keeps its own key) come from the
session's synthesis; a LAB with the key on and a QA endpoint without private DNS get one synthesis of their own,
nag packs on (an unacknowledged finding fails the synthesis).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rentaliq.environments import build_spec
from rentaliq.infra.keys import ADMIN_ACTIONS
from rentaliq.spec import DeployedValues, compare_with_deployed, load_spec
from tests.unit.templates import of_type, one

ALERTS_KEY = "AlertsKey9E1197AF"  # LAB and QA's alerts key: pinned, so turning nothing on never replaces it


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[str, dict]:
    from rentaliq.infra.app import synthesize

    specs = [
        build_spec("lab", {"encryption": {"customer_managed_key": True}}),
        build_spec("qa", {"network": {"secrets_manager_endpoint": True, "secrets_manager_private_dns": False}}),
    ]
    outdir = tmp_path_factory.mktemp("cdk.out")
    return {r.spec.name.value: json.loads(Path(r.template_path).read_text()) for r in synthesize(specs, outdir)}


def _env_key(template: dict, env: str) -> tuple[str, dict]:
    (_, alias) = one(template, "AWS::KMS::Alias", AliasName=f"alias/rentaliq-{env}")
    key_id = alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
    return key_id, template["Resources"][key_id]


def _key_arn(key_id: str) -> dict:
    return {"Fn::GetAtt": [key_id, "Arn"]}


@pytest.mark.parametrize("env", ["prod", "lab-on"])
def test_the_environment_key_rotates_and_its_policy_grants_use_only_through_the_environment(synthesized, variants, env):
    template, name = (synthesized["prod"], "prod") if env == "prod" else (variants["lab"], "lab")
    aliases = sorted(a["Properties"]["AliasName"] for a in of_type(template, "AWS::KMS::Alias").values())
    # The alerts key is not made beside it (PROD's audit trail has a key of its own, for its log files).
    assert aliases == ([f"alias/rentaliq-{name}", "alias/rentaliq-prod-audit"] if name == "prod" else [f"alias/rentaliq-{name}"])
    key_id, key = _env_key(template, name)
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True and props["PendingWindowInDays"] == 30
    assert key["DeletionPolicy"] == ("Retain" if name == "prod" else "Delete")
    statements = {s["Sid"]: s for s in props["KeyPolicy"]["Statement"]}
    assert all(s["Effect"] == "Allow" and s["Principal"] != "*" for s in statements.values())
    # The root administers; every cryptographic use it has is conditioned on a service of this region.
    assert set(statements["AccountAdministration"]["Action"]) == set(ADMIN_ACTIONS)
    assert not {"kms:*", "kms:Decrypt", "kms:Encrypt"} & set(statements["AccountAdministration"]["Action"])
    via = statements["UseThroughEnvironmentServices"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert [v.split(".")[0] for v in via] == ["rds", "s3", "secretsmanager", "sns"]
    app = statements["AppRoleThroughS3AndSecretsManager"]
    assert app["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert f":role/rentaliq-{name}-app-role" in json.dumps(app["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    assert [v.split(".")[0] for v in app["Condition"]["StringEquals"]["kms:ViaService"]] == ["s3", "secretsmanager"]
    logs = statements["CloudWatchLogsEncryptLogGroups"]
    assert "logs." in json.dumps(logs["Principal"]["Service"]) and "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]
    assert statements["CloudWatchAlarmsPublishToTopic"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["BudgetsUseKey"]["Principal"] == {"Service": "budgets.amazonaws.com"}  # the budget's own statement lands here


@pytest.mark.parametrize("env", ["prod", "lab-on"])
def test_the_key_encrypts_the_database_bucket_secrets_topic_and_flow_logs(synthesized, variants, env):
    template, name = (synthesized["prod"], "prod") if env == "prod" else (variants["lab"], "lab")
    key_id, _ = _env_key(template, name)
    arn = _key_arn(key_id)
    (_, db) = one(template, "AWS::RDS::DBInstance")
    assert db["Properties"]["StorageEncrypted"] is True and db["Properties"]["KmsKeyId"] == arn
    buckets = {r["Properties"]["BucketName"]: r for r in of_type(template, "AWS::S3::Bucket").values()}
    files = next(b for name, b in buckets.items() if str(name).endswith("-files"))
    (rule,) = files["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn}, "BucketKeyEnabled": True}
    secrets = of_type(template, "AWS::SecretsManager::Secret")
    assert len(secrets) == 4 and all(s["Properties"]["KmsKeyId"] == arn for s in secrets.values())
    (_, topic) = one(template, "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == arn
    (_, group) = one(template, "AWS::Logs::LogGroup")
    assert group["Properties"]["KmsKeyId"] == arn


def test_prod_access_logs_bucket_stays_sse_s3(synthesized):
    """S3 server access logging delivers only to SSE-S3 buckets."""
    buckets = {r["Properties"]["BucketName"]: r for r in of_type(synthesized["prod"], "AWS::S3::Bucket").values()}
    (rule,) = buckets["rentaliq-access-logs"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize("env", ["lab", "qa"])
def test_off_keeps_aws_managed_keys_and_the_alerts_key(synthesized, env):
    template = synthesized[env]
    assert list(of_type(template, "AWS::KMS::Key")) == [ALERTS_KEY]
    (_, alias) = one(template, "AWS::KMS::Alias")
    assert alias["Properties"]["AliasName"] == f"alias/rentaliq-{env}-alerts"
    (_, db) = one(template, "AWS::RDS::DBInstance")
    assert db["Properties"]["StorageEncrypted"] is True and "KmsKeyId" not in db["Properties"]
    assert all("KmsKeyId" not in s["Properties"] for s in of_type(template, "AWS::SecretsManager::Secret").values())
    (_, group) = one(template, "AWS::Logs::LogGroup")
    assert "KmsKeyId" not in group["Properties"]
    (_, topic) = one(template, "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == _key_arn(ALERTS_KEY)


def test_the_database_keeps_its_logical_id_with_the_key_on(synthesized, variants):
    """Turning the key on changes KmsKeyId (a replacement, refused on a live instance), never the construct's id."""
    assert list(of_type(variants["lab"], "AWS::RDS::DBInstance")) == list(of_type(synthesized["lab"], "AWS::RDS::DBInstance"))


def test_endpoint_private_dns_is_the_spec_option(variants):
    (_, endpoint) = one(variants["qa"], "AWS::EC2::VPCEndpoint", VpcEndpointType="Interface")
    assert endpoint["Properties"]["PrivateDnsEnabled"] is False
    (sg_id, sg) = one(variants["qa"], "AWS::EC2::SecurityGroup", GroupName="rentaliq-qa-endpoints-sg")
    ingress = [
        r for r in of_type(variants["qa"], "AWS::EC2::SecurityGroupIngress").values() if r["Properties"]["GroupId"] == {"Fn::GetAtt": [sg_id, "GroupId"]}
    ]
    ingress += [{"Properties": r} for r in sg["Properties"].get("SecurityGroupIngress", [])]
    assert [(r["Properties"]["FromPort"], r["Properties"]["ToPort"]) for r in ingress] == [(443, 443)]
    assert "SourceSecurityGroupId" in ingress[0]["Properties"] and "CidrIp" not in ingress[0]["Properties"]


def test_prod_turns_the_key_on_and_lab_qa_leave_it_off():
    assert [load_spec(env).encryption.customer_managed_key for env in ("lab", "qa", "prod")] == [False, False, True]


@pytest.mark.parametrize(
    ("wanted", "live", "refused"), [(True, False, True), (False, True, True), (True, True, False), (False, False, False), (True, None, False)]
)
def test_a_key_change_on_a_deployed_database_is_refused(wanted, live, refused):
    spec = build_spec("lab", {"encryption": {"customer_managed_key": wanted}})
    deployed = DeployedValues(storage_key_customer_managed=live, storage_key_id="arn:aws:kms:us-east-1:123456789012:key/aws-rds")
    errors = [f for f in compare_with_deployed(spec, deployed) if f.is_error]
    assert bool(errors) is refused
    if refused:
        (error,) = errors
        assert error.field == "encryption.customer_managed_key"
        assert "replace it with a new, empty database" in error and f"customer_managed_key={str(live).lower()}" in error
