"""Plug our providers into moto's CloudFormation, and give it what AWS's has and moto's lacks.

moto keeps the template parsing (Ref, GetAtt, Join, Sub, conditions, parameters, outputs); we replace the
resource layer and add:
- only the types in ``REGISTRY`` deploy; any other type fails the change set, naming the type;
- ``{{resolve:secretsmanager:...}}`` dynamic references are resolved;
- per-resource stack events, DependsOn ordering, DeletionPolicy Retain and Snapshot (a unique final snapshot);
- the stack API with CloudFormation's rules (:mod:`stack_api`): operations on a worker thread, one per stack,
  journaled before every provider call (:mod:`operations`), rolled back to what they created or modified
  (:mod:`flows`), and recovered at start-up after a crash (:mod:`recovery`).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError
from moto.core.common_models import CloudFormationModel

from rentaliq.local.cfn import audit, budgets, ec2, ec2_instances, iam, monitoring, notifications, rds, s3, scheduler, secretsmanager
from rentaliq.local.cfn.base import Context, Provider, is_not_found
from rentaliq.local.secrets_rotation import cfn as secrets_rotation

log = logging.getLogger(__name__)

REGISTRY: dict[str, Provider] = {
    cls.type_name: cls()
    for module in (ec2, ec2_instances, s3, secretsmanager, rds, iam, monitoring, notifications, budgets, scheduler, audit, secrets_rotation)
    for cls in module.PROVIDERS
}
SUPPORTED_TYPES = tuple(sorted(REGISTRY))


def _stack(account_id: str, region: str, stack_id: str):
    backend = cfn_models.cloudformation_backends[account_id][region]
    return backend.stacks.get(stack_id) or backend.deleted_stacks.get(stack_id)


def _event(stack, logical_id: str, physical_id: str | None, type_name: str, status: str, reason: str | None = None) -> None:
    if stack is None:
        return
    stack.events.append(
        cfn_models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id or "",
            resource_type=type_name,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def _reason(error: BaseException) -> str:
    message = getattr(error, "response", {}).get("Error", {}).get("Message") if hasattr(error, "response") else None
    return " ".join((message or str(error) or type(error).__name__).split())[:1000]


class LocalResource(CloudFormationModel):
    """A deployed resource as moto's CloudFormation sees it: a physical id, its properties, a provider."""

    type_name = "RentalIQ::Local::Resource"

    def __init__(
        self,
        *,
        physical_id: str,
        props: dict[str, Any],
        resource_json: dict[str, Any],
        account_id: str,
        region: str,
        stack_id: str,
        stack_name: str,
        logical_id: str,
    ):
        self.physical_id = physical_id
        self.props = props
        self.deletion_policy = resource_json.get("DeletionPolicy", "Delete")
        self.update_replace_policy = resource_json.get("UpdateReplacePolicy", "Delete")
        self.metadata = resource_json.get("Metadata", {})
        self.account_id, self.region, self.stack_id, self.stack_name = account_id, region, stack_id, stack_name
        self.logical_resource_id = logical_id
        self.cf_resource_type = self.type_name

    @staticmethod
    def cloudformation_type() -> str:
        return "RentalIQ::Local::Resource"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @property
    def provider(self) -> Provider:
        return REGISTRY[self.type_name]

    def _ctx(self) -> Context:
        return Context(self.account_id, self.region, self.stack_name, self.logical_resource_id)

    @property
    def physical_resource_id(self) -> str:
        return self.provider.ref(self.physical_id, self.props, self._ctx())

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        attributes = self.provider.attributes(self.physical_id, self.props, self._ctx())
        if attribute_name not in attributes:
            raise UnformattedGetAttTemplateException()
        return attributes[attribute_name]

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        stack = _stack(account_id, region_name, kwargs["StackId"])
        logical_id = kwargs["LogicalId"]
        ctx = Context(account_id, region_name, stack.name if stack else "stack", logical_id)
        props = cloudformation_json.get("Properties", {})
        _event(stack, logical_id, None, cls.type_name, "CREATE_IN_PROGRESS")
        try:
            physical_id = REGISTRY[cls.type_name].create(props, ctx)
        except Exception as error:
            _event(stack, logical_id, None, cls.type_name, "CREATE_FAILED", _reason(error))
            raise
        _event(stack, logical_id, physical_id, cls.type_name, "CREATE_COMPLETE")
        return cls(
            physical_id=physical_id,
            props=props,
            resource_json=cloudformation_json,
            account_id=account_id,
            region=region_name,
            stack_id=kwargs["StackId"],
            stack_name=ctx.stack_name,
            logical_id=logical_id,
        )

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        stack = _stack(account_id, region_name, original_resource.stack_id)
        new_props = cloudformation_json.get("Properties", {})
        ctx = original_resource._ctx()
        _event(stack, original_resource.logical_resource_id, original_resource.physical_id, cls.type_name, "UPDATE_IN_PROGRESS")
        try:
            physical_id = REGISTRY[cls.type_name].update(original_resource.physical_id, original_resource.props, new_props, ctx)
        except Exception as error:
            _event(stack, original_resource.logical_resource_id, original_resource.physical_id, cls.type_name, "UPDATE_FAILED", _reason(error))
            raise
        _event(stack, original_resource.logical_resource_id, physical_id, cls.type_name, "UPDATE_COMPLETE")
        return cls(
            physical_id=physical_id,
            props=new_props,
            resource_json=cloudformation_json,
            account_id=account_id,
            region=region_name,
            stack_id=original_resource.stack_id,
            stack_name=original_resource.stack_name,
            logical_id=original_resource.logical_resource_id,
        )

    def delete(self, account_id: str, region_name: str) -> None:
        stack = _stack(account_id, region_name, self.stack_id)
        if self.deletion_policy == "Retain":
            _event(stack, self.logical_resource_id, self.physical_id, self.type_name, "DELETE_SKIPPED")
            return
        _event(stack, self.logical_resource_id, self.physical_id, self.type_name, "DELETE_IN_PROGRESS")
        try:
            if self.deletion_policy == "Snapshot" and isinstance(self.provider, rds.DbInstance):
                name = final_snapshot_name(self.stack_name, self.logical_resource_id)
                self.provider.delete(self.physical_id, self.props, self._ctx(), final_snapshot=name)
            else:
                self.provider.delete(self.physical_id, self.props, self._ctx())
        except Exception as error:
            if not is_not_found(error):  # already gone (say, deleted before a crash cut the operation off): deleted
                _event(stack, self.logical_resource_id, self.physical_id, self.type_name, "DELETE_FAILED", _reason(error))
                raise
        _event(stack, self.logical_resource_id, self.physical_id, self.type_name, "DELETE_COMPLETE")


def final_snapshot_name(stack_name: str, logical_id: str) -> str:
    """CloudFormation's final snapshot name: stack, logical id and a random suffix, so every delete gets its own
    (a fixed name made the second PROD destroy fail). RDS: letters, digits, single hyphens, a letter first, <= 255."""
    import secrets

    suffix = secrets.token_hex(6)
    base = re.sub(r"[^a-z0-9]+", "-", f"{stack_name}-{logical_id}".lower()).strip("-") or "snapshot"
    if not base[0].isalpha():
        base = f"s-{base}"
    return f"{base[: 255 - len(suffix) - 1].rstrip('-')}-{suffix}"


# One module-level class per type, so deployed resources pickle by reference (local cloud persistence).
_CLASSES: dict[str, type[LocalResource]] = {}
for _type_name in REGISTRY:
    _class_name = "Local_" + _type_name.replace("::", "_")
    _cls = type(_class_name, (LocalResource,), {"type_name": _type_name, "__module__": __name__})
    globals()[_class_name] = _cls
    _CLASSES[_type_name] = _cls


def resource_class_from_type(resource_type: str):
    if resource_type in _CLASSES:
        return _CLASSES[resource_type]
    raise ValidationError(message=unsupported_message([resource_type]))


def unsupported_message(types: list[str]) -> str:
    return f"Template format error: Unrecognized resource types: [{', '.join(types)}]. The RentalIQ local cloud can create: {', '.join(SUPPORTED_TYPES)}"


def check_template_types(template: str | dict) -> None:
    """Fail at change-set creation, as AWS does, when a type cannot be deployed here."""
    document = template if isinstance(template, dict) else _parse(template)
    unknown = sorted({r.get("Type", "?") for r in (document.get("Resources") or {}).values()} - set(REGISTRY))
    if unknown:
        raise ValidationError(message=unsupported_message(unknown))


def _parse(template: str) -> dict:
    from rentaliq.local.cfn.templates import parse  # JSON, or YAML with short-form intrinsics

    return parse(template)


_DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:(?P<service>[a-z-]+):(?P<body>.*?)\}\}")


def resolve_dynamic_references(value: str, account_id: str, region: str) -> str:
    def replace(match: re.Match) -> str:
        if match.group("service") != "secretsmanager":
            raise ValidationError(message=f"dynamic reference {{{{resolve:{match.group('service')}:...}}}} is not supported by the local cloud")
        body = match.group("body")
        secret_id, _, rest = body.partition(":SecretString:")
        key, stage, version_id = (rest.split(":") + ["", "", ""])[:3]
        ctx = Context(account_id, region, "resolve", "resolve")
        kwargs: dict[str, Any] = {"SecretId": secret_id}
        if version_id:
            kwargs["VersionId"] = version_id
        elif stage:
            kwargs["VersionStage"] = stage
        secret = ctx.client("secretsmanager").get_secret_value(**kwargs)["SecretString"]
        return str(json.loads(secret)[key]) if key else secret

    return _DYNAMIC_REFERENCE.sub(replace, value)


def install() -> None:
    parsing.resource_class_from_type = resource_class_from_type

    original_clean_json = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: parsing.ResourceMap) -> Any:
        result = original_clean_json(resource_json, resources_map)
        if isinstance(result, str) and "{{resolve:" in result:
            return resolve_dynamic_references(result, resources_map._account_id, resources_map._region_name)
        return result

    parsing.clean_json = clean_json
    _patch_backend()
    _install_change_set_features()


def _install_change_set_features() -> None:
    """Hooks kept apart from the engine: replacements, IMPORT change sets, YAML, names, NoEcho (cfn-changesets)."""
    from rentaliq.local.cfn import importing, noecho, replacement, templates

    templates.install()
    replacement.install(REGISTRY)
    importing.install()
    noecho.install()


def _patch_backend() -> None:
    from rentaliq.local.cfn import stack_api

    stack_api.install(check_template_types)
    _add_termination_protection()

    original_dependency_order = parsing.ResourceMap._ResourceMap__get_resources_in_dependency_order

    def dependency_order(self) -> list[str]:
        """moto orders by Ref/GetAtt only; CloudFormation also honours DependsOn."""
        order: list[str] = []
        resources = self._resource_json_map

        def visit(name: str, trail: tuple[str, ...] = ()) -> None:
            if name in order or name not in resources:
                return
            if name in trail:
                raise ValidationError(message=f"Circular dependency between resources: {', '.join(trail)}")
            depends = resources[name].get("DependsOn", [])
            for dependency in [depends] if isinstance(depends, str) else depends:
                visit(dependency, (*trail, name))
            for dependency in sorted(references(resources[name].get("Properties", {}))):
                visit(dependency, (*trail, name))
            order.append(name)

        for name in original_dependency_order(self):
            visit(name)
        return order

    parsing.ResourceMap._ResourceMap__get_resources_in_dependency_order = dependency_order


def _empty_bucket(resource: LocalResource) -> None:
    s3 = resource._ctx().client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=resource.physical_id):
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objects:
            s3.delete_objects(Bucket=resource.physical_id, Delete={"Objects": objects, "Quiet": True})


_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def references(node: Any) -> set[str]:
    """Logical ids a template fragment depends on: Ref, Fn::GetAtt and ${...} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(_SUB_VARIABLE.findall(text))
                if isinstance(value, list) and len(value) > 1:
                    found |= references(value[1])
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def _add_termination_protection() -> None:
    """UpdateTerminationProtection, which moto lacks: `rentaliq deploy` sets it on PROD as the CDK CLI does."""
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def update_termination_protection(self) -> ActionResult:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        stack.enable_termination_protection = str(self._get_param("EnableTerminationProtection")).lower() == "true"
        return ActionResult({"StackId": stack.stack_id})

    CloudFormationResponse.update_termination_protection = update_termination_protection


def fail_interrupted_stacks() -> None:
    """At start-up: roll back every stack a crash cut off mid-operation (see :mod:`recovery`)."""
    from rentaliq.local.cfn import recovery

    recovery.recover()
