"""The three stack operations and their rollbacks, each run on a worker thread (see :mod:`operations`).

CREATE: resources in dependency order; the first failure rolls back (ROLLBACK_COMPLETE) by deleting only
what this operation created. UPDATE: adds and modifications in dependency order, replacements created
first; removals and replaced resources are deleted in the clean-up phase once everything succeeded; the
first failure rolls back (UPDATE_ROLLBACK_COMPLETE): what the update created is deleted, what it modified
restored, the previous template, parameters and outputs put back. DELETE: reverse dependency order,
DeletionPolicy honoured; the first failure stops it (DELETE_FAILED, and a new DeleteStack resumes).
"""

from __future__ import annotations

import logging
from typing import Any

from rentaliq.local.cfn import operations as ops
from rentaliq.local.cfn.operations import Operation, changing, commit

log = logging.getLogger(__name__)


def _engine():
    from rentaliq.local.cfn import engine

    return engine


def _finish_change_set(backend: Any, op: Operation, status: str) -> None:
    """AWS: after a change set executes, CloudFormation deletes the stack's other change sets (OBSOLETE while it
    ran), since they no longer apply to the updated stack; the executed one stays, with its execution status."""
    change_set = backend.change_sets.get(op.change_set_id) if op.change_set_id else None
    if change_set is None:
        return
    change_set.execution_status = status
    remove_other_change_sets(backend, change_set)


def remove_other_change_sets(backend: Any, executed: Any) -> None:
    for change_set_id, other in list(backend.change_sets.items()):
        if other.stack_id == executed.stack_id and other is not executed:
            backend.change_sets.pop(change_set_id)


def run_create(backend: Any, stack: Any, op: Operation, template: Any, parameters: dict[str, Any]) -> None:
    try:
        with changing():
            stack._add_stack_event("CREATE_IN_PROGRESS", resource_status_reason="User Initiated")
            stack.template = template
            stack._parse_template()
            stack.parameters = parameters
            stack.description = stack.template_dict.get("Description")
        stack_map = stack._create_resource_map()  # parameters, conditions, outputs validated
        with changing():
            stack.resource_map = stack_map
            stack_map._template = stack.template_dict
            stack_map._resource_json_map = stack.template_dict.get("Resources") or {}
        commit()
        for logical_id in ops.order(stack_map):
            ops.create_resource(stack, op, logical_id)
        ops.resolve_outputs(stack)
    except Exception as error:  # noqa: BLE001 - whatever failed, the create rolls back
        rollback_create(backend, stack, op, _failure(error))
        return
    with changing():
        _settle(stack, "CREATE_COMPLETE")
        _finish_change_set(backend, op, "EXECUTE_COMPLETE")
    commit()


def _settle(stack: Any, status: str, reason: str | None = None) -> None:
    """The operation's end (inside ``changing``): the stack's final status and its event; no operation runs any more."""
    stack.status = status
    stack._add_stack_event(status, resource_status_reason=reason)
    stack.rentaliq_operation = None


def _failure(error: BaseException) -> str:
    if isinstance(error, ops.ResourceFailed):
        return f"The following resource(s) failed: [{error.logical_id}]. {error.reason}"
    return _engine()._reason(error)


def _undo(stack: Any, op: Operation, status: str, reason: str) -> list[str]:
    """Enter the rollback status (saved first, so a crash now resumes the rollback) and undo the operation's own steps."""
    log.warning("stack %s: %s failed (%s); rolling back", stack.name, op.kind.lower(), reason)
    with changing():
        stack.status = status
        stack._add_stack_event(status, resource_status_reason=reason)
    commit()
    return ops.undo_steps(stack, op)


def rollback_create(backend: Any, stack: Any, op: Operation, reason: str) -> None:
    failures = _undo(stack, op, "ROLLBACK_IN_PROGRESS", reason)
    with changing():
        resource_map = stack.resource_map
        kept = {k: v for k, v in resource_map._parsed_resources.items() if not isinstance(v, _engine().LocalResource)}
        resource_map._parsed_resources = kept
        resource_map._resource_json_map = {}  # nothing left to describe (or to create lazily)
        stack.output_map = stack._create_output_map()
        _settle(stack, "ROLLBACK_FAILED" if failures else "ROLLBACK_COMPLETE", "; ".join(failures) or None)
        _finish_change_set(backend, op, "EXECUTE_FAILED")
    commit()


def run_update(backend: Any, stack: Any, op: Operation, template: Any, parameters: dict[str, Any] | None) -> None:
    engine = _engine()
    resource_map = stack.resource_map
    try:
        with changing():
            stack._add_stack_event("UPDATE_IN_PROGRESS", resource_status_reason="User Initiated")
            op.previous = {
                "template": stack.template,
                "parameters": dict(stack.parameters or {}),
                "input": dict(resource_map.input_parameters or {}),
                "resolved": dict(resource_map.resolved_parameters),
                "map_template": resource_map._template,
                "json_map": dict(resource_map._resource_json_map),
                "parsed": dict(resource_map._parsed_resources),
                "order": ops.order(resource_map),
                "output_map": stack.output_map,
            }
        commit()
        new_template = stack.parse_template(template) if isinstance(template, str) else template
        with changing():
            resource_map._template = new_template
            if parameters:
                resource_map.input_parameters = parameters
            resource_map.load_mapping()
            resource_map.load_parameters()
            resource_map.load_conditions()
            resource_map._resource_json_map = new_template.get("Resources") or {}
        previous = op.previous["parsed"]
        for logical_id in ops.order(resource_map):
            old = previous.get(logical_id)
            if isinstance(old, engine.LocalResource):
                ops.update_resource(stack, op, logical_id, old)
            else:
                ops.create_resource(stack, op, logical_id)
        ops.resolve_outputs(stack, new_template)  # the new template's outputs (stack.template is switched below)
    except Exception as error:  # noqa: BLE001
        rollback_update(backend, stack, op, _failure(error))
        return
    with changing():
        stack.template = template
        stack._parse_template()
        if parameters:
            stack.parameters = parameters
        stack.description = stack.template_dict.get("Description")
        stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
        stack._add_stack_event("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    commit()
    cleanup_update(backend, stack, op)


def cleanup_update(backend: Any, stack: Any, op: Operation) -> None:
    """Delete what the new template no longer has and what was replaced; a failure here does not fail the update."""
    engine = _engine()
    previous = (op.previous or {}).get("parsed", {})
    removed = [
        previous[name]
        for name in reversed((op.previous or {}).get("order", []))
        if name not in stack.resource_map._resource_json_map and isinstance(previous.get(name), engine.LocalResource)
    ]
    for resource in op.replaced:
        current = stack.resource_map._parsed_resources.get(resource.logical_resource_id)
        if current is not None and current is not resource:  # superseded by a new physical resource
            resource.deletion_policy = getattr(resource, "update_replace_policy", "Delete")  # AWS: UpdateReplacePolicy
    for resource in [*op.replaced, *removed]:
        try:
            ops.delete_resource(resource)
        except Exception as error:  # noqa: BLE001 - reported by its DELETE_FAILED event
            log.warning("stack %s: clean-up of %s failed: %s", stack.name, resource.logical_resource_id, engine._reason(error))
        if any(resource is r for r in removed):  # no longer the stack's: a later template that adds the logical id again creates it anew
            with changing():
                if stack.resource_map._parsed_resources.get(resource.logical_resource_id) is resource:
                    stack.resource_map._parsed_resources.pop(resource.logical_resource_id)
        commit()
    with changing():
        _settle(stack, "UPDATE_COMPLETE")
        _finish_change_set(backend, op, "EXECUTE_COMPLETE")
    commit()


def rollback_update(backend: Any, stack: Any, op: Operation, reason: str) -> None:
    failures = _undo(stack, op, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
    previous = op.previous
    with changing():
        if previous is not None:
            resource_map = stack.resource_map
            resource_map._template = previous["map_template"]
            resource_map._resource_json_map = previous["json_map"]
            resource_map.input_parameters = previous["input"]
            resource_map.resolved_parameters = previous["resolved"]
            resource_map._parsed_resources = previous["parsed"]
            stack.template = previous["template"]
            stack._parse_template()
            stack.parameters = previous["parameters"]
            stack.output_map = previous["output_map"]
        _settle(stack, "UPDATE_ROLLBACK_FAILED" if failures else "UPDATE_ROLLBACK_COMPLETE", "; ".join(failures) or None)
        _finish_change_set(backend, op, "EXECUTE_FAILED")
    commit()


def run_delete(backend: Any, stack: Any, op: Operation) -> None:
    engine = _engine()
    resource_map = stack.resource_map
    try:
        with changing():
            stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        commit()
        for logical_id in reversed(ops.order(resource_map)):
            resource = resource_map._parsed_resources.get(logical_id)
            if isinstance(resource, engine.LocalResource):
                step = ops.Step("delete", logical_id, resource.type_name, {}, physical_id=resource.physical_id)
                with changing():
                    op.steps.append(step)
                commit()
                ops.delete_resource(resource)
            with changing():
                resource_map._parsed_resources.pop(logical_id, None)
                # moto's map is lazy: an entry still listed but not parsed would be created again.
                resource_map._resource_json_map = {k: v for k, v in resource_map._resource_json_map.items() if k != logical_id}
            commit()
    except Exception as error:  # noqa: BLE001
        with changing():
            _settle(stack, "DELETE_FAILED", _failure(error))
        commit()
        return
    finish_delete(backend, stack)


def finish_delete(backend: Any, stack: Any) -> None:
    with changing():
        _settle(stack, "DELETE_COMPLETE")
        backend.stacks.pop(stack.stack_id, None)
        backend.deleted_stacks[stack.stack_id] = stack
        for name, export in list(backend.exports.items()):
            if export.exporting_stack_id == stack.stack_id:
                backend.exports.pop(name)
        for change_set_id, change_set in list(backend.change_sets.items()):
            if change_set.stack_id == stack.stack_id:
                backend.change_sets.pop(change_set_id)
    commit()
