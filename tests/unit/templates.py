"""Small readers over a synthesized CloudFormation template, so tests state expectations, not JSON paths."""

from __future__ import annotations

import functools
import json
from importlib import resources


def of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == resource_type}


def one(template: dict, resource_type: str, **props) -> tuple[str, dict]:
    """The single resource of that type whose properties include ``props``."""
    found = [(lid, r) for lid, r in of_type(template, resource_type).items() if all(r["Properties"].get(k) == v for k, v in props.items())]
    assert len(found) == 1, f"expected one {resource_type} with {props}, found {[lid for lid, _ in found]}"
    return found[0]


def tags(resource: dict) -> dict[str, str]:
    """The resource's tags, from the property its registry schema names (``Tags``; ``ResourceTags`` for a budget)."""
    return {t["Key"]: t["Value"] for t in resource["Properties"].get(tag_property(resource["Type"]), [])}


def ref(logical_id: str) -> dict:
    return {"Ref": logical_id}


@functools.cache
def _provider_schemas(region: str = "us-east-1") -> dict[str, str]:
    return json.loads(resources.files("cfnlint.data.schemas.providers").joinpath(f"{region}.json").read_text())


@functools.cache
def _schema(resource_type: str) -> dict:
    schema_id = _provider_schemas()[resource_type]
    return json.loads(resources.files("cfnlint.data.schemas.resources").joinpath(f"{schema_id}.json").read_text())


@functools.cache
def tag_property(resource_type: str) -> str:
    """The property that holds a type's tags, as its registry schema says (``/properties/Tags`` by default)."""
    try:
        pointer = _schema(resource_type).get("tagging", {}).get("tagProperty", "/properties/Tags")
    except KeyError:  # not a registry type (AWS::CDK::Metadata)
        return "Tags"
    return str(pointer).removeprefix("/properties/")


@functools.cache
def is_taggable(resource_type: str) -> bool:
    """What CloudFormation's registry schema (as cfn-lint ships it) says: can this type carry tags?"""
    schema_id = _provider_schemas()[resource_type]
    schema = json.loads(resources.files("cfnlint.data.schemas.resources").joinpath(f"{schema_id}.json").read_text())
    return bool(schema.get("tagging", {}).get("taggable", "Tags" in schema.get("properties", {})))
