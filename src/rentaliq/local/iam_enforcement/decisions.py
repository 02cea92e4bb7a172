"""The authorization decision for one request, as AWS's policy evaluation logic makes it (single account).

Explicit deny anywhere (identity policy, bucket policy, key policy) wins; then root is allowed (it is the account);
then an allow in an identity policy or in the resource's policy. KMS keys: the key policy must allow the caller
itself, or delegate to the account (``arn:aws:iam::ACCOUNT:root``) and an identity policy allow it.
A denial is returned as AWS's message text, naming the caller, the action, the resource and why.
"""

from __future__ import annotations

from typing import Any

from rentaliq.local.iam_enforcement.policy import Caller, as_list, effects
from rentaliq.local.iam_enforcement.principals import Identity

NO_IDENTITY_ALLOW = "because no identity-based policy allows the {action} action"
NO_RESOURCE_ALLOW = "because no resource-based policy allows the {action} action"
IDENTITY_DENY = "with an explicit deny in an identity-based policy"
RESOURCE_DENY = "with an explicit deny in a resource-based policy"


def denial(caller: Caller, action: str, resource: str, why: str, *, quote: bool = False) -> str:
    shown = f'"{resource}"' if quote else resource
    return f"User: {caller.arn} is not authorized to perform: {action} on resource: {shown} {why.format(action=action)}"


def _identity_effects(identity: Identity, action: str, resource: str, context: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for policy in identity.policies:
        found |= effects(policy, action, resource, context)
    return found


def decide(identity: Identity, action: str, resource: str, context: dict[str, str], resource_policy: dict[str, Any] | None = None) -> str | None:
    """None if allowed, else the reason clause of AWS's AccessDenied message."""
    on_resource = effects(resource_policy, action, resource, context, identity.caller) if resource_policy else set()
    if "Deny" in on_resource:
        return RESOURCE_DENY
    on_identity = set() if identity.caller.is_root else _identity_effects(identity, action, resource, context)
    if "Deny" in on_identity:
        return IDENTITY_DENY
    if identity.caller.is_root or "Allow" in on_identity or "Allow" in on_resource:
        return None
    return NO_IDENTITY_ALLOW


def principal_arn(caller: Caller) -> str:
    """``aws:PrincipalArn``: a session's role, else the caller itself."""
    return caller.names[1] if ":assumed-role/" in caller.arn and len(caller.names) > 1 else caller.arn


def decide_kms(identity: Identity, action: str, key_arn: str, key_policy: dict[str, Any], context: dict[str, str]) -> str | None:
    """Key policies as KMS reads them: a statement naming the caller grants by itself; one naming the account
    (``arn:aws:iam::ACCOUNT:root``) delegates to IAM, so an identity policy must allow the action too. Conditions
    see ``aws:PrincipalArn``, ``kms:CallerAccount`` and, for a call made on the caller's behalf by S3 or Secrets
    Manager, ``kms:ViaService``."""
    caller = identity.caller
    context = {**context, "aws:PrincipalArn": principal_arn(caller), "kms:CallerAccount": caller.account}
    root_arn = f"arn:aws:iam::{caller.account}:root"
    account = Caller(arn=root_arn, account=caller.account, names=(root_arn, caller.account), is_root=True)
    direct = set() if caller.is_root else effects(_naming(key_policy, caller.names), action, key_arn, context, caller)
    via_account = effects(_naming(key_policy, account.names), action, key_arn, context, account)
    if "Deny" in direct | via_account:
        return RESOURCE_DENY
    on_identity = set() if caller.is_root else _identity_effects(identity, action, key_arn, context)
    if "Deny" in on_identity:
        return IDENTITY_DENY
    if "Allow" in direct:
        return None
    if "Allow" not in via_account:
        return NO_RESOURCE_ALLOW
    return None if caller.is_root or "Allow" in on_identity else NO_IDENTITY_ALLOW


def _naming(policy: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The statements of ``policy`` whose AWS principal is one of ``names`` (or ``*``)."""
    kept = []
    for statement in as_list(policy.get("Statement")):
        principal = statement.get("Principal")
        listed = ["*"] if principal == "*" else as_list(principal.get("AWS")) if isinstance(principal, dict) else []
        if any(n == "*" or n in names for n in listed):
            kept.append(statement)
    return {"Statement": kept}
