"""Scheduler area: the off-hours schedules exist exactly when the spec enables them, as the spec says, and their
role can stop and start this environment's instance and nothing else.

Enabled: ``rentaliq-{env}-db-stop`` and ``-start`` with the spec's expressions and time zone (from
:class:`rentaliq.offhours.OffHours`, as the stack builds them), ENABLED, no flexible window, the universal RDS
targets, an Input naming the environment's instance, the scheduler role; the role trusted by Scheduler only for
this account, its policies allowing exactly ``rds:StopDBInstance`` and ``rds:StartDBInstance`` on exactly the
instance's ARN, its tags. Disabled (PROD): neither schedule nor the role exists.
"""

from __future__ import annotations

import json
from typing import Any

from rentaliq import naming
from rentaliq.offhours import START_TARGET, STOP_TARGET, OffHours
from rentaliq.ops.verify.checks import SCHEDULER
from rentaliq.ops.verify.documents import as_list, policy_document, principals, statements
from rentaliq.ops.verify.reader import Audit

SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
ACTIONS = ["rds:StartDBInstance", "rds:StopDBInstance"]


def check(audit: Audit) -> None:
    env, read, add = audit.env, audit.read, audit.record.add
    names = [naming.db_stop_schedule(env), naming.db_start_schedule(env)]
    wanted = audit.spec.schedule.enabled
    with read.section(SCHEDULER, "schedules"):
        answer = read.call(
            SCHEDULER, "schedules listed", names if wanted else [], "scheduler", "list_schedules", NamePrefix=naming.resource_name(env, "db"), MaxResults=100
        )
        if not isinstance(answer.get("Schedules"), list):  # an HTML page, say: it proves nothing about absence
            add(SCHEDULER, "schedules listed", "a Schedules list", answer, ok=False)
            return
        listed = answer["Schedules"]
        present = sorted(s["Name"] for s in listed if s.get("Name") in names and s.get("GroupName", "default") == "default")
        add(SCHEDULER, "off-hours schedules", sorted(names) if wanted else [], present)
        if wanted:
            offhours = OffHours.from_spec(audit.spec.schedule)
            role_arn = _role_arn(audit)
            for name, expression, target in ((names[0], offhours.stop, STOP_TARGET), (names[1], offhours.start, START_TARGET)):
                if name in present:
                    with read.section(SCHEDULER, name):
                        _schedule(audit, name, expression, offhours.timezone, target, role_arn)
    with read.section(SCHEDULER, "role"):
        _role(audit, wanted)


def _role_arn(audit: Audit) -> str | None:
    roles = audit.read.paginate(SCHEDULER, "roles listed", None, "iam", "list_roles", "Roles")
    found = [r["Arn"] for r in roles if r.get("RoleName") == naming.scheduler_role(audit.env)]
    return str(found[0]) if found else None


def _schedule(audit: Audit, name: str, expression: str, timezone: str, target_arn: str, role_arn: str | None) -> None:
    add = audit.record.add
    live = audit.read.call(SCHEDULER, f"{name} readable", "readable", "scheduler", "get_schedule", Name=name, GroupName="default")
    add(SCHEDULER, f"{name} expression", expression, live.get("ScheduleExpression"))
    add(SCHEDULER, f"{name} time zone", timezone, live.get("ScheduleExpressionTimezone"))
    add(SCHEDULER, f"{name} state", "ENABLED", live.get("State"))
    add(SCHEDULER, f"{name} flexible window", "OFF", (live.get("FlexibleTimeWindow") or {}).get("Mode"))
    target = live.get("Target") or {}
    add(SCHEDULER, f"{name} target", target_arn, target.get("Arn"))
    add(SCHEDULER, f"{name} input", {"DbInstanceIdentifier": naming.db_instance_id(audit.env)}, _input(target.get("Input")))
    add(
        SCHEDULER,
        f"{name} role",
        role_arn or naming.scheduler_role(audit.env),
        target.get("RoleArn"),
        ok=role_arn is not None and target.get("RoleArn") == role_arn,
    )


def _input(document: Any) -> Any:
    try:
        return json.loads(document) if isinstance(document, str) else document
    except ValueError:
        return document


def _role(audit: Audit, wanted: bool) -> None:
    read, add, name = audit.read, audit.record.add, naming.scheduler_role(audit.env)
    roles = read.paginate(SCHEDULER, f"{name} exists", name if wanted else None, "iam", "list_roles", "Roles")
    match = [r for r in roles if r.get("RoleName") == name]
    if not add(SCHEDULER, f"{name} exists", name if wanted else None, name if match else None) or not wanted:
        return
    role = read.call(SCHEDULER, f"{name} readable", "readable", "iam", "get_role", RoleName=name)["Role"]
    account = role["Arn"].split(":")[4]
    trust = statements(policy_document(role.get("AssumeRolePolicyDocument")))
    allowed = [s for s in trust if s.get("Effect") == "Allow" and "sts:AssumeRole" in as_list(s.get("Action"))]
    add(SCHEDULER, f"{name} trusted by", [SCHEDULER_PRINCIPAL], sorted({p for s in allowed for p in principals(s, "Service") + principals(s, "AWS")}))
    guarded = all(str((s.get("Condition") or {}).get("StringEquals", {}).get("aws:SourceAccount")) == account for s in allowed)
    add(SCHEDULER, f"{name} only for this account (aws:SourceAccount)", True, guarded and bool(allowed))
    instance_arn = f"arn:{audit.partition}:rds:{audit.spec.region}:{account}:db:{naming.db_instance_id(audit.env)}"
    documents = _policies(audit, name)
    granted = [s for d in documents for s in statements(d) if s.get("Effect") == "Allow"]
    add(SCHEDULER, f"{name} actions", ACTIONS, sorted({a for s in granted for a in as_list(s.get("Action"))}))
    add(SCHEDULER, f"{name} resources", [instance_arn], sorted({r for s in granted for r in as_list(s.get("Resource"))}))
    odd = [s for s in granted if "NotAction" in s or "NotResource" in s]
    add(SCHEDULER, f"{name} statements without NotAction/NotResource", 0, len(odd))
    audit.record.tags(SCHEDULER, name, audit.spec.resource_tags(), role.get("Tags"))


def _policies(audit: Audit, role: str) -> list[dict[str, Any]]:
    """Every policy document the role has: inline and attached (default versions)."""
    read = audit.read
    documents = []
    for policy_name in read.paginate(SCHEDULER, f"{role} inline policies", None, "iam", "list_role_policies", "PolicyNames", RoleName=role):
        answer = read.call(SCHEDULER, f"{role} policy {policy_name}", "readable", "iam", "get_role_policy", RoleName=role, PolicyName=policy_name)
        documents.append(policy_document(answer.get("PolicyDocument")))
    for attached in read.paginate(SCHEDULER, f"{role} managed policies", None, "iam", "list_attached_role_policies", "AttachedPolicies", RoleName=role):
        policy = read.call(SCHEDULER, f"{attached['PolicyName']} readable", "readable", "iam", "get_policy", PolicyArn=attached["PolicyArn"])["Policy"]
        version = read.call(
            SCHEDULER,
            f"{attached['PolicyName']} document",
            "readable",
            "iam",
            "get_policy_version",
            PolicyArn=policy["Arn"],
            VersionId=policy["DefaultVersionId"],
        )["PolicyVersion"]
        documents.append(policy_document(version.get("Document")))
    return documents
