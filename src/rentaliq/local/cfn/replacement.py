"""Replacements in the local CloudFormation: reported by change sets, and carried out by updates, as on AWS.

- ``DescribeChangeSet``: every ``Modify`` carries ``Replacement`` (True | Conditional | False), ``Scope`` and
  ``Details`` (one per changed property, with ``RequiresRecreation``, ``Evaluation``, ``ChangeSource`` and
  ``CausingEntity``). A resource whose properties only reach a replaced resource through Ref/GetAtt is listed
  too, as AWS lists it: its new value is known only once the replacement exists.
- Executing: an update whose resolved properties change a create-only property creates the new resource, then
  deletes the old one (``Provider.update``'s default); a resource named in the template that must be replaced
  under the same name fails with CloudFormation's own message. Resources that reference a replaced one are
  updated after it, so nothing keeps pointing at what was deleted.

The rules come from ``schemas`` (cfn-lint's copies of AWS's resource schemas): one table for both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing

from rentaliq.local.cfn import schemas
from rentaliq.local.cfn.base import Provider

_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z0-9.]+))?\}")


@dataclass
class Detail:
    """One ``ResourceChangeDetail``; attribute names are what moto's serializer picks (snake_case)."""

    target: dict[str, str]
    evaluation: str
    change_source: str
    causing_entity: str | None = None


@dataclass
class ResourceChange:
    """A ``Change``'s ``ResourceChange`` as AWS answers it (moto serializes ``Change`` from these attributes)."""

    action: str
    logical_resource_id: str
    resource_type: str
    physical_resource_id: str | None = None
    replacement: str | None = None
    scope: list[str] = field(default_factory=list)
    details: list[Detail] = field(default_factory=list)


def _references(node: Any) -> list[tuple[str, str, str | None]]:
    """(kind, logical id or parameter, attribute) for every Ref, Fn::GetAtt and ${...} under ``node``."""
    found: list[tuple[str, str, str | None]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.append(("Ref", value, None))
            elif key == "Fn::GetAtt":
                parts = value if isinstance(value, list) else str(value).split(".", 1)
                found.append(("GetAtt", str(parts[0]), ".".join(str(p) for p in parts[1:]) or None))
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                for name, attribute in _SUB_VARIABLE.findall(str(text)):
                    found.append(("GetAtt" if attribute else "Ref", name, attribute or None))
                if isinstance(value, list) and len(value) > 1:
                    found += _references(value[1])
            else:
                found += _references(value)
    elif isinstance(node, list):
        for item in node:
            found += _references(item)
    return found


def _as_text(value: Any) -> Any:
    return ",".join(str(v) for v in value) if isinstance(value, list) else (None if value is None else str(value))


def _parameter_values(template: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    return {name: _as_text(given.get(name, spec.get("Default"))) for name, spec in (template.get("Parameters") or {}).items()}


def dependency_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids, each after what it references or DependsOn (cycles are the engine's to report)."""
    order: list[str] = []

    def visit(name: str, trail: frozenset[str]) -> None:
        if name in order or name not in resources or name in trail:
            return
        depends = resources[name].get("DependsOn", [])
        for dependency in [depends] if isinstance(depends, str) else depends:
            visit(dependency, trail | {name})
        for _, dependency, _ in _references(resources[name].get("Properties", {})):
            visit(dependency, trail | {name})
        order.append(name)

    for name in resources:
        visit(name, frozenset())
    return order


def analyse(
    old_template: dict[str, Any],
    old_parameters: dict[str, Any],
    new_template: dict[str, Any],
    new_parameters: dict[str, Any],
    physical_ids: dict[str, str] | None = None,
) -> dict[str, ResourceChange]:
    """The Modify changes between two templates, with AWS's replacement details, in dependency order.

    ``*_parameters`` are the given parameter values (defaults are filled in from each template).
    """
    old_resources = old_template.get("Resources") or {}
    new_resources = new_template.get("Resources") or {}
    before = _parameter_values(old_template, old_parameters)
    after = _parameter_values(new_template, new_parameters)
    changed_parameters = {name for name in after if after[name] != before.get(name)}
    physical_ids = physical_ids or {}
    changes: dict[str, ResourceChange] = {}
    for name in dependency_order(new_resources):
        if name not in old_resources:
            continue
        old, new = old_resources[name], new_resources[name]
        type_name = new.get("Type", "")
        try:
            type_rules = schemas.rules(type_name)
        except KeyError:
            continue
        details = _details(type_rules, old.get("Properties") or {}, new.get("Properties") or {}, changed_parameters, changes, (before, after))
        scope = sorted({d.target["Attribute"] for d in details})
        if old.get("Metadata") != new.get("Metadata"):
            scope.append("Metadata")
        if not scope and old == new:
            continue
        changes[name] = ResourceChange(
            action="Modify",
            logical_resource_id=name,
            resource_type=type_name,
            physical_resource_id=physical_ids.get(name),
            replacement=_replacement(details),
            scope=sorted(set(scope)),
            details=details,
        )
    return changes


class _Unknown(Exception):
    """A value that depends on something other than parameters (GetAtt, Fn::*): known only when executing."""


def _static(node: Any, parameters: dict[str, Any]) -> Any:
    """``node`` with Refs to parameters replaced by their values; :class:`_Unknown` if any other intrinsic remains."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in parameters:
            return parameters[node["Ref"]]
        if any(key == "Ref" or key.startswith("Fn::") for key in node):
            raise _Unknown
        return {key: _static(value, parameters) for key, value in node.items()}
    if isinstance(node, list):
        return [_static(item, parameters) for item in node]
    return node


def _recreation(type_rules: schemas.Rules, prop: str, old: dict[str, Any], new: dict[str, Any], parameters: tuple[dict[str, Any], dict[str, Any]]) -> str:
    """RequiresRecreation by the rule the update executes (``schemas.change_recreation``) when the old and new values
    are known from the templates and parameters; the schema's static answer when they are not."""
    try:
        before, after = _static(old.get(prop), parameters[0]), _static(new.get(prop), parameters[1])
    except _Unknown:
        return type_rules.recreation(prop)
    return schemas.change_recreation(type_rules.type_name, prop, {prop: before}, {prop: after})


def _details(
    type_rules: schemas.Rules,
    old: dict[str, Any],
    new: dict[str, Any],
    changed_parameters: set[str],
    changes: dict[str, ResourceChange],
    parameters: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),
) -> list[Detail]:
    details: list[Detail] = []
    for prop in sorted(set(old) | set(new)):
        attribute = "Tags" if prop == type_rules.tag_property else "Properties"
        recreation = "Never" if attribute == "Tags" else _recreation(type_rules, prop, old, new, parameters)
        target = {"Attribute": attribute, "Name": prop, "RequiresRecreation": recreation}
        if attribute == "Tags":
            target.pop("Name")
        if old.get(prop) != new.get(prop):
            references = _references(new.get(prop))
            dynamic = any(kind == "GetAtt" or name in changes for kind, name, _ in references)
            details.append(Detail(dict(target), "Dynamic" if dynamic else "Static", "DirectModification"))
            continue
        for kind, name, attribute_name in _references(new.get(prop)):
            if kind == "Ref" and name in changed_parameters:
                details.append(Detail(dict(target), "Static", "ParameterReference", name))
            elif name in changes and changes[name].replacement in ("True", "Conditional"):
                certain = changes[name].replacement == "True"
                if kind == "Ref":
                    details.append(Detail(dict(target), "Static" if certain else "Dynamic", "ResourceReference", name))
                else:
                    details.append(Detail(dict(target), "Dynamic", "ResourceAttribute", f"{name}.{attribute_name}"))
    unique: list[Detail] = []
    for detail in details:  # one per (property, source, cause), as AWS lists them
        if detail not in unique:
            unique.append(detail)
    return unique


def _replacement(details: list[Detail]) -> str:
    """True when a create-only property certainly changes; Conditional when it may; else False."""
    if any(d.target["RequiresRecreation"] == "Always" and d.evaluation == "Static" for d in details):
        return "True"
    if any(d.target["RequiresRecreation"] in ("Always", "Conditionally") for d in details):
        return "Conditional"
    return "False"


def _stack_parameters(stack) -> dict[str, Any]:
    resource_map = getattr(stack, "resource_map", None)
    return dict(getattr(resource_map, "input_parameters", {}) or {}) if resource_map is not None else {}


def _physical_ids(stack) -> dict[str, str]:
    resource_map = getattr(stack, "resource_map", None)
    parsed = getattr(resource_map, "_parsed_resources", {}) if resource_map is not None else {}
    return {name: r.physical_resource_id for name, r in parsed.items() if hasattr(r, "physical_resource_id")}


def describe(change_set) -> list[ResourceChange]:
    """The change set's resource changes: moto's Add/Remove, and our Modify with replacement details."""
    stack = change_set.stack
    old_template = stack.template_dict if isinstance(getattr(stack, "template_dict", None), dict) else {}
    physical_ids = _physical_ids(stack)
    modify = analyse(old_template, _stack_parameters(stack), change_set.template_dict, change_set.parameters or {}, physical_ids)
    changes: list[ResourceChange] = []
    old_resources = old_template.get("Resources") or {}
    for name, resource in (change_set.template_dict.get("Resources") or {}).items():
        if name not in old_resources:
            changes.append(ResourceChange(action="Add", logical_resource_id=name, resource_type=resource.get("Type", "")))
    changes += modify.values()
    for name, resource in old_resources.items():
        if name not in (change_set.template_dict.get("Resources") or {}):
            changes.append(
                ResourceChange(action="Remove", logical_resource_id=name, resource_type=resource.get("Type", ""), physical_resource_id=physical_ids.get(name))
            )
    return changes


def install(registry: dict[str, Provider]) -> None:
    """Change sets report replacements, and dependents of a replaced resource follow it in the Modify list.

    Executing them is the engine's (:mod:`operations` ``update_resource``): it replaces by the same
    ``schemas.must_replace`` rules, creates the new resource first and deletes the old one in the clean-up phase.
    """

    def diff(self) -> list[ResourceChange]:
        return describe(self)

    cfn_models.ChangeSet.diff = diff

    original_build_resource_diff = parsing.ResourceMap.build_resource_diff

    def build_resource_diff(self, other_template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        """moto's Add/Modify/Remove, plus resources reaching a replaced one through Ref/GetAtt, in dependency order."""
        actions = original_build_resource_diff(self, other_template, parameters)
        old_template = {"Parameters": self._template.get("Parameters", {}) if isinstance(self._template, dict) else {}, "Resources": self._resource_json_map}
        given = parameters if parameters is not None else dict(self.input_parameters)
        modified = analyse(old_template, dict(self.input_parameters), other_template, given)
        names = set(actions["Modify"]) | {name for name, change in modified.items() if change.details}
        order = dependency_order(other_template.get("Resources") or {})
        actions["Modify"] = [name for name in order if name in names]
        return actions

    parsing.ResourceMap.build_resource_diff = build_resource_diff
