"""Bucket policies conditioned on TLS behave as on AWS.

moto evaluates a bucket policy with no request context and treats any unmet condition as a deny, so the
spec's ``Deny s3:* unless aws:SecureTransport`` statement would refuse every request. The local cloud
listens on loopback only, which stands in for TLS here: requests count as secure transport, and a
statement whose conditions do not hold simply does not apply, as AWS evaluates it.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3 import models as s3_models

REQUEST_CONTEXT = {"aws:SecureTransport": "true"}


def _condition_holds(condition: dict[str, Any], deny: bool = False) -> bool:
    for operator, checks in condition.items():
        for key, expected in checks.items():
            actual = REQUEST_CONTEXT.get(key)
            if actual is None:
                # Keys the local cloud cannot know here (source ARN, account, request headers...) are taken as
                # matching for an allow, so allow statements for AWS services keep working, and as not matching
                # for a deny, so no deny fires on a guess (the enforcing mode, rentaliq.local.iam_enforcement,
                # evaluates them from the request).
                if deny:
                    return False
                continue
            values = [str(v).lower() for v in (expected if isinstance(expected, list) else [expected])]
            matched = actual.lower() in values
            if operator in ("Bool", "StringEquals", "StringEqualsIgnoreCase") and not matched:
                return False
            if operator in ("StringNotEquals",) and matched:
                return False
    return True


def effective_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """The statements that apply to a request from the local cloud, their conditions already evaluated."""
    statements = policy.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    applying = [
        {k: v for k, v in s.items() if k != "Condition"} for s in statements if _condition_holds(s.get("Condition", {}), deny=s.get("Effect") == "Deny")
    ]
    return {**policy, "Statement": applying}


def install() -> None:
    def get_permission(self, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = effective_policy(json.loads(self.policy.decode()))
        if not policy["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    s3_models.FakeBucket.get_permission = get_permission
