"""CloudFormation's stack API on moto's backend, with CloudFormation's rules.

- CreateStack, UpdateStack, ExecuteChangeSet and DeleteStack claim the stack (one operation at a time; AWS's
  "Stack:<arn> is in <STATUS> state and can not be updated.") and run on a worker thread (:mod:`flows`);
- executing a change set makes the stack's other change sets OBSOLETE, and only an AVAILABLE one executes;
- a CREATE change set for a name that exists fails as on AWS (moto made a second stack of the same name),
  except on a stack still in review, which it replaces;
- moto's maps are lazy: outside an operation, describing a stack never creates a resource or reads an output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import AlreadyExistsException, CloudFormationError, ValidationError
from moto.cloudformation.utils import generate_stack_id
from moto.core.common_models import CloudFormationModel

from rentaliq.local.cfn import flows
from rentaliq.local.cfn import operations as ops


def _by_name(backend: Any, name_or_id: str) -> Any:
    return next((s for s in backend.stacks.values() if name_or_id in (s.stack_id, s.name)), None)


class ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFound"


def new_stack(backend: Any, name: str, parameters: Any, **options: Any) -> Any:
    """A stack registered under a fresh id (CreateStack, or the review stack of a CREATE/IMPORT change set)."""
    stack = cfn_models.Stack(
        stack_id=generate_stack_id(name, backend.region_name, backend.account_id),
        name=name,
        template={},
        parameters=parameters,
        account_id=backend.account_id,
        region_name=backend.region_name,
        **options,
    )
    backend.stacks[stack.stack_id] = stack
    return stack


def install(check_template_types: Callable[[Any], None]) -> None:
    backend_cls = cfn_models.CloudFormationBackend
    original_create_change_set = backend_cls.create_change_set

    def create_change_set(self, stack_name, change_set_name, template, parameters, description, change_set_type, *args, **kwargs):
        check_template_types(template)
        existing = _by_name(self, stack_name)
        if change_set_type == "UPDATE" and existing is not None:
            ops._check_idle(existing, "UPDATE")
        if change_set_type == "CREATE" and existing is not None:
            if existing.status != "REVIEW_IN_PROGRESS" or getattr(existing, "rentaliq_operation", None) is not None:
                raise AlreadyExistsException(f"Stack [{stack_name}] already exists and cannot be created again with the changeSet [{change_set_name}].")
            _forget(self, existing)  # a fresh review stack instead of a second one of the same name
        return original_create_change_set(self, stack_name, change_set_name, template, parameters, description, change_set_type, *args, **kwargs)

    def create_stack(
        self,
        name,
        template,
        parameters,
        notification_arns=None,
        tags=None,
        role_arn=None,
        enable_termination_protection=False,
        timeout_in_mins=None,
        stack_policy_body=None,
    ):
        check_template_types(template)
        if _by_name(self, name) is not None:
            raise AlreadyExistsException(f"Stack [{name}] already exists")
        stack = new_stack(
            self,
            name,
            parameters,
            notification_arns=notification_arns,
            tags=tags,
            role_arn=role_arn,
            enable_termination_protection=enable_termination_protection,
            timeout_in_mins=timeout_in_mins,
            stack_policy_body=stack_policy_body,
        )
        operation = ops.claim(self, stack, "CREATE")
        ops.start(name, lambda: flows.run_create(self, stack, operation, template, parameters))
        return stack

    def update_stack(self, name, template, role_arn, parameters, tags):
        stack = self.get_stack(name)
        check_template_types(template)
        resolved = self._resolve_update_parameters(instance=stack, incoming_params=parameters)
        operation = ops.claim(self, stack, "UPDATE")
        ops.start(stack.name, lambda: flows.run_update(self, stack, operation, template, resolved))
        return stack

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks.get(change_set.stack_id)
        if stack is None:
            raise ValidationError(change_set.stack_id)
        operation = ops.claim(self, stack, change_set.change_set_type, change_set)
        if change_set.change_set_type == "CREATE":
            work = lambda: flows.run_create(self, stack, operation, change_set.template, change_set.parameters)  # noqa: E731
        else:
            work = lambda: flows.run_update(self, stack, operation, change_set.template, change_set.parameters)  # noqa: E731
        ops.start(stack.name, work)

    def delete_stack(self, name_or_stack_id):
        stack = _by_name(self, name_or_stack_id)
        if stack is None or stack.status == "DELETE_IN_PROGRESS":
            return None  # AWS: deleting a missing stack, or one being deleted, succeeds
        if stack.enable_termination_protection:
            raise ValidationError(message=f"Stack [{stack.name}] cannot be deleted while TerminationProtection is enabled")
        operation = ops.claim(self, stack, "DELETE")
        if not any(isinstance(r, CloudFormationModel) for r in stack.resource_map._parsed_resources.values()):
            with ops.changing():  # nothing to delete (a rolled-back or reviewed stack): done at once
                stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
            flows.finish_delete(self, stack)
            return None
        ops.start(stack.name, lambda: flows.run_delete(self, stack, operation))
        return None

    original_describe_change_set = backend_cls.describe_change_set

    def describe_change_set(self, change_set_name):
        """AWS's ChangeSetNotFound for a change set that does not exist (or was deleted), not moto's empty answer."""
        try:
            return original_describe_change_set(self, change_set_name)
        except ValidationError:  # moto's answer for a change set it does not have
            raise ChangeSetNotFound(f"ChangeSet [{change_set_name}] does not exist") from None

    _check_previous_values()
    _list_change_sets_of_one_stack()
    backend_cls.describe_change_set = describe_change_set
    backend_cls.create_change_set = create_change_set
    backend_cls.create_stack = create_stack
    backend_cls.update_stack = update_stack
    backend_cls.execute_change_set = execute_change_set
    backend_cls.delete_stack = delete_stack
    _guard_lazy_maps()


def _check_previous_values() -> None:
    """UsePreviousValue for a parameter the stack does not have: AWS's ValidationError, not moto's KeyError (a 500)."""
    from moto.cloudformation.responses import CloudFormationResponse

    original = CloudFormationResponse.create_change_set

    def create_change_set(self):
        if self._get_param("ChangeSetType", "CREATE") == "UPDATE":
            stack = _by_name(self.cloudformation_backend, self._get_param("StackName"))
            previous = stack.stack_parameters if stack is not None else {}
            for param in self._get_param("Parameters", []):
                if param.get("UsePreviousValue", False) and param["ParameterKey"] not in previous:
                    raise ValidationError(
                        message=f"Invalid input for parameter key {param['ParameterKey']}. "
                        "Cannot specify usePreviousValue as true for a parameter key not in the previous template"
                    )
        return original(self)

    CloudFormationResponse.create_change_set = create_change_set


def _list_change_sets_of_one_stack() -> None:
    """ListChangeSets answers for the stack it names (StackName is required), not every change set of the region."""
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def list_change_sets(self):
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        mine = [c for c in self.cloudformation_backend.change_sets.values() if c.stack_id == stack.stack_id]
        return ActionResult({"Summaries": mine})

    CloudFormationResponse.list_change_sets = list_change_sets


def _forget(backend: Any, stack: Any) -> None:
    """Remove a stack that never had resources (REVIEW_IN_PROGRESS), with its change sets."""
    backend.stacks.pop(stack.stack_id, None)
    for change_set_id, change_set in list(backend.change_sets.items()):
        if change_set.stack_id == stack.stack_id:
            backend.change_sets.pop(change_set_id)


def _guard_lazy_maps() -> None:
    """moto creates a resource, or resolves an output, the first time anyone looks it up. Only an operation may."""
    original_getitem = parsing.ResourceMap.__getitem__

    def getitem(self, key):
        if key not in self._parsed_resources and key in self._resource_json_map and not ops.active():
            raise KeyError(key)
        return original_getitem(self, key)

    parsing.ResourceMap.__getitem__ = getitem

    original_output = parsing.OutputMap.__getitem__

    def output(self, key):
        if key not in self._parsed_outputs and not ops.active():
            return None
        return original_output(self, key)

    parsing.OutputMap.__getitem__ = output
    cfn_models.Stack.stack_resources = property(lambda self: [r for r in self.resource_map._parsed_resources.values() if isinstance(r, CloudFormationModel)])
