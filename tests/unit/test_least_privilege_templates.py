"""Issue 12 §1 on the synthesized templates: the app role carries exactly its two policies, and no policy we
generate has a wildcard principal or a ``*`` action; QA and PROD refuse public database CIDRs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rentaliq.environments import SpecError, build_spec
from tests.unit.templates import of_type, one

ENVS = ("lab", "qa", "prod")
POLICY_PROPS = {
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::Role": ("AssumeRolePolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template: dict) -> list[tuple[str, dict]]:
    found = []
    for lid, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [props.get(key) for key in POLICY_PROPS.get(resource["Type"], ())]
        documents += [p.get("PolicyDocument") for p in props.get("Policies", []) if isinstance(p, dict)]
        for document in filter(None, documents):
            found += [(lid, s) for s in _as_list(document.get("Statement", []))]
    return found


def _is_key_admin_delegation(statement: dict) -> bool:
    """A key policy's "Enable IAM policies" statement: kms:* to the account itself (``arn:...:root``). AWS requires it
    (without it the key becomes unmanageable); it grants nobody anything until an identity policy does."""
    principal = statement.get("Principal", {})
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    root = isinstance(aws, dict) and "Fn::Join" in aws and str(aws["Fn::Join"][1][-1]).endswith(":root")
    return statement.get("Action") == "kms:*" and root


def _wildcard_problems(lid: str, statement: dict) -> list[str]:
    """Allow statements only: a Deny of ``s3:*`` (the TLS-only statement) or to ``*`` narrows access, never widens it."""
    problems: list[str] = []
    if statement.get("Effect") != "Allow" or _is_key_admin_delegation(statement):
        return problems
    for action in _as_list(statement.get("Action", [])):
        if isinstance(action, str) and (action == "*" or action.endswith(":*")):
            problems.append(f"{lid}: action {action}")
    if "NotAction" in statement:
        problems.append(f"{lid}: Allow with NotAction")
    principal = statement.get("Principal")
    # A wildcard principal is acceptable only on a Deny (the TLS-only statement denies everyone on plain HTTP).
    if principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS", []))):
        problems.append(f"{lid}: Allow to principal *")
    return problems


@pytest.mark.parametrize("env", ENVS)
def test_no_generated_policy_allows_a_wildcard_action_or_principal(synthesized, env):
    statements = _statements(synthesized[env])
    assert len(statements) >= 5  # the read-secrets, files and trust policies at least: the walk found them
    assert [p for lid, s in statements for p in _wildcard_problems(lid, s)] == []


def test_the_wildcard_check_catches_what_it_must():
    assert _wildcard_problems("X", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}) == ["X: action s3:*"]
    assert _wildcard_problems("X", {"Effect": "Allow", "Action": ["*"], "Resource": "*"}) == ["X: action *"]
    assert _wildcard_problems("X", {"Effect": "Allow", "Action": "s3:GetObject", "Principal": {"AWS": "*"}}) == ["X: Allow to principal *"]
    assert _wildcard_problems("X", {"Effect": "Deny", "Action": "s3:*", "Principal": {"AWS": "*"}}) == []
    root = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    assert _wildcard_problems("X", {"Effect": "Allow", "Action": "kms:*", "Principal": {"AWS": root}, "Resource": "*"}) == []
    assert _wildcard_problems("X", {"Effect": "Allow", "Action": "kms:*", "Principal": {"AWS": "arn:aws:iam::1:role/r"}}) == ["X: action kms:*"]


@pytest.mark.parametrize("env", ENVS)
def test_app_role_trust_and_policies_are_exactly_the_spec(synthesized, env):
    template = synthesized[env]
    lid, role = one(template, "AWS::IAM::Role", RoleName=f"rentaliq-{env}-app-role")
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    services = sorted(p for s in trust if s["Effect"] == "Allow" for p in _as_list(s["Principal"]["Service"]))
    assert services == ["ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]
    assert "Policies" not in role["Properties"]  # no inline permissions
    secrets_lid, secrets = one(template, "AWS::IAM::ManagedPolicy", ManagedPolicyName=f"rentaliq-{env}-read-secrets-policy")
    files_lid, files = one(template, "AWS::IAM::ManagedPolicy", ManagedPolicyName=f"rentaliq-{env}-files-access-policy")
    assert sorted(r["Ref"] for r in role["Properties"]["ManagedPolicyArns"]) == sorted([secrets_lid, files_lid])
    statements = {s["Sid"]: s for s in files["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["ListFilesBucket"]["Action"] == "s3:ListBucket"
    assert statements["ReadWriteFiles"]["Action"] == ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    bucket = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::rentaliq-{env}-files"]]}
    assert statements["ListFilesBucket"]["Resource"] == bucket
    assert statements["ReadWriteFiles"]["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::rentaliq-{env}-files/*"]]}
    _, profile = one(template, "AWS::IAM::InstanceProfile", InstanceProfileName=f"rentaliq-{env}-app-instance-profile")
    assert profile["Properties"]["Roles"] == [{"Ref": lid}]
    assert {t["Key"]: t["Value"] for t in role["Properties"]["Tags"]}["Environment"] == env
    assert len(of_type(template, "AWS::IAM::InstanceProfile")) >= 1


@pytest.mark.parametrize("env", ["qa", "prod"])
@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "8.8.8.0/24", "52.0.0.0/8"])
def test_qa_and_prod_refuse_public_database_cidrs(env, cidr):
    with pytest.raises(SpecError) as info:
        build_spec(env, {"database": {"allowed_cidrs": [cidr]}})
    [problem] = info.value.problems
    assert problem.startswith(f"{env}: database.allowed_cidrs[0]={cidr!r} is invalid; allowed: a private IPv4 range")


@pytest.mark.parametrize("env", ["qa", "prod"])
def test_qa_and_prod_accept_private_database_cidrs(env):
    assert build_spec(env, {"database": {"allowed_cidrs": ["10.20.0.0/16"]}}).database.allowed_cidrs == ("10.20.0.0/16",)


@pytest.mark.parametrize("env", ENVS)
def test_app_role_uses_the_environment_key_through_s3_and_secrets_manager_only(synthesized, env):
    """The key policy delegates the app role's use to IAM; with the key on (PROD by default) the files-access
    policy carries that one allow, narrowed to the two services; without the key, no KMS statement at all."""
    _, files = one(synthesized[env], "AWS::IAM::ManagedPolicy", ManagedPolicyName=f"rentaliq-{env}-files-access-policy")
    kms = [s for s in files["Properties"]["PolicyDocument"]["Statement"] if "kms:" in json.dumps(s.get("Action"))]
    key_on = bool(of_type(synthesized[env], "AWS::KMS::Alias")) and any(
        a["Properties"]["AliasName"] == f"alias/rentaliq-{env}" for a in of_type(synthesized[env], "AWS::KMS::Alias").values()
    )
    assert key_on == (env == "prod")  # the built-in specs: PROD has its key, LAB and QA keep AWS-managed keys
    if not key_on:
        assert kms == []
        return
    [statement] = kms
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Condition"]["StringEquals"]["kms:ViaService"] == ["s3.us-east-1.amazonaws.com", "secretsmanager.us-east-1.amazonaws.com"]
    assert "Fn::GetAtt" in statement["Resource"] and statement["Resource"]["Fn::GetAtt"][1] == "Arn"
