"""Invoking a schedule's target, as EventBridge Scheduler's universal targets do: one AWS API call, with the
schedule's ``Input`` as the request and its role's permissions.

The local cloud knows the two universal targets RentalIQ schedules (``aws-sdk:rds:stopDBInstance`` and
``startDBInstance``). It calls moto's RDS backend, the code a user's StopDBInstance request runs, so the real
PostgreSQL server stops or starts and the states and RDS events are exactly a user's. Before the call it does
what Scheduler's service role check does: the role must exist, be assumable by ``scheduler.amazonaws.com`` and
allow the action on the instance (IAM's own evaluation in moto). An error is an invocation that FAILED with the
service's error code and message, as Scheduler records it (CloudWatch's ``InvocationAttemptCount`` and the
dead-letter queue on AWS); it never stops the executor.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.rds import models as rds_models

UNIVERSAL = "arn:aws:scheduler:::aws-sdk:"
RDS_ACTIONS = {"stopDBInstance": "stop_db_instance", "startDBInstance": "start_db_instance"}
SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"


class InvocationFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _action(target_arn: str) -> tuple[str, str]:
    """``arn:aws:scheduler:::aws-sdk:rds:stopDBInstance`` -> ("rds", "stopDBInstance")."""
    arn = target_arn.replace("arn:aws-us-gov:", "arn:aws:").replace("arn:aws-cn:", "arn:aws:")
    if not arn.startswith(UNIVERSAL) or arn.count(":") != 7:
        raise InvocationFailed(
            "ValidationException", f"The local cloud does not invoke target {target_arn}; it invokes aws-sdk:rds:stopDBInstance and startDBInstance."
        )
    service, action = arn[len(UNIVERSAL) :].split(":")
    if service != "rds" or action not in RDS_ACTIONS:
        raise InvocationFailed(
            "ValidationException", f"The local cloud does not invoke target {target_arn}; it invokes aws-sdk:rds:stopDBInstance and startDBInstance."
        )
    return service, action


def _instance_id(target: dict[str, Any]) -> str:
    try:
        document = json.loads(target.get("Input") or "{}")
    except ValueError:
        raise InvocationFailed("ValidationException", "The target's Input is not a JSON document.") from None
    identifier = document.get("DbInstanceIdentifier") if isinstance(document, dict) else None
    if not isinstance(identifier, str) or not identifier:
        raise InvocationFailed("ValidationException", "The target's Input has no DbInstanceIdentifier.")
    return identifier


def _check_role(role_arn: str, account_id: str, action: str, resource: str) -> None:
    """The schedule's role: it exists, trusts Scheduler, and its policies allow ``action`` on ``resource``."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.models import iam_backends

    iam = iam_backends[account_id]["aws"]
    name = role_arn.rsplit("/", 1)[-1]
    role = next((r for r in iam.roles.values() if r.arn == role_arn or r.name == name), None)
    if role is None:
        raise InvocationFailed("AccessDeniedException", f"Scheduler could not assume {role_arn}: the role does not exist.")
    trust = json.loads(role.assume_role_policy_document) if isinstance(role.assume_role_policy_document, str) else role.assume_role_policy_document
    if SCHEDULER_PRINCIPAL not in json.dumps(trust):
        raise InvocationFailed("AccessDeniedException", f"Scheduler could not assume {role_arn}: its trust policy does not name {SCHEDULER_PRINCIPAL}.")
    policies = [IAMPolicy(document) for document in role.policies.values()] + [IAMPolicy(policy) for policy in role.managed_policies.values()]
    verdicts = [policy.is_action_permitted(action, resource) for policy in policies]
    if PermissionResult.DENIED in verdicts or PermissionResult.PERMITTED not in verdicts:
        raise InvocationFailed("AccessDeniedException", f"{role_arn} is not authorized to perform: {action} on resource: {resource}")


def invoke(target: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """Make the target's API call now; ``{"Status": "SUCCEEDED"|"FAILED", ...}`` with the call's outcome."""
    outcome: dict[str, Any] = {"Target": target.get("Arn"), "InvokedAt": datetime.now(UTC).isoformat()}
    try:
        service, action = _action(str(target.get("Arn") or ""))
        identifier = _instance_id(target)
        backend = rds_models.rds_backends[account_id][region]
        resource = f"arn:aws:rds:{region}:{account_id}:db:{identifier}"
        _check_role(str(target.get("RoleArn") or ""), account_id, f"{service}:{action[0].upper()}{action[1:]}", resource)
        outcome["DBInstanceIdentifier"] = identifier
        try:
            db = getattr(backend, RDS_ACTIONS[action])(identifier)
        except Exception as error:
            code = getattr(error, "code", None)
            if not isinstance(code, str):
                raise
            raise InvocationFailed(code, str(getattr(error, "message", error))) from None
        outcome.update(Status="SUCCEEDED", DBInstanceStatus=db.status)
    except InvocationFailed as failure:
        outcome.update(Status="FAILED", ErrorCode=failure.code, ErrorMessage=failure.message)
    return outcome
