"""IAM policy evaluation as AWS documents it, for one statement list at a time.

Owns matching of Action/NotAction, Resource/NotResource and Principal, and the condition operators our policies
and the usual bucket/key policies use (String*, Arn*, Bool, Null, each with ``IfExists``). A statement matches or
not; the caller combines the results of all policies (explicit deny wins, then any allow, else implicit deny).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

Effect = Literal["Allow", "Deny"]


@dataclass(frozen=True)
class Caller:
    """Who signed the request: ``arn`` as AWS reports it, the ARNs a policy may name it by, and whether it is root."""

    arn: str
    account: str
    names: tuple[str, ...]
    is_root: bool = False


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def document(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if isinstance(raw, (str, bytes)) else dict(raw)


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _principal_matches(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for name in as_list(principal.get("AWS")):
        if name == "*" or name in caller.names or (caller.is_root and name == caller.account):
            return True
    return False  # Service and Federated principals are AWS services, never a signed caller of the local cloud


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    if_exists = operator.endswith("IfExists")
    op = operator.removesuffix("IfExists").split(":")[-1]  # ForAnyValue:/ForAllValues: read as single-valued keys
    wanted = [str(v) for v in as_list(expected)]
    actual = context.get(key)
    if op == "Null":
        return (actual is None) == (wanted[0].lower() == "true")
    if actual is None:
        return if_exists or op.startswith(("StringNot", "ArnNot"))  # AWS: a negated operator holds on a missing key
    if op == "Bool":
        return actual.lower() in [w.lower() for w in wanted]
    negated = "Not" in op
    if op.startswith("StringEqualsIgnoreCase") or op.startswith("StringNotEqualsIgnoreCase"):
        found = actual.lower() in [w.lower() for w in wanted]
    elif op in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        found = actual in wanted if op.startswith("String") else any(_glob(w, actual) for w in wanted)
    elif op in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        found = any(_glob(w, actual) for w in wanted)
    else:
        return False  # an operator we do not evaluate never grants (and never denies) by guess
    return not found if negated else found


def _conditions_hold(condition: dict[str, Any], context: dict[str, str]) -> bool:
    return all(_condition_holds(op, key, value, context) for op, checks in condition.items() for key, value in checks.items())


def statement_matches(statement: dict[str, Any], action: str, resource: str, context: dict[str, str], caller: Caller | None) -> bool:
    """Whether ``statement`` speaks about this request (its effect is then the statement's ``Effect``)."""
    if "NotAction" in statement:
        if any(_glob(p, action, ignore_case=True) for p in as_list(statement["NotAction"])):
            return False
    elif not any(_glob(p, action, ignore_case=True) for p in as_list(statement.get("Action"))):
        return False
    if "NotResource" in statement:
        if any(_glob(p, resource) for p in as_list(statement["NotResource"])):
            return False
    elif "Resource" in statement and not any(_glob(p, resource) for p in as_list(statement["Resource"])):
        return False
    if caller is not None and "Principal" in statement and not _principal_matches(statement["Principal"], caller):
        return False
    if caller is not None and "NotPrincipal" in statement and _principal_matches(statement["NotPrincipal"], caller):
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def effects(policy: dict[str, Any], action: str, resource: str, context: dict[str, str], caller: Caller | None = None) -> set[str]:
    """The effects (``Allow``/``Deny``) of the statements of ``policy`` that match; ``caller`` for resource policies."""
    return {str(s.get("Effect")) for s in as_list(policy.get("Statement")) if statement_matches(s, action, resource, context, caller)}
