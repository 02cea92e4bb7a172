"""What CloudFormation does when a property changes, from the resource schemas AWS publishes (shipped by cfn-lint).

One source of truth for the local cloud: the change sets' ``Replacement``/``RequiresRecreation`` and what an
update really does both read this table, and so do the providers (``Provider.replace_on_change``).

- ``createOnlyProperties``: a change replaces the resource (``RequiresRecreation: Always``);
- ``conditionalCreateOnlyProperties``: a change may replace it (``Conditionally``); which changes do is written
  in AWS's property reference, and ``replaces_conditionally`` holds those rules for the properties we use;
- everything else is updated in place (``Never``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal

Recreation = Literal["Always", "Conditionally", "Never"]

_SCHEMAS = resources.files("cfnlint") / "data" / "schemas"


@dataclass(frozen=True)
class Rules:
    """One type's update rules: top-level properties, plus nested create-only paths (``DnsOptions/...``)."""

    type_name: str
    always: frozenset[str]
    conditional: frozenset[str]
    nested_always: tuple[tuple[str, ...], ...]
    tag_property: str | None
    primary_identifier: tuple[str, ...]

    def recreation(self, prop: str) -> Recreation:
        if prop in self.always:
            return "Always"
        if prop in self.conditional or any(path[0] == prop for path in self.nested_always):
            return "Conditionally"
        return "Never"


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    return json.loads((_SCHEMAS / "providers" / "us-east-1.json").read_text())


@cache
def schema(type_name: str) -> dict[str, Any]:
    """The CloudFormation registry schema of ``type_name`` (KeyError for a type AWS does not have)."""
    return json.loads((_SCHEMAS / "resources" / f"{_index()[type_name]}.json").read_text())


def _paths(pointers: list[str] | None) -> list[tuple[str, ...]]:
    return [tuple(p.removeprefix("/properties/").split("/")) for p in pointers or [] if p.startswith("/properties/")]


@cache
def rules(type_name: str) -> Rules:
    document = schema(type_name)
    create_only = _paths(document.get("createOnlyProperties"))
    tag_pointer = (document.get("tagging") or {}).get("tagProperty", "/properties/Tags" if "Tags" in document.get("properties", {}) else None)
    return Rules(
        type_name=type_name,
        always=frozenset(p[0] for p in create_only if len(p) == 1),
        conditional=frozenset(p[0] for p in _paths(document.get("conditionalCreateOnlyProperties"))),
        nested_always=tuple(p for p in create_only if len(p) > 1),
        tag_property=tag_pointer.removeprefix("/properties/") if tag_pointer else None,
        primary_identifier=tuple(p[0] for p in _paths(document.get("primaryIdentifier"))),
    )


def create_only(type_name: str) -> frozenset[str]:
    """Top-level properties whose every change replaces the resource."""
    return rules(type_name).always


def requires_recreation(type_name: str, prop: str) -> Recreation:
    return rules(type_name).recreation(prop)


# For conditional properties: (old value, new value) -> does this change replace the resource, on AWS?
# From AWS's property reference ("Update requires: ..."); a conditional property not listed here replaces.
_IN_PLACE: Callable[[Any, Any], bool] = lambda old, new: False  # noqa: E731
_CONDITIONAL: dict[tuple[str, str], Callable[[Any, Any], bool]] = {
    # "Updating InstanceTenancy requires no replacement only if you are updating its value from dedicated to default."
    ("AWS::EC2::VPC", "InstanceTenancy"): lambda old, new: (new or "default") != "default",
    ("AWS::EC2::Subnet", "Ipv6CidrBlock"): _IN_PLACE,
    # Conditional for Aurora members and read replicas only; a standalone instance is modified in place.
    **{
        ("AWS::RDS::DBInstance", p): _IN_PLACE
        for p in (
            "AutoMinorVersionUpgrade",
            "BackupRetentionPeriod",
            "DBParameterGroupName",
            "MultiAZ",
            "PreferredMaintenanceWindow",
            "PerformanceInsightsKMSKeyId",
        )
    },
    # An EBS-backed instance (a NAT instance): "Update requires: Some interruptions" (type) and "No interruption" (VPC SGs).
    ("AWS::EC2::Instance", "InstanceType"): _IN_PLACE,
    ("AWS::EC2::Instance", "SecurityGroupIds"): _IN_PLACE,
    # Removing AvailabilityZone (letting RDS choose) keeps the instance; naming another one moves it.
    ("AWS::RDS::DBInstance", "AvailabilityZone"): lambda old, new: new is not None,
}


def _at(props: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = props
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def replaces_conditionally(type_name: str, prop: str, old: Any, new: Any) -> bool:
    rule = _CONDITIONAL.get((type_name, prop))
    return True if rule is None else rule(old, new)


def change_recreation(type_name: str, prop: str, old: dict[str, Any], new: dict[str, Any]) -> Recreation:
    """What changing ``prop`` from ``old`` to ``new`` (resolved properties) does: the rule ``must_replace`` executes,
    so a change set reports what the update will really do. A conditional property without a known rule stays
    ``Conditionally`` (executed as a replacement: AWS may replace)."""
    type_rules = rules(type_name)
    if prop in type_rules.always:
        return "Always"
    nested = [path for path in type_rules.nested_always if path[0] == prop]
    if nested:
        return "Always" if any(_at(old, path) != _at(new, path) for path in nested) else "Never"
    if prop in type_rules.conditional:
        if (type_name, prop) not in _CONDITIONAL:
            return "Conditionally"
        return "Always" if replaces_conditionally(type_name, prop, old.get(prop), new.get(prop)) else "Never"
    return "Never"


def must_replace(type_name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The changed properties (resolved values) that make this update a replacement on AWS; empty: in place."""
    type_rules = rules(type_name)
    causes = [p for p in sorted(type_rules.always) if old.get(p) != new.get(p)]
    causes += ["/".join(path) for path in type_rules.nested_always if _at(old, path) != _at(new, path)]
    causes += [p for p in sorted(type_rules.conditional) if old.get(p) != new.get(p) and replaces_conditionally(type_name, p, old.get(p), new.get(p))]
    return causes


# The property that names a resource. When a resource with a name set in the template must be replaced and
# that name stays the same, CloudFormation refuses: two resources cannot have one name.
NAME_PROPERTY: dict[str, str] = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::RDS::DBParameterGroup": "DBParameterGroupName",
    "AWS::RDS::DBSubnetGroup": "DBSubnetGroupName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}
