"""IMPORT change sets: existing resources adopted into a stack, never created or modified, as AWS documents.

``CreateChangeSet --change-set-type IMPORT --resources-to-import [{ResourceType, LogicalResourceId,
ResourceIdentifier}]`` on a new stack (REVIEW_IN_PROGRESS) or an existing one. Checked when the change set is
created, with AWS's messages: every logical id in the template, types matching, the identifier keys being the
type's primary identifier, a DeletionPolicy on every imported resource, no other resource (nor the Outputs)
added, changed or removed, each resource existing and in no other stack. Executing emits IMPORT_IN_PROGRESS /
IMPORT_COMPLETE per resource and leaves the stack IMPORT_COMPLETE; later updates treat the resources as any other.

`rentaliq up ENV --restore-retained` takes retained PROD buckets back with this.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.responses import CloudFormationResponse

from rentaliq.local.cfn import schemas
from rentaliq.local.cfn.base import Context
from rentaliq.local.cfn.replacement import ResourceChange

# Type -> read(identifier value, ctx) -> physical id; raises when the resource does not exist. The identifier's
# key is the type's primaryIdentifier in AWS's schema (BucketName, Id = the secret's ARN, DBInstanceIdentifier).
_READERS: dict[str, Callable[[str, Context], str]] = {
    "AWS::S3::Bucket": lambda v, ctx: (ctx.client("s3").head_bucket(Bucket=v), v)[1],
    "AWS::SecretsManager::Secret": lambda v, ctx: ctx.client("secretsmanager").describe_secret(SecretId=v)["ARN"],
    "AWS::RDS::DBInstance": lambda v, ctx: ctx.client("rds").describe_db_instances(DBInstanceIdentifier=v)["DBInstances"][0]["DBInstanceIdentifier"],
}
IMPORTABLE_TYPES = tuple(sorted(_READERS))

_RESOURCES_TO_IMPORT: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("rentaliq_import", default=None)


def _key(type_name: str) -> str:
    return schemas.rules(type_name).primary_identifier[0]


def _fail(message: str) -> None:
    raise ValidationError(message=message)


def _identifier(item: dict[str, Any]) -> dict[str, str]:
    identifier = item.get("ResourceIdentifier") or {}
    if isinstance(identifier, list):  # query-protocol map, when not already parsed into a dict
        identifier = {e.get("key", e.get("Key")): e.get("value", e.get("Value")) for e in identifier}
    return {str(k): str(v) for k, v in identifier.items()}


def validate(backend, stack, template: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, str]:
    """AWS's import checks; returns logical id -> physical id of every resource to import."""
    resources = template.get("Resources") or {}
    missing = [i.get("LogicalResourceId") for i in items if i.get("LogicalResourceId") not in resources]
    if missing:
        _fail(f"The logical resource ids [{', '.join(map(str, missing))}] provided in ResourcesToImport do not exist in the template.")
    unsupported = sorted({i["ResourceType"] for i in items if i.get("ResourceType") not in _READERS})
    if unsupported:
        _fail(
            f"The following resource types [{', '.join(unsupported)}] are not supported for resource import by the local cloud; "
            f"importable: {', '.join(IMPORTABLE_TYPES)}"
        )
    for item in items:
        declared = resources[item["LogicalResourceId"]].get("Type")
        if declared != item["ResourceType"]:
            _fail(f"The resource type {item['ResourceType']} of {item['LogicalResourceId']} in ResourcesToImport does not match the template's {declared}.")
        key = _key(item["ResourceType"])
        if set(_identifier(item)) != {key}:
            _fail(f"Invalid ResourceIdentifier {_identifier(item)} for {item['LogicalResourceId']}: {item['ResourceType']} is identified by [{key}].")
        given = (resources[item["LogicalResourceId"]].get("Properties") or {}).get(key)
        if isinstance(given, str) and given != _identifier(item)[key]:
            _fail(f"The {key} {given!r} of {item['LogicalResourceId']} in the template does not match the ResourceIdentifier {_identifier(item)[key]!r}.")
    no_policy = [i["LogicalResourceId"] for i in items if "DeletionPolicy" not in resources[i["LogicalResourceId"]]]
    if no_policy:
        _fail(f"The following resources to import [{', '.join(no_policy)}] must have DeletionPolicy attribute specified in the template.")
    imported = {i["LogicalResourceId"] for i in items}
    already = [name for name in imported if name in (stack.template_dict.get("Resources") or {} if stack else {})]
    if already:
        _fail(f"The logical resource ids [{', '.join(sorted(already))}] provided in ResourcesToImport are already in the stack.")
    old = (stack.template_dict if stack is not None and isinstance(stack.template_dict, dict) else {}) or {}
    old_resources = old.get("Resources") or {}
    others = sorted(name for name in set(resources) | set(old_resources) if name not in imported and resources.get(name) != old_resources.get(name))
    if others:
        _fail(
            f"You have modified resources [{', '.join(others)}] in your template that are not being imported. "
            "Update, create or delete operations cannot be executed during import operations."
        )
    if template.get("Outputs") != old.get("Outputs") and template.get("Outputs"):
        _fail("As part of the import operation, you cannot modify or add [Outputs]")
    return _locate(backend, items)


def _locate(backend, items: list[dict[str, Any]]) -> dict[str, str]:
    """Each resource exists, and no stack owns it already."""
    ctx = Context(backend.account_id, backend.region_name, "import", "import")
    physical: dict[str, str] = {}
    for item in items:
        key, read = _key(item["ResourceType"]), _READERS[item["ResourceType"]]
        value = _identifier(item)[key]
        try:
            physical[item["LogicalResourceId"]] = read(value, ctx)
        except Exception:  # noqa: BLE001 - any "not found" answer of the service
            _fail(
                f"Resource {item['LogicalResourceId']} of type {item['ResourceType']} with identifier {{{key}={value}}} "
                f"does not exist; only existing resources can be imported."
            )
        for other in backend.stacks.values():
            for resource in getattr(other.resource_map, "_parsed_resources", {}).values():
                same_type = getattr(resource, "type_name", None) == item["ResourceType"]
                if same_type and getattr(resource, "physical_id", None) == physical[item["LogicalResourceId"]]:
                    _fail(f"{value} already exists in stack {other.stack_id}")
    return physical


def describe(change_set) -> list[ResourceChange]:
    return [
        ResourceChange(
            action="Import", logical_resource_id=name, resource_type=change_set.template_dict["Resources"][name]["Type"], physical_resource_id=physical_id
        )
        for name, physical_id in change_set.import_physical_ids.items()
    ]


def execute(backend, change_set) -> None:
    """Adopt the resources: no provider call creates or modifies anything."""
    from rentaliq.local.cfn import engine
    from rentaliq.local.cfn.operations import local_resource

    stack = backend.stacks[change_set.stack_id]
    stack.status = "IMPORT_IN_PROGRESS"
    stack._add_stack_event("IMPORT_IN_PROGRESS", resource_status_reason="User Initiated")
    template = change_set.template_dict
    if not stack.template_dict or not isinstance(stack.template_dict, dict) or not stack.template_dict.get("Resources"):
        stack.template = change_set.template
        stack._parse_template()
        stack.parameters = change_set.parameters
        stack.resource_map = stack._create_resource_map()
        stack.resource_map._template = template
        stack.description = template.get("Description")
    resource_map = stack.resource_map
    adopted = {}
    for name, physical_id in change_set.import_physical_ids.items():
        resource_json = template["Resources"][name]
        engine._event(stack, name, physical_id, resource_json["Type"], "IMPORT_IN_PROGRESS", "Resource import started.")
        adopted[name] = local_resource(stack, name, resource_json["Type"], physical_id, {}, resource_json)  # types checked by ``validate``
        resource_map._parsed_resources[name] = adopted[name]
    resource_map._resource_json_map = {**resource_map._resource_json_map, **{n: template["Resources"][n] for n in adopted}}
    for name, resource in adopted.items():  # properties resolve once every adopted resource is known (Ref between them)
        resource.props = parsing.clean_json(template["Resources"][name].get("Properties", {}), resource_map)
        engine._event(stack, name, resource.physical_id, resource.type_name, "IMPORT_COMPLETE", "Resource import completed.")
    stack.template = change_set.template
    stack._parse_template()
    resource_map._template = stack.template_dict
    stack.output_map = stack._create_output_map()
    stack.status = "IMPORT_COMPLETE"
    stack._add_stack_event("IMPORT_COMPLETE")
    change_set.execution_status = "EXECUTE_COMPLETE"


def _roll_back(stack, change_set, error: BaseException) -> None:
    """Forget what the failed import adopted (it was never created by us, so nothing is deleted)."""
    from rentaliq.local.cfn import engine

    resource_map = stack.resource_map
    for name in change_set.import_physical_ids:
        resource_map._parsed_resources.pop(name, None)
        resource_map._resource_json_map = {k: v for k, v in resource_map._resource_json_map.items() if k != name}
    stack.status = "IMPORT_ROLLBACK_COMPLETE"
    stack._add_stack_event("IMPORT_ROLLBACK_COMPLETE", resource_status_reason=engine._reason(error))
    change_set.execution_status = "EXECUTE_FAILED"


def install() -> None:
    """Hooks: the response hands ResourcesToImport over; the backend validates, describes and executes IMPORT."""
    response_create = CloudFormationResponse.create_change_set

    def create_change_set_response(self):
        if self._get_param("ChangeSetType") != "IMPORT":
            return response_create(self)
        token = _RESOURCES_TO_IMPORT.set(self._get_param("ResourcesToImport", []) or [])
        try:
            return response_create(self)
        finally:
            _RESOURCES_TO_IMPORT.reset(token)

    CloudFormationResponse.create_change_set = create_change_set_response

    backend_cls = cfn_models.CloudFormationBackend
    backend_create = backend_cls.create_change_set

    def create_change_set(self, stack_name, change_set_name, template, parameters, description, change_set_type, *args, **kwargs):
        if change_set_type != "IMPORT":
            return backend_create(self, stack_name, change_set_name, template, parameters, description, change_set_type, *args, **kwargs)
        from rentaliq.local.cfn import engine, stack_api
        from rentaliq.local.cfn import operations as ops

        items = _RESOURCES_TO_IMPORT.get() or []
        if not items:
            _fail("ResourcesToImport is required for a change set of type IMPORT.")
        engine.check_template_types(template)
        template_dict = cfn_models.Stack.parse_template(template)
        stack = next((s for s in self.stacks.values() if s.name == stack_name), None)
        if stack is not None:
            ops._check_idle(stack, "IMPORT")  # one operation per stack, as for any other change set
        physical = validate(self, stack, template_dict, items)
        if stack is None:
            options = {k: kwargs.get(k) for k in ("notification_arns", "tags", "role_arn")}
            stack = stack_api.new_stack(self, stack_name, parameters, **options)
            stack.status = "REVIEW_IN_PROGRESS"
            stack._add_stack_event("REVIEW_IN_PROGRESS", resource_status_reason="User Initiated")
        change_set = cfn_models.ChangeSet.__new__(cfn_models.ChangeSet)
        change_set.import_physical_ids = physical
        change_set_id = cfn_models.generate_changeset_id(change_set_name, self.region_name, self.account_id)
        change_set.__init__(  # type: ignore[misc]
            change_set_type="IMPORT",
            change_set_id=change_set_id,
            change_set_name=change_set_name,
            stack=stack,
            template=template,
            parameters=parameters,
            description=description,
            notification_arns=kwargs.get("notification_arns"),
            tags=kwargs.get("tags"),
            role_arn=kwargs.get("role_arn"),
        )
        change_set.status, change_set.execution_status = "CREATE_COMPLETE", "AVAILABLE"
        self.change_sets[change_set_id] = change_set
        return change_set_id, stack.stack_id

    backend_cls.create_change_set = create_change_set

    diff = cfn_models.ChangeSet.diff

    def import_aware_diff(self):
        return describe(self) if self.change_set_type == "IMPORT" else diff(self)

    cfn_models.ChangeSet.diff = import_aware_diff

    backend_execute = backend_cls.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.describe_change_set(change_set_name)
        if change_set.change_set_type != "IMPORT":
            return backend_execute(self, change_set_name, stack_name)
        from rentaliq.local.cfn import flows
        from rentaliq.local.cfn import operations as ops

        stack = self.stacks[change_set.stack_id]
        # No provider call: the whole import is one change of state, made and saved at once (nothing to recover),
        # but it is still the stack's one operation (claimed like any other, so it cannot overlap one).
        with ops.changing():
            ops.claim(self, stack, "IMPORT", change_set)
            try:
                execute(self, change_set)
            except Exception as error:  # noqa: BLE001 - AWS rolls an import back; the resources stay as they were
                _roll_back(stack, change_set, error)
            finally:
                stack.rentaliq_operation = None
                flows.remove_other_change_sets(self, change_set)
        ops.commit()

    backend_cls.execute_change_set = execute_change_set
