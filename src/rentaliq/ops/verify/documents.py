"""Pure helpers that read AWS documents: partitions, tag lists, IAM policy documents and security-group rules.

No API calls here; each function turns an answer's document into the plain values the areas compare.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def tag_map(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list or []}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def policy_document(document: Any) -> dict[str, Any]:
    """IAM answers URL-encoded JSON; boto3 usually decodes it already."""
    if isinstance(document, str):
        return json.loads(unquote(document))  # type: ignore[no-any-return]  # a JSON policy is an object
    return document or {}


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(document.get("Statement"))


def principals(statement: dict[str, Any], kind: str) -> list[str]:
    """The statement's principals of one kind (``AWS``, ``Service``); ``*`` stands for everyone."""
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in as_list(principal.get(kind))]
    return []


def sg_rules(permissions: list[dict[str, Any]]) -> list[str]:
    """Each rule as ``proto port(s) <- peer``: ``tcp 443 0.0.0.0/0``, ``tcp 5432 sg-…``, ``all all 0.0.0.0/0``."""
    rules: set[str] = set()
    for perm in permissions:
        proto = perm.get("IpProtocol")
        proto = "all" if proto in ("-1", -1) else str(proto)
        low, high = perm.get("FromPort"), perm.get("ToPort")
        ports = "all" if proto == "all" or low is None else str(low) if low == high else f"{low}-{high}"
        peers = [r["CidrIp"] for r in perm.get("IpRanges", [])]
        peers += [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])]
        peers += [g["GroupId"] for g in perm.get("UserIdGroupPairs", [])]
        peers += [p["PrefixListId"] for p in perm.get("PrefixListIds", [])]
        rules.update(f"{proto} {ports} {peer}" for peer in peers)
    return sorted(rules)


def sg_rule(port: int | None, peer: str) -> str:
    """A rule the spec asks for, written as :func:`sg_rules` writes live ones (``None``: all traffic)."""
    return f"all all {peer}" if port is None else f"tcp {port} {peer}"
