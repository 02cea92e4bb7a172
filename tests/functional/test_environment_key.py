"""Issue 12 section 4 on the local cloud: PROD deployed under its customer-managed key ``alias/rentaliq-prod``.

The key really exists (moto's KMS), each resource reports it as AWS does (the key's ARN), data written by the
runtime SDK and by a plain PutObject is stored under it and reads back, verify's KMS area passes, and a deploy
that would change the database's key is refused before anything runs.
"""

from __future__ import annotations

import json
import uuid

import pytest

from rentaliq.environments import build_spec, load_spec
from rentaliq.runtime import Files, RuntimeConfig, Secrets

pytestmark = pytest.mark.slow  # deploys PROD (Multi-AZ: two PostgreSQL servers)

SECRETS = ("db/credentials", "db/connection-string", "api/keys", "s3/config")


@pytest.fixture(scope="module")
def prod(target, outdir):
    from rentaliq.deploy.lifecycle import up

    (result,) = up(target, [load_spec("prod")], outdir)
    return result


@pytest.fixture(scope="module")
def key(prod, target) -> dict:
    return target.client("kms").describe_key(KeyId="alias/rentaliq-prod")["KeyMetadata"]


def test_the_key_is_enabled_rotating_and_administered_without_decrypt(key, target):
    kms = target.client("kms")
    assert (key["KeyManager"], key["KeyState"], key["KeySpec"]) == ("CUSTOMER", "Enabled", "SYMMETRIC_DEFAULT")
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    by_sid = {s.get("Sid"): s for s in policy["Statement"]}
    assert "kms:Decrypt" not in by_sid["AccountAdministration"]["Action"] and "kms:*" not in by_sid["AccountAdministration"]["Action"]
    assert by_sid["AppRoleThroughS3AndSecretsManager"]["Condition"]["ArnEquals"]["aws:PrincipalArn"].endswith(":role/rentaliq-prod-app-role")
    # The alerts topic's own key is not made in PROD: one key, not two.
    tagged = [k for k in kms.list_keys()["Keys"] if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"]
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"] if a.get("TargetKeyId") in {k["KeyId"] for k in tagged}}
    assert "alias/rentaliq-prod" in aliases and "alias/rentaliq-prod-alerts" not in aliases


def test_each_resource_reports_the_key_as_aws_does(key, target):
    arn = key["Arn"]
    db = target.client("rds").describe_db_instances(DBInstanceIdentifier="rentaliq-prod-db")["DBInstances"][0]
    assert (db["StorageEncrypted"], db["KmsKeyId"]) == (True, arn)
    rule = target.client("s3").get_bucket_encryption(Bucket="rentaliq-prod-files")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule == {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn}, "BucketKeyEnabled": True}
    sm = target.client("secretsmanager")
    assert {name: sm.describe_secret(SecretId=f"rentaliq/prod/{name}").get("KmsKeyId") for name in SECRETS} == dict.fromkeys(SECRETS, arn)
    topic = next(t["TopicArn"] for t in target.client("sns").list_topics()["Topics"] if t["TopicArn"].endswith(":rentaliq-prod-alerts"))
    assert target.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"] == arn
    groups = target.client("logs").describe_log_groups()["logGroups"]
    flow = [g for g in groups if "FlowLogs" in g["logGroupName"] and "rentaliq-prod" in g["logGroupName"]]
    assert [g.get("kmsKeyId") for g in flow] == [arn]


def test_an_object_uploaded_by_the_runtime_sdk_is_stored_under_the_key(key, target):
    # No encryption settings: the SDK takes the environment's key from rentaliq/prod/s3/config.
    config = RuntimeConfig(env="prod")
    secrets = Secrets(config, client=target.client("secretsmanager"))
    assert secrets.s3_config().kms_key_arn == key["Arn"]
    name, body = f"kms-test/{uuid.uuid4().hex}.txt", b"lease agreement, page 1\n" * 100
    s3 = target.client("s3")
    with Files(secrets, client=s3) as files:
        files.upload(name, body)
        assert files.read(name) == body  # through the SDK: S3 decrypts with the key
    head = s3.head_object(Bucket="rentaliq-prod-files", Key=name)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"], head["BucketKeyEnabled"]) == ("aws:kms", key["Arn"], True)
    assert s3.get_object(Bucket="rentaliq-prod-files", Key=name)["Body"].read() == body  # the data itself, read back
    # A PutObject without encryption headers gets the bucket's default: the same key.
    s3.put_object(Bucket="rentaliq-prod-files", Key=f"{name}.plain", Body=b"no headers")
    assert s3.head_object(Bucket="rentaliq-prod-files", Key=f"{name}.plain")["SSEKMSKeyId"] == key["Arn"]


def test_verify_checks_the_key_and_what_it_encrypts(prod, target):
    from rentaliq.ops.verify import FAIL, verify

    checks = verify(target, load_spec("prod"))
    kms = [c for c in checks if c.area == "KMS"]
    names = " ".join(c.name for c in kms)
    for expected in ("rotation", "policy principals", "rentaliq-prod-db storage key", "rentaliq-prod-files default key", "bucket key",
                     "rentaliq/prod/api/keys key", "rentaliq-prod-alerts key", "flow-log group key"):  # fmt: skip
        assert expected in names, expected
    failed = [f"{c.area} {c.name}: expected {c.expected!r}, got {c.actual!r} {c.detail}" for c in checks if c.status == FAIL]
    assert not [f for f in failed if f.startswith(("KMS", "S3", "Secrets", "Alerts", "Budget"))], failed


def test_a_deploy_that_would_change_the_database_key_is_refused(prod, key, target, outdir):
    from rentaliq.deploy.deployed_spec import SpecBelowDeployed
    from rentaliq.deploy.lifecycle import up

    off = build_spec("prod", {"encryption": {"customer_managed_key": False}})
    with pytest.raises(SpecBelowDeployed, match=r"encryption\.customer_managed_key=false .* new, empty database"):
        up(target, [off], outdir)
    db = target.client("rds").describe_db_instances(DBInstanceIdentifier="rentaliq-prod-db")["DBInstances"][0]
    assert db["KmsKeyId"] == key["Arn"]  # nothing ran
    assert target.client("kms").describe_key(KeyId="alias/rentaliq-prod")["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.fixture(scope="module")
def lab_cloud():
    """LAB with the key on must not meet the session's LAB (key off): a deploy would rightly refuse to switch."""
    from tests.clouds import private_cloud

    with private_cloud("cmk") as cloud:
        yield cloud


def test_lab_with_the_key_on_and_an_endpoint_without_private_dns_deploys_and_verifies(lab_cloud, tmp_path):
    from rentaliq.deploy.lifecycle import up
    from rentaliq.deploy.target import Target
    from rentaliq.ops.verify import FAIL, verify

    target = Target.local(lab_cloud.endpoint_url, state_dir=lab_cloud.state_dir)
    spec = build_spec(
        "lab", {"encryption": {"customer_managed_key": True}, "network": {"secrets_manager_endpoint": True, "secrets_manager_private_dns": False}}
    )
    up(target, [spec], tmp_path)
    checks = {c.name: c for c in verify(target, spec)}
    assert [f"{c.area} {c.name}: {c.actual!r}" for c in checks.values() if c.status == FAIL] == []
    assert checks["rentaliq-lab-vpc Secrets Manager endpoint private DNS"].actual is False
    assert checks["rentaliq-lab-endpoints-sg ingress"].status != FAIL
    assert checks["alias/rentaliq-lab rotation"].actual is True
    arn = target.client("kms").describe_key(KeyId="alias/rentaliq-lab")["KeyMetadata"]["Arn"]
    assert target.client("rds").describe_db_instances(DBInstanceIdentifier="rentaliq-lab-db")["DBInstances"][0]["KmsKeyId"] == arn


def test_the_key_and_what_it_encrypts_survive_kill_9(lab_cloud):
    """The state the key checks read (key, alias, rotation, each resource's key id, an object's key) is stored data."""
    import os
    import signal
    import time

    from rentaliq.deploy.target import Target
    from rentaliq.ops.verify import FAIL, verify

    target = Target.local(lab_cloud.endpoint_url, state_dir=lab_cloud.state_dir)
    s3, body = target.client("s3"), b"signed lease\n" * 50
    s3.put_object(Bucket="rentaliq-lab-files", Key="kill9/lease.txt", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/rentaliq-lab")
    arn = target.client("kms").describe_key(KeyId="alias/rentaliq-lab")["KeyMetadata"]["Arn"]
    pid = lab_cloud.status().pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    lab_cloud.start(timeout=90)

    target = Target.local(lab_cloud.endpoint_url, state_dir=lab_cloud.state_dir)
    kms = target.client("kms")
    metadata = kms.describe_key(KeyId="alias/rentaliq-lab")["KeyMetadata"]
    assert (metadata["Arn"], metadata["KeyState"]) == (arn, "Enabled")
    assert kms.get_key_rotation_status(KeyId=metadata["KeyId"])["KeyRotationEnabled"] is True
    head = target.client("s3").head_object(Bucket="rentaliq-lab-files", Key="kill9/lease.txt")
    assert head["SSEKMSKeyId"] == arn
    assert target.client("s3").get_object(Bucket="rentaliq-lab-files", Key="kill9/lease.txt")["Body"].read() == body
    assert target.client("rds").describe_db_instances(DBInstanceIdentifier="rentaliq-lab-db")["DBInstances"][0]["KmsKeyId"] == arn
    assert target.client("secretsmanager").describe_secret(SecretId="rentaliq/lab/api/keys")["KmsKeyId"] == arn
    spec = build_spec(
        "lab", {"encryption": {"customer_managed_key": True}, "network": {"secrets_manager_endpoint": True, "secrets_manager_private_dns": False}}
    )
    assert [f"{c.name}: {c.actual!r}" for c in verify(target, spec) if c.area == "KMS" and c.status == FAIL] == []


def test_verify_fails_a_key_opened_to_everyone_or_without_rotation(lab_cloud):
    from rentaliq.deploy.target import Target
    from rentaliq.ops.verify import FAIL, verify

    target = Target.local(lab_cloud.endpoint_url, state_dir=lab_cloud.state_dir)
    kms = target.client("kms")
    key_id = kms.describe_key(KeyId="alias/rentaliq-lab")["KeyMetadata"]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    opened = {**policy, "Statement": [*policy["Statement"], {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(opened))
    kms.disable_key_rotation(KeyId=key_id)
    spec = build_spec(
        "lab", {"encryption": {"customer_managed_key": True}, "network": {"secrets_manager_endpoint": True, "secrets_manager_private_dns": False}}
    )
    try:
        failed = {c.name: c.actual for c in verify(target, spec) if c.area == "KMS" and c.status == FAIL}
    finally:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
        kms.enable_key_rotation(KeyId=key_id)
    assert failed["alias/rentaliq-lab policy has no wildcard principal"] == ["Everyone"]
    assert failed["alias/rentaliq-lab policy principals"]["Everyone"] == ["*"]
    assert failed["alias/rentaliq-lab rotation"] is False
    assert len(failed) == 3


def test_turning_the_key_on_for_a_deployed_database_is_refused(lab_cloud, tmp_path):
    """QA deployed with AWS-managed keys: its instance reports aws/rds (KeyManager AWS, as on AWS); the key stays off."""
    from rentaliq.deploy.deployed_spec import SpecBelowDeployed
    from rentaliq.deploy.lifecycle import up
    from rentaliq.deploy.target import Target

    target = Target.local(lab_cloud.endpoint_url, state_dir=lab_cloud.state_dir)
    up(target, [load_spec("qa")], tmp_path)
    db = target.client("rds").describe_db_instances(DBInstanceIdentifier="rentaliq-qa-db")["DBInstances"][0]
    managed = target.client("kms").describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
    assert (db["StorageEncrypted"], db["KmsKeyId"], managed["KeyManager"]) == (True, managed["Arn"], "AWS")
    with pytest.raises(SpecBelowDeployed, match=r"customer_managed_key=true but the deployed database is encrypted with the AWS-managed key"):
        up(target, [build_spec("qa", {"encryption": {"customer_managed_key": True}})], tmp_path)
    aliases = {a["AliasName"] for a in target.client("kms").list_aliases()["Aliases"]}
    assert "alias/rentaliq-qa" not in aliases  # nothing ran
    db = target.client("rds").describe_db_instances(DBInstanceIdentifier="rentaliq-qa-db")["DBInstances"][0]
    assert db["KmsKeyId"] == managed["Arn"]
