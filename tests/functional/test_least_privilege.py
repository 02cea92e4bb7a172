"""Issue 12 §1: least privilege, proven on a private enforcing local cloud (``RENTALIQ_LOCAL_ENFORCE_IAM=1``) with
LAB, QA and PROD deployed. Every call here is signed by a real identity (the root deploy identity, an assumed app role
session, or an IAM user) and authorized by the local cloud's IAM enforcement, never stubbed."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rentaliq.deploy.changesets import DeployError
from rentaliq.deploy.target import Target
from rentaliq.environments import load_spec
from rentaliq.runtime import RuntimeConfig, Secrets
from rentaliq.runtime.errors import SecretAccessDenied
from tests.ports import free_port

pytestmark = pytest.mark.slow
ACCOUNT, REGION = "123456789012", "us-east-1"
SECRETS = ("db/credentials", "db/connection-string", "api/keys", "s3/config")


class Enforcing:
    def __init__(self, cloud, info: dict) -> None:
        self.cloud = cloud
        self.https = f"https://127.0.0.1:{info['https_port']}"
        self.cert = info["https_ca_bundle"]  # the local CA: the same bundle PostgreSQL clients trust

    def client(self, service: str, creds: dict | None = None, *, tls: bool = True):
        creds = creds or {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.https if tls else self.cloud.endpoint_url,
            verify=self.cert if tls else None,
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
            **creds,
        )

    def assume(self, env: str, session: str = "app") -> dict:
        creds = self.client("sts").assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/rentaliq-{env}-app-role", RoleSessionName=session)["Credentials"]
        return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"], "aws_session_token": creds["SessionToken"]}


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory):
    from rentaliq.deploy.lifecycle import up
    from rentaliq.local.cloud import LocalCloud

    # /tmp, traversable by the postgres user that runs the servers when the tests run as root (as conftest.py does).
    home = Path(tempfile.mkdtemp(prefix="rentaliq-iam-", dir="/tmp"))
    os.chmod(home, 0o755)
    os.environ["RENTALIQ_LOCAL_ENFORCE_IAM"] = "1"
    try:
        cloud = LocalCloud(state_dir=home / "state", port=free_port())
        cloud.start()
    finally:
        del os.environ["RENTALIQ_LOCAL_ENFORCE_IAM"]
    try:
        info = json.loads((home / "state" / "server.json").read_text())
        assert info["enforce_iam"] is True
        try:
            up(Target.local(cloud.endpoint_url), [load_spec(e) for e in ("lab", "qa", "prod")], tmp_path_factory.mktemp("cdk.out"))
        except DeployError as error:
            pytest.fail(f"{error}: {[(e.logical_id, e.reason) for e in error.events]}")
        yield Enforcing(cloud, info)
    finally:
        cloud.stop()
        shutil.rmtree(home, ignore_errors=True)


def _denied(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    assert info.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"), info.value.response
    return info.value


def test_lab_role_reads_its_secrets_and_its_bucket(enforcing):
    creds = enforcing.assume("lab")
    assert enforcing.client("sts", creds).get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/rentaliq-lab-app-role/app"
    sm = enforcing.client("secretsmanager", creds)
    values = {name: json.loads(sm.get_secret_value(SecretId=f"rentaliq/lab/{name}")["SecretString"]) for name in SECRETS}
    assert values["s3/config"]["bucket_name"] == "rentaliq-lab-files" and values["db/credentials"]["username"] == "rentaliq_admin"
    s3 = enforcing.client("s3", creds)
    put = s3.put_object(Bucket="rentaliq-lab-files", Key="leases/a.txt", Body=b"lease", ServerSideEncryption="AES256")
    got = s3.get_object(Bucket="rentaliq-lab-files", Key="leases/a.txt")
    assert got["Body"].read() == b"lease" and got["ServerSideEncryption"] == "AES256"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="rentaliq-lab-files")["Contents"]] == ["leases/a.txt"]
    if "VersionId" in put and put["VersionId"] != "null":
        s3.delete_object(Bucket="rentaliq-lab-files", Key="leases/a.txt", VersionId=put["VersionId"])
    else:
        s3.delete_object(Bucket="rentaliq-lab-files", Key="leases/a.txt")


def test_lab_role_is_denied_qas_and_prods_secrets_and_buckets_with_awss_message(enforcing):
    creds = enforcing.assume("lab")
    sm, s3 = enforcing.client("secretsmanager", creds), enforcing.client("s3", creds)
    prod_arn = enforcing.client("secretsmanager").describe_secret(SecretId="rentaliq/prod/db/credentials")["ARN"]
    error = _denied(sm.get_secret_value, SecretId="rentaliq/prod/db/credentials")
    assert error.response["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/rentaliq-lab-app-role/app is not authorized to perform: secretsmanager:GetSecretValue "
        f"on resource: {prod_arn} because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )
    for env in ("qa", "prod"):
        for name in SECRETS:
            _denied(sm.get_secret_value, SecretId=f"rentaliq/{env}/{name}")
            _denied(sm.describe_secret, SecretId=f"rentaliq/{env}/{name}")
        bucket = f"rentaliq-{env}-files"
        enforcing.client("s3").put_object(Bucket=bucket, Key="p.txt", Body=b"data", ServerSideEncryption="AES256")
        error = _denied(s3.get_object, Bucket=bucket, Key="p.txt")
        assert f'perform: s3:GetObject on resource: "arn:aws:s3:::{bucket}/p.txt" because no identity-based policy' in error.response["Error"]["Message"]
        _denied(s3.put_object, Bucket=bucket, Key="x.txt", Body=b"x", ServerSideEncryption="AES256")
        _denied(s3.list_objects_v2, Bucket=bucket)
        _denied(s3.delete_object, Bucket=bucket, Key="p.txt")
    _denied(sm.list_secrets)
    # Nothing else either: not even the buckets' list, or another service.
    _denied(s3.list_buckets)
    _denied(enforcing.client("rds", creds).describe_db_instances)


def test_prod_role_cannot_read_labs(enforcing):
    creds = enforcing.assume("prod", "prod-app")
    sm, s3 = enforcing.client("secretsmanager", creds), enforcing.client("s3", creds)
    assert json.loads(sm.get_secret_value(SecretId="rentaliq/prod/s3/config")["SecretString"])["bucket_name"] == "rentaliq-prod-files"
    for name in SECRETS:
        _denied(sm.get_secret_value, SecretId=f"rentaliq/lab/{name}")
    _denied(s3.list_objects_v2, Bucket="rentaliq-lab-files")
    _denied(s3.put_object, Bucket="rentaliq-lab-files", Key="y.txt", Body=b"y", ServerSideEncryption="AES256")


def test_a_principal_without_the_policy_is_denied_everything_and_explicit_deny_wins(enforcing):
    iam = enforcing.client("iam")
    name = f"nobody-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    sm, s3 = enforcing.client("secretsmanager", creds), enforcing.client("s3", creds)
    for env in ("lab", "prod"):
        error = _denied(sm.get_secret_value, SecretId=f"rentaliq/{env}/api/keys")
        assert error.response["Error"]["Message"].startswith(f"User: arn:aws:iam::{ACCOUNT}:user/{name} is not authorized")
        _denied(s3.get_object, Bucket=f"rentaliq-{env}-files", Key="p.txt")
        _denied(s3.list_objects_v2, Bucket=f"rentaliq-{env}-files")
        _denied(enforcing.client("sts", creds).assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/rentaliq-{env}-app-role", RoleSessionName="nobody")
    # Given the read-secrets policy, the user reads LAB's secrets; an explicit deny beside it still wins.
    iam.attach_user_policy(UserName=name, PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/rentaliq-lab-read-secrets-policy")
    assert sm.get_secret_value(SecretId="rentaliq/lab/api/keys")["Name"] == "rentaliq/lab/api/keys"
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:*:*:secret:rentaliq/lab/api/*"}],
    }
    iam.put_user_policy(UserName=name, PolicyName="deny-api-keys", PolicyDocument=json.dumps(deny))
    error = _denied(sm.get_secret_value, SecretId="rentaliq/lab/api/keys")
    assert error.response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")
    assert sm.get_secret_value(SecretId="rentaliq/lab/s3/config")["Name"] == "rentaliq/lab/s3/config"


def test_bucket_policy_denies_plain_http_and_unencrypted_puts(enforcing):
    creds = enforcing.assume("lab")
    plain = enforcing.client("s3", creds, tls=False)
    error = _denied(plain.put_object, Bucket="rentaliq-lab-files", Key="plain.txt", Body=b"x", ServerSideEncryption="AES256")
    assert error.response["Error"]["Message"].endswith("with an explicit deny in a resource-based policy")
    _denied(plain.get_object, Bucket="rentaliq-lab-files", Key="plain.txt")
    # The TLS-only statement names every principal: the account's root user is refused on plain HTTP too.
    _denied(enforcing.client("s3", tls=False).list_objects_v2, Bucket="rentaliq-lab-files")
    tls = enforcing.client("s3", creds)
    error = _denied(tls.put_object, Bucket="rentaliq-lab-files", Key="clear.txt", Body=b"x")
    assert (
        'perform: s3:PutObject on resource: "arn:aws:s3:::rentaliq-lab-files/clear.txt" with an explicit deny in a resource-based policy'
        in error.response["Error"]["Message"]
    )
    names = [o["Key"] for o in enforcing.client("s3").list_objects_v2(Bucket="rentaliq-lab-files").get("Contents", [])]
    assert "plain.txt" not in names and "clear.txt" not in names  # nothing was stored by a denied put


def test_reading_data_under_a_customer_managed_key_needs_kms_decrypt(enforcing):
    root_kms, root_sm = enforcing.client("kms"), enforcing.client("secretsmanager")
    key_arn = root_kms.create_key(Description="iam enforcement test key")["KeyMetadata"]["Arn"]
    root_sm.create_secret(Name="rentaliq/lab/cmk-test", SecretString='{"token":"s3cr3t-cmk-value"}', KmsKeyId=key_arn)
    enforcing.client("s3").put_object(Bucket="rentaliq-lab-files", Key="cmk.txt", Body=b"cmk", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    creds = enforcing.assume("lab")
    error = _denied(enforcing.client("secretsmanager", creds).get_secret_value, SecretId="rentaliq/lab/cmk-test")
    assert f"perform: kms:Decrypt on resource: {key_arn} because no identity-based policy allows the kms:Decrypt action" in error.response["Error"]["Message"]
    assert "s3cr3t" not in str(error)
    error = _denied(enforcing.client("s3", creds).get_object, Bucket="rentaliq-lab-files", Key="cmk.txt")
    assert "kms:Decrypt" in error.response["Error"]["Message"]
    # An identity allowed kms:Decrypt on that key (the key policy delegates to the account) reads both.
    iam = enforcing.client("iam")
    iam.create_user(UserName="cmk-reader")
    key = iam.create_access_key(UserName="cmk-reader")["AccessKey"]
    iam.attach_user_policy(UserName="cmk-reader", PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/rentaliq-lab-read-secrets-policy")
    iam.attach_user_policy(UserName="cmk-reader", PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/rentaliq-lab-files-access-policy")
    decrypt = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn}]}
    iam.put_user_policy(UserName="cmk-reader", PolicyName="decrypt", PolicyDocument=json.dumps(decrypt))
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    assert json.loads(enforcing.client("secretsmanager", creds).get_secret_value(SecretId="rentaliq/lab/cmk-test")["SecretString"])["token"]
    assert enforcing.client("s3", creds).get_object(Bucket="rentaliq-lab-files", Key="cmk.txt")["Body"].read() == b"cmk"


def test_runtime_sdk_turns_a_denial_into_its_clear_error(enforcing):
    """Replaces the old Stubber-based access-denied test of test_runtime_secrets.py with a real denial."""
    client = enforcing.client("secretsmanager", enforcing.assume("lab"))
    assert Secrets(RuntimeConfig(env="lab"), client=client).get("s3/config")["bucket_name"] == "rentaliq-lab-files"
    with pytest.raises(SecretAccessDenied) as info:
        Secrets(RuntimeConfig(env="prod"), client=client).get("db/credentials")
    message = str(info.value)
    assert "rentaliq/prod/db/credentials" in message and "secretsmanager:GetSecretValue" in message and "rentaliq-prod-read-secrets-policy" in message
    password = json.loads(enforcing.client("secretsmanager").get_secret_value(SecretId="rentaliq/prod/db/credentials")["SecretString"])["password"]
    assert password not in message and info.value.__cause__ is None


def test_verify_checks_the_app_role_and_fails_on_an_extra_permission(enforcing, monkeypatch):
    """verify runs as the deploy identity over TLS (plain HTTP to the files bucket is refused, as on AWS)."""
    from rentaliq.ops.verify import verify

    monkeypatch.setenv("AWS_CA_BUNDLE", enforcing.cert)
    target, spec = Target.local(enforcing.https), load_spec("lab")
    iam_checks = [c for c in verify(target, spec) if c.area == "IAM"]
    names = {c.name: c for c in iam_checks}
    assert {c.name for c in iam_checks if c.status != "pass"} == set()
    assert names["rentaliq-lab-app-role trusted by"].actual == ["ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]
    assert names["rentaliq-lab-app-role managed policies"].actual == [
        f"arn:aws:iam::{ACCOUNT}:policy/rentaliq-lab-files-access-policy",
        f"arn:aws:iam::{ACCOUNT}:policy/rentaliq-lab-read-secrets-policy",
    ]
    iam = enforcing.client("iam")
    extra = f"arn:aws:iam::{ACCOUNT}:policy/rentaliq-prod-read-secrets-policy"
    iam.attach_role_policy(RoleName="rentaliq-lab-app-role", PolicyArn=extra)
    iam.put_role_policy(
        RoleName="rentaliq-lab-app-role",
        PolicyName="extra",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}),
    )
    try:
        failed = {c.name for c in verify(target, spec) if c.area == "IAM" and c.status == "fail"}
    finally:
        iam.detach_role_policy(RoleName="rentaliq-lab-app-role", PolicyArn=extra)
        iam.delete_role_policy(RoleName="rentaliq-lab-app-role", PolicyName="extra")
    assert failed == {"rentaliq-lab-app-role managed policies", "rentaliq-lab-app-role inline policies"}


def test_a_known_key_with_the_wrong_secret_is_refused(enforcing):
    """Holding an access key id is not enough: the signature is checked against the key's secret (users, sessions)."""
    session = enforcing.assume("lab")
    forged = {**session, "aws_secret_access_key": "not-the-secret"}
    with pytest.raises(ClientError) as info:
        enforcing.client("secretsmanager", forged).get_secret_value(SecretId="rentaliq/lab/api/keys")
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as info:
        enforcing.client("s3", forged).get_object(Bucket="rentaliq-lab-files", Key="p.txt")
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as info:
        enforcing.client("sts", {**session, "aws_session_token": "not-the-token"}).get_caller_identity()
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_runtime_files_turn_a_denial_into_its_clear_error(enforcing):
    """LAB's Files with PROD's app role: every object operation is refused, named by action and object."""
    from rentaliq.runtime import FileAccessDenied, Files

    lab_secrets = Secrets(RuntimeConfig(env="lab"), client=enforcing.client("secretsmanager", enforcing.assume("lab")))
    own = Files(lab_secrets, client=enforcing.client("s3", enforcing.assume("lab")))
    assert own.upload("sdk/ok.txt", b"mine").key == "sdk/ok.txt"  # the SDK's own puts carry SSE and pass the bucket policy
    assert own.read("sdk/ok.txt") == b"mine"
    other = Files(lab_secrets, client=enforcing.client("s3", enforcing.assume("prod", "prod-app")))
    with pytest.raises(FileAccessDenied) as info:
        other.upload("sdk/x.txt", b"x")
    assert info.value.action == "s3:PutObject" and "s3://rentaliq-lab-files/sdk/x.txt" in str(info.value)
    assert "because no identity-based policy allows the s3:PutObject action" in str(info.value)
    with pytest.raises(FileAccessDenied) as info:
        other.read("sdk/ok.txt")
    assert info.value.action == "s3:GetObject" and "s3://rentaliq-lab-files/sdk/ok.txt" in str(info.value)
    with pytest.raises(FileAccessDenied) as info:
        other.delete("sdk/ok.txt")
    assert info.value.action == "s3:DeleteObject"
    own.delete("sdk/ok.txt")


def test_a_denied_call_shows_up_in_the_audit_trail_with_its_principal(enforcing):
    """The enforcement sits inside the local cloud's CloudTrail recorder (issue 12 section 3): a refused read is
    an event with the session that tried it and AWS's error, and no secret."""
    creds = enforcing.assume("lab", "audited")
    _denied(enforcing.client("secretsmanager", creds).get_secret_value, SecretId="rentaliq/qa/api/keys")
    pages = (
        enforcing.client("cloudtrail")
        .get_paginator("lookup_events")
        .paginate(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"}])
    )
    records = [json.loads(e["CloudTrailEvent"]) for page in pages for e in page["Events"]]
    mine = [r for r in records if r["userIdentity"].get("arn") == f"arn:aws:sts::{ACCOUNT}:assumed-role/rentaliq-lab-app-role/audited"]
    assert mine and {r.get("errorCode") for r in mine} == {"AccessDeniedException"}
    assert "is not authorized to perform: secretsmanager:GetSecretValue" in mine[0]["errorMessage"]
