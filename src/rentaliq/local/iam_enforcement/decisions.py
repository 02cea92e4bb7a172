"""The authorization decision for one request, as AWS's policy evaluation logic makes it (single account).

Explicit deny anywhere (identity policy, bucket policy, key policy) wins; then root is allowed (it is the account);
then an allow in an identity policy or in the resource's policy. KMS keys: the key policy must allow the caller
itself, or delegate to the account (``arn:aws:iam::ACCOUNT:root``) and an identity policy allow it.
A denial is returned as AWS's message text, naming the caller, the action, the resource and why.
"""

from __future__ import annotations

from typing import Any

from rentaliq.local.iam_enforcement.policy import Caller, as_list, effects, statement_matches
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


def decide_kms(identity: Identity, action: str, key_arn: str, key_policy: dict[str, Any], context: dict[str, str]) -> str | None:
    caller = identity.caller
    on_key = effects(key_policy, action, key_arn, context, caller)
    if "Deny" in on_key:
        return RESOURCE_DENY
    on_identity = set() if caller.is_root else _identity_effects(identity, action, key_arn, context)
    if "Deny" in on_identity:
        return IDENTITY_DENY
    if "Allow" in on_key and not caller.is_root and _names_caller_itself(key_policy, caller, action, key_arn, context):
        return None
    account_root = Caller(
        arn=f"arn:aws:iam::{caller.account}:root", account=caller.account, names=(f"arn:aws:iam::{caller.account}:root", caller.account), is_root=True
    )
    delegated = "Allow" in effects(key_policy, action, key_arn, context, account_root) and _names_account(key_policy, caller.account)
    if not delegated:
        return NO_RESOURCE_ALLOW
    if caller.is_root or "Allow" in on_identity:
        return None
    return NO_IDENTITY_ALLOW


def _names_account(policy: dict[str, Any], account: str) -> bool:
    for statement in as_list(policy.get("Statement")):
        principal = statement.get("Principal")
        names = as_list(principal.get("AWS")) if isinstance(principal, dict) else []
        if statement.get("Effect") == "Allow" and any(n in (account, f"arn:aws:iam::{account}:root") for n in names):
            return True
    return False


def _names_caller_itself(policy: dict[str, Any], caller: Caller, action: str, resource: str, context: dict[str, str]) -> bool:
    for statement in as_list(policy.get("Statement")):
        principal = statement.get("Principal")
        names = as_list(principal.get("AWS")) if isinstance(principal, dict) else []
        if statement.get("Effect") == "Allow" and any(n in caller.names for n in names) and statement_matches(statement, action, resource, context, caller):
            return True
    return False
