"""Small readers over a synthesized CloudFormation template, so tests state expectations, not JSON paths."""

from __future__ import annotations


def of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == resource_type}


def one(template: dict, resource_type: str, **props) -> tuple[str, dict]:
    """The single resource of that type whose properties include ``props``."""
    found = [(lid, r) for lid, r in of_type(template, resource_type).items() if all(r["Properties"].get(k) == v for k, v in props.items())]
    assert len(found) == 1, f"expected one {resource_type} with {props}, found {[lid for lid, _ in found]}"
    return found[0]


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}


def ref(logical_id: str) -> dict:
    return {"Ref": logical_id}
