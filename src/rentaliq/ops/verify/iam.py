"""IAM area: the read-secrets policy (actions and resources exactly the spec's), the app role (trusted by exactly
the compute services, carrying exactly its two policies) and PROD's RDS monitoring role."""

from __future__ import annotations

from typing import Any

from rentaliq import naming
from rentaliq.contract import (
    APP_ROLE_PRINCIPALS,
    ENHANCED_MONITORING_POLICY,
    FILES_BUCKET_ACTIONS,
    FILES_OBJECT_ACTIONS,
    MONITORING_PRINCIPAL,
    READ_SECRET_ACTIONS,
    files_bucket_arn,
    secrets_arn_pattern,
)
from rentaliq.ops.verify.checks import IAM
from rentaliq.ops.verify.documents import as_list, policy_document, principals, statements
from rentaliq.ops.verify.rds import Instance
from rentaliq.ops.verify.reader import Audit


def check(audit: Audit, instance: Instance | None) -> str | None:
    """Every IAM check; the read-secrets policy's ARN if it was found."""
    policy_arn = None
    with audit.read.section(IAM, "read secrets policy"):
        policy_arn = _read_secrets_policy(audit)
    with audit.read.section(IAM, "app role"):
        _app_role(audit)
    if audit.db.enhanced_monitoring_interval_s:
        with audit.read.section(IAM, "monitoring role"):
            _monitoring_role(audit, instance)
    return policy_arn


def _read_secrets_policy(audit: Audit) -> str | None:
    name, read, add = naming.read_secrets_policy(audit.env), audit.read, audit.record.add
    policies = read.paginate(IAM, f"{name} exists", name, "iam", "list_policies", "Policies", Scope="Local")
    match = [p for p in policies if p.get("PolicyName") == name]
    if not add(IAM, f"{name} exists", name, match[0]["PolicyName"] if match else None):
        return None
    policy = match[0]
    account = policy["Arn"].split(":")[4]
    version = read.call(IAM, f"{name} document", "readable", "iam", "get_policy_version", PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])[
        "PolicyVersion"
    ]
    found = statements(policy_document(version.get("Document")))
    allow = [s for s in found if s.get("Effect") == "Allow"]
    actions = sorted({a for s in allow for a in as_list(s.get("Action"))})
    resources = sorted({r for s in allow for r in as_list(s.get("Resource"))})
    odd = [s for s in found if s.get("Effect") != "Allow" or "NotAction" in s or "NotResource" in s or "Condition" in s]
    add(
        IAM,
        f"{name} actions",
        sorted(READ_SECRET_ACTIONS),
        actions,
        detail=f"{len(odd)} statement(s) with Deny, NotAction, NotResource or Condition" if odd else "",
    )
    resource = secrets_arn_pattern(audit.partition, audit.spec.region, account, naming.secrets_prefix(audit.env))
    add(IAM, f"{name} resources", [resource], resources)
    return str(policy["Arn"])


def _monitoring_role(audit: Audit, instance: Instance | None) -> None:
    name, read, add = naming.rds_monitoring_role(), audit.read, audit.record.add
    role = read.call(IAM, f"{name} exists", name, "iam", "get_role", RoleName=name)["Role"]
    add(IAM, f"{name} exists", name, role.get("RoleName"))
    trust = statements(policy_document(role.get("AssumeRolePolicyDocument")))
    services = sorted({p for s in trust if s.get("Effect") == "Allow" and "sts:AssumeRole" in as_list(s.get("Action")) for p in principals(s, "Service")})
    add(IAM, f"{name} trusted by", [MONITORING_PRINCIPAL], services)
    attached = read.paginate(IAM, f"{name} managed policies", None, "iam", "list_attached_role_policies", "AttachedPolicies", RoleName=name)
    arns = sorted(p["PolicyArn"] for p in attached)
    wanted = f"arn:{audit.partition}:iam::aws:policy/{ENHANCED_MONITORING_POLICY}"
    add(IAM, f"{name} managed policies", [wanted], arns, ok=wanted in arns)
    audit.record.tags(IAM, name, audit.spec.resource_tags(), role.get("Tags"))
    if instance is not None:
        add(IAM, f"{name} used by the instance", role.get("Arn"), instance.monitoring_role_arn)


def _app_role(audit: Audit) -> None:
    """Least privilege (issue 12 §1): who may assume the app role, and that it carries nothing but its two policies."""
    env, read, add = audit.env, audit.read, audit.record.add
    name = naming.app_role(env)
    role = read.call(IAM, f"{name} exists", name, "iam", "get_role", RoleName=name)["Role"]
    add(IAM, f"{name} exists", name, role.get("RoleName"))
    trust = statements(policy_document(role.get("AssumeRolePolicyDocument")))
    allowed = [s for s in trust if s.get("Effect") == "Allow"]
    services = sorted({p for s in allowed for p in principals(s, "Service")})
    others = sorted({p for s in allowed for kind in ("AWS", "Federated") for p in principals(s, kind)})
    add(
        IAM,
        f"{name} trusted by",
        sorted(APP_ROLE_PRINCIPALS),
        services,
        ok=services == sorted(APP_ROLE_PRINCIPALS) and not others,
        detail=f"also trusted by {', '.join(others)}" if others else "",
    )
    account = str(role["Arn"]).split(":")[4]
    wanted = sorted(f"arn:{audit.partition}:iam::{account}:policy/{p}" for p in (naming.read_secrets_policy(env), naming.files_access_policy(env)))
    attached = read.paginate(IAM, f"{name} managed policies", wanted, "iam", "list_attached_role_policies", "AttachedPolicies", RoleName=name)
    add(IAM, f"{name} managed policies", wanted, sorted(p["PolicyArn"] for p in attached))
    inline = read.paginate(IAM, f"{name} inline policies", [], "iam", "list_role_policies", "PolicyNames", RoleName=name)
    add(IAM, f"{name} inline policies", [], sorted(inline))
    audit.record.tags(IAM, name, audit.spec.resource_tags(), role.get("Tags"))
    _files_policy(audit, f"arn:{audit.partition}:iam::{account}:policy/{naming.files_access_policy(env)}")
    profile_name = naming.app_instance_profile(env)
    profile = read.call(IAM, f"{profile_name} role", name, "iam", "get_instance_profile", InstanceProfileName=profile_name)["InstanceProfile"]
    add(IAM, f"{profile_name} role", [name], [r.get("RoleName") for r in profile.get("Roles", [])])


def _files_policy(audit: Audit, arn: str) -> None:
    name, read, add = naming.files_access_policy(audit.env), audit.read, audit.record.add
    policy = read.call(IAM, f"{name} document", "readable", "iam", "get_policy", PolicyArn=arn)["Policy"]
    version = read.call(IAM, f"{name} document", "readable", "iam", "get_policy_version", PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    found = statements(policy_document(version.get("Document")))
    key_statements = [s for s in found if any(str(a).startswith("kms:") for a in as_list(s.get("Action")))]
    found = [s for s in found if s not in key_statements]
    grants = sorted((a, r) for s in found if s.get("Effect") == "Allow" for a in as_list(s.get("Action")) for r in as_list(s.get("Resource")))
    bucket = files_bucket_arn(audit.partition, naming.files_bucket(audit.env))
    wanted = sorted([(a, bucket) for a in FILES_BUCKET_ACTIONS] + [(a, f"{bucket}/*") for a in FILES_OBJECT_ACTIONS])
    odd = [s for s in found if s.get("Effect") != "Allow" or "NotAction" in s or "NotResource" in s or "Condition" in s]
    _key_statement(audit, name, key_statements)
    add(IAM, f"{name} grants", [f"{a} {r}" for a, r in wanted], [f"{a} {r}" for a, r in grants], ok=grants == wanted and not odd)


def _key_statement(audit: Audit, name: str, found: list[dict[str, Any]]) -> None:
    """With the environment's key on, one statement lets the app role use it through S3 and Secrets Manager only."""
    from rentaliq.infra.keys import APP_ROLE_ACTIONS, APP_ROLE_SERVICES

    if not audit.spec.encryption.customer_managed_key:
        audit.record.add(IAM, f"{name} key statements", 0, len(found))
        return
    via = sorted(f"{service}.{audit.spec.region}.amazonaws.com" for service in APP_ROLE_SERVICES)
    shape = [
        (sorted(as_list(s.get("Action"))), sorted(as_list((s.get("Condition") or {}).get("StringEquals", {}).get("kms:ViaService"))), s.get("Effect"))
        for s in found
    ]
    ok = (
        len(found) == 1
        and shape[0] == (sorted(APP_ROLE_ACTIONS), via, "Allow")
        and str(as_list(found[0].get("Resource"))[0]).startswith(f"arn:{audit.partition}:kms:")
    )
    audit.record.add(IAM, f"{name} key statement", [sorted(APP_ROLE_ACTIONS), via], [[s[0], s[1]] for s in shape], ok=ok)
