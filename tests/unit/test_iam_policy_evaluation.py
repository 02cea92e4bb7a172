"""The local cloud's IAM evaluation (rentaliq.local.iam_enforcement), rule by rule, both ways: what AWS allows is
allowed, what it denies is denied, with AWS's reason."""

from __future__ import annotations

from rentaliq.local import s3_policy
from rentaliq.local.iam_enforcement.decisions import IDENTITY_DENY, NO_IDENTITY_ALLOW, NO_RESOURCE_ALLOW, RESOURCE_DENY, decide, decide_kms, denial
from rentaliq.local.iam_enforcement.policy import Caller
from rentaliq.local.iam_enforcement.principals import Identity

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/rentaliq-lab-app-role"
SESSION = Caller(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/rentaliq-lab-app-role/app",
    account=ACCOUNT,
    names=(f"arn:aws:sts::{ACCOUNT}:assumed-role/rentaliq-lab-app-role/app", ROLE),
)
ROOT = Caller(arn=f"arn:aws:iam::{ACCOUNT}:root", account=ACCOUNT, names=(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT), is_root=True)
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rentaliq/lab/api/keys-AbCdEf"
READ_LAB = {
    "Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rentaliq/lab/*"}
    ]
}
TLS_ONLY = {
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
}
ENCRYPTED = {
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::b/*",
            "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
        }
    ]
}
FILES = {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]}
DEFAULT_KEY_POLICY = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]}
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"


def test_identity_policy_allows_its_resources_only():
    app = Identity(SESSION, [READ_LAB])
    assert decide(app, "secretsmanager:GetSecretValue", SECRET, {}) is None
    assert decide(app, "secretsmanager:GetSecretValue", SECRET.replace("/lab/", "/prod/"), {}) == NO_IDENTITY_ALLOW
    assert decide(app, "secretsmanager:PutSecretValue", SECRET, {}) == NO_IDENTITY_ALLOW
    assert decide(Identity(SESSION, []), "secretsmanager:GetSecretValue", SECRET, {}) == NO_IDENTITY_ALLOW


def test_explicit_deny_wins_over_allow_and_over_root():
    deny = {"Statement": [{"Effect": "Deny", "Action": "secretsmanager:Get*", "Resource": "*"}]}
    assert decide(Identity(SESSION, [READ_LAB, deny]), "secretsmanager:GetSecretValue", SECRET, {}) == IDENTITY_DENY
    assert decide(Identity(ROOT), "s3:PutObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "false"}, TLS_ONLY) == RESOURCE_DENY
    assert decide(Identity(ROOT), "s3:PutObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "true"}, TLS_ONLY) is None


def test_encryption_required_statement():
    app = Identity(SESSION, [FILES])
    clear = {"aws:SecureTransport": "true"}
    assert decide(app, "s3:PutObject", "arn:aws:s3:::b/k", clear, ENCRYPTED) == RESOURCE_DENY
    assert decide(app, "s3:PutObject", "arn:aws:s3:::b/k", {**clear, "s3:x-amz-server-side-encryption": "AES256"}, ENCRYPTED) is None
    assert decide(app, "s3:GetObject", "arn:aws:s3:::b/k", clear, ENCRYPTED) == NO_IDENTITY_ALLOW


def test_kms_decrypt_needs_key_policy_delegation_and_an_identity_allow():
    decrypt = {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]}
    assert decide_kms(Identity(SESSION, [READ_LAB]), "kms:Decrypt", KEY, DEFAULT_KEY_POLICY, {}) == NO_IDENTITY_ALLOW
    assert decide_kms(Identity(SESSION, [decrypt]), "kms:Decrypt", KEY, DEFAULT_KEY_POLICY, {}) is None
    assert decide_kms(Identity(ROOT), "kms:Decrypt", KEY, DEFAULT_KEY_POLICY, {}) is None
    only_other = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}, "Action": "kms:Decrypt", "Resource": "*"}]}
    assert decide_kms(Identity(SESSION, [decrypt]), "kms:Decrypt", KEY, only_other, {}) == NO_RESOURCE_ALLOW
    to_role = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*"}]}
    assert decide_kms(Identity(SESSION, []), "kms:Decrypt", KEY, to_role, {}) is None


def test_denial_reads_as_aws_writes_it():
    assert denial(SESSION, "s3:GetObject", "arn:aws:s3:::b/k", NO_IDENTITY_ALLOW, quote=True) == (
        f'User: {SESSION.arn} is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::b/k" '
        "because no identity-based policy allows the s3:GetObject action"
    )


def test_non_enforcing_bucket_policy_never_fires_a_deny_on_an_unknown_key():
    """Without enforcement moto sees no request headers: the encryption-required deny must not refuse every put."""
    assert s3_policy.effective_policy(ENCRYPTED)["Statement"] == []
    assert s3_policy.effective_policy(TLS_ONLY)["Statement"] == []  # loopback counts as TLS without enforcement
    allow = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ]
    }
    assert len(s3_policy.effective_policy(allow)["Statement"]) == 1


def _s3_environ(method: str, path: str, query: str = "", **headers: str) -> dict:
    import io

    auth = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x"
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "HTTP_HOST": "127.0.0.1:4566", "HTTP_AUTHORIZATION": auth,
            "wsgi.input": io.BytesIO(b""), **{f"HTTP_{k.upper()}": v for k, v in headers.items()}}  # fmt: skip


def test_s3_requests_map_to_iams_action_names():
    from rentaliq.local.iam_enforcement.requests import parse

    cases = {
        ("GET", "/b/k", ""): "s3:GetObject",
        ("GET", "/b/k", "versionId=v1"): "s3:GetObjectVersion",
        ("PUT", "/b/k", ""): "s3:PutObject",
        ("PUT", "/b/k", "partNumber=1&uploadId=u"): "s3:PutObject",
        ("DELETE", "/b/k", "versionId=v1"): "s3:DeleteObjectVersion",
        ("GET", "/b", "list-type=2"): "s3:ListBucket",
        ("GET", "/b", "versions"): "s3:ListBucketVersions",
        ("GET", "/b", "encryption"): "s3:GetEncryptionConfiguration",
        ("PUT", "/b", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
        ("DELETE", "/b", "policy"): "s3:DeleteBucketPolicy",
        ("POST", "/b", "delete"): "s3:DeleteObject",
        ("GET", "/", ""): "s3:ListAllMyBuckets",
    }
    for (method, path, query), action in cases.items():
        request = parse(_s3_environ(method, path, query), secure=True)
        assert request is not None and request.action == action, (method, path, query)
    put = parse(_s3_environ("PUT", "/b/k", x_amz_server_side_encryption="aws:kms", x_amz_security_token="t"), secure=False)
    assert put is not None and (put.bucket, put.key, put.session_token) == ("b", "k", "t")
    assert put.context == {"aws:SecureTransport": "false", "s3:x-amz-server-side-encryption": "aws:kms"}


def test_tls_listener_certificate_chains_to_the_local_ca_for_loopback(tmp_path):
    """One trust bundle for every client: the API listener's certificate is issued by the CA that signs the
    PostgreSQL servers' (the CA is made once per state dir; the leaf afresh at each start)."""
    from cryptography import x509

    from rentaliq.local.iam_enforcement.https import certificate
    from rentaliq.local.postgres.ca import local_cloud_ca

    bundle, cert, key = certificate(tmp_path)
    assert bundle == local_cloud_ca(tmp_path).path and certificate(tmp_path)[0] == bundle
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    ca = x509.load_pem_x509_certificate(bundle.read_bytes())
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


def test_environment_key_policy_delegates_to_the_app_role_through_s3_and_secrets_manager_only():
    """The shape of infra/keys.py: the account as principal, narrowed by aws:PrincipalArn and kms:ViaService."""
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}, "StringEquals": {"kms:ViaService": ["s3.us-east-1.amazonaws.com"]}},
            }
        ]
    }
    decrypt = {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]}
    via_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    assert decide_kms(Identity(SESSION, [decrypt]), "kms:Decrypt", KEY, policy, via_s3) is None
    assert decide_kms(Identity(SESSION, [decrypt]), "kms:Decrypt", KEY, policy, {}) == NO_RESOURCE_ALLOW  # a direct KMS call
    assert decide_kms(Identity(SESSION, []), "kms:Decrypt", KEY, policy, via_s3) == NO_IDENTITY_ALLOW  # IAM still decides
    other = Caller(arn=f"arn:aws:iam::{ACCOUNT}:user/u", account=ACCOUNT, names=(f"arn:aws:iam::{ACCOUNT}:user/u",))
    assert decide_kms(Identity(other, [decrypt]), "kms:Decrypt", KEY, policy, via_s3) == NO_RESOURCE_ALLOW
