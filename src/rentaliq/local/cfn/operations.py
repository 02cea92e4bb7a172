"""Stack operations as CloudFormation runs them: one at a time per stack, on a worker thread, journaled.

Why a worker thread: AWS runs ExecuteChangeSet, CreateStack, UpdateStack and DeleteStack asynchronously
(callers poll DescribeStacks, as ``follow_stack`` does), and here it keeps the operation durable. The
providers call this server over HTTP, and each of those requests is committed on its own; an operation
running inside one long request would have its stack state committed only at the end. Instead, before every
provider call the operation record on the stack (``stack.rentaliq_operation``: what it is about to create,
update or delete, with the name it will use) is committed, so after a ``kill -9`` the start-up recovery
(:mod:`recovery`) knows exactly what to undo, including a resource whose create was cut off before its id
was recorded (``Provider.locate``).

Guarantees, as CloudFormation's:
- one operation per stack: :func:`claim` checks and sets the stack's status under one lock;
- no adoption: a create whose resource already exists fails "<name> already exists" and is never undone;
- the first failure stops the operation and starts the rollback; nothing is retried;
- a rollback undoes only this operation's own steps: it deletes what it created, restores what it modified.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import CloudFormationError, ValidationError

from rentaliq.local.cfn.base import AlreadyExists, Context, error_code, is_not_found

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the local cloud stopped during this operation; rolled back on restart"
_CLAIM = threading.Lock()
_local = threading.local()  # .active: this thread runs an operation (may create resources lazily)
_COLLISION_CODES = ("AlreadyExists", "Duplicate", "ResourceExistsException", "EntityAlreadyExists", "BucketAlreadyOwnedByYou")


class InvalidChangeSetStatus(CloudFormationError):
    code = "InvalidChangeSetStatus"


@dataclass
class Step:
    """One provider call of an operation, recorded (and committed) before the call is made."""

    action: str  # create | update | delete
    logical_id: str
    type_name: str
    props: dict[str, Any]
    suffix: str = ""
    physical_id: str | None = None  # create: once the provider returned it
    done: bool = False
    collided: bool = False  # the create met an existing resource: not ours, never undone


@dataclass
class Operation:
    kind: str  # CREATE | UPDATE | DELETE | IMPORT
    change_set_id: str | None = None
    steps: list[Step] = field(default_factory=list)
    previous: dict[str, Any] | None = None  # UPDATE: the stack as it was, to roll back to
    replaced: list[Any] = field(default_factory=list)  # UPDATE: old resources to delete once the update succeeded


class ResourceFailed(RuntimeError):
    def __init__(self, logical_id: str, reason: str):
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id, self.reason = logical_id, reason


# ---------------------------------------------------------------- durability


class NotDurable(RuntimeError):
    """The operation's record could not be committed: no provider call may be made without it."""


def _persistence() -> Any:
    from rentaliq.local import state

    p = state.current()
    if p is None or not p.hooks_installed:
        return None  # an ephemeral server: nothing is saved, nothing to recover
    if p.closed:
        raise NotDurable("the local cloud is stopping; the operation resumes (rolls back) at the next start")
    return p


@contextlib.contextmanager
def changing() -> Iterator[None]:
    """Change CloudFormation state from a worker thread under the persistence shared lock."""
    try:
        p = _persistence()
    except NotDurable:
        p = None  # stopping: in-memory changes are harmless, nothing more is saved
    if p is None:
        yield
        return
    with p.changing():
        yield


def commit() -> None:
    """Make the CloudFormation state durable now (before the next provider call)."""
    p = _persistence()
    if p is not None:
        p.mark_dirty(cfn_models.cloudformation_backends)
        p.commit()
        failed = p.failed_among({p.bd_key(cfn_models.cloudformation_backends)})
        if failed:
            raise NotDurable(f"could not save the CloudFormation state: {', '.join(failed.values())}")


# ---------------------------------------------------------------- claiming a stack


def _check_idle(stack: Any, kind: str) -> None:
    status = stack.status
    # A stack in review (a CREATE change set not executed yet) may be created or deleted, as on AWS.
    busy = status.endswith("_IN_PROGRESS") and not (status == "REVIEW_IN_PROGRESS" and kind in ("CREATE", "DELETE", "IMPORT"))
    # A stack whose create failed can only be deleted; one whose delete or update rollback failed, too (AWS).
    stuck = kind == "UPDATE" and status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED")
    if busy or stuck or getattr(stack, "rentaliq_operation", None) is not None:
        raise ValidationError(message=f"Stack:{stack.stack_id} is in {status} state and can not be updated.")


def claim(backend: Any, stack: Any, kind: str, change_set: Any = None) -> Operation:
    """Start an operation on a stack, atomically: a second one (another request, another thread) is refused."""
    with _CLAIM:
        if change_set is not None and change_set.execution_status != "AVAILABLE":
            _check_idle(stack, kind)
            raise InvalidChangeSetStatus(f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current status of [{change_set.execution_status}]")
        _check_idle(stack, kind)
        if change_set is not None:
            for other in backend.change_sets.values():  # AWS: the stack's other change sets no longer apply
                if other.stack_id == stack.stack_id and other is not change_set and other.execution_status == "AVAILABLE":
                    other.execution_status = "OBSOLETE"
            change_set.execution_status = "EXECUTE_IN_PROGRESS"
        operation = Operation(kind, change_set.change_set_id if change_set is not None else None)
        stack.rentaliq_operation = operation
        stack.status = f"{kind}_IN_PROGRESS"
    return operation


def start(name: str, work: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        _local.active = True
        try:
            work()
        except Exception:
            log.exception("stack operation %s crashed", name)

    thread = threading.Thread(target=run, name=f"cfn-{name}", daemon=True)
    thread.start()
    return thread


def active() -> bool:
    return getattr(_local, "active", False)


# ---------------------------------------------------------------- resources


def _engine():
    from rentaliq.local.cfn import engine

    return engine


def order(resource_map: Any) -> list[str]:
    return resource_map._ResourceMap__get_resources_in_dependency_order()


def _ctx(stack: Any, logical_id: str, suffix: str | None = None) -> Context:
    ctx = Context(stack.account_id, stack.region_name, stack.name, logical_id, stack_id=stack.stack_id)
    if suffix:
        ctx.suffix = suffix
    return ctx


def local_resource(stack: Any, logical_id: str, type_name: str, physical_id: str, props: dict[str, Any], resource_json: dict[str, Any]) -> Any:
    """The moto-side record of one of ``stack``'s resources (what its resource map holds), for a known type."""
    return _engine()._CLASSES[type_name](
        physical_id=physical_id,
        props=props,
        resource_json=resource_json,
        account_id=stack.account_id,
        region=stack.region_name,
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_id=logical_id,
    )


def _resolve(resource_map: Any, logical_id: str) -> dict[str, Any] | None:
    """The resource's template entry with every intrinsic resolved; None when its condition is false."""
    resource_json = resource_map._resource_json_map[logical_id]
    condition = resource_json.get("Condition")
    if condition and not resource_map.lazy_condition_map[condition]:
        return None
    return parsing.parse_resource(copy.deepcopy(resource_json), resource_map)[1]


def _event(stack: Any, logical_id: str, physical_id: str | None, type_name: str, status: str, reason: str | None = None) -> None:
    with changing():
        _engine()._event(stack, logical_id, physical_id, type_name, status, reason)


def _collided(error: BaseException) -> bool:
    return isinstance(error, AlreadyExists) or any(code in error_code(error) for code in _COLLISION_CODES)


def create_resource(
    stack: Any,
    op: Operation,
    logical_id: str,
    statuses: tuple[str, str, str] = ("CREATE_IN_PROGRESS", "CREATE_COMPLETE", "CREATE_FAILED"),
    reason: str | None = None,
) -> Any:
    """Create one resource: check it does not exist, record the step, call the provider, record the result."""
    engine, resource_map = _engine(), stack.resource_map
    type_name = resource_map._resource_json_map[logical_id].get("Type", "?")
    in_progress, complete, failed = statuses
    _event(stack, logical_id, None, type_name, in_progress, reason)
    step: Step | None = None
    try:
        resolved = _resolve(resource_map, logical_id)
        if resolved is None:
            return None
        props = resolved.get("Properties") or {}
        provider = engine.REGISTRY[type_name]
        ctx = _ctx(stack, logical_id)
        provider.check_absent(props, ctx)
        step = Step("create", logical_id, type_name, props, ctx.suffix)
        with changing():
            op.steps.append(step)
        commit()
        physical_id = provider.create(props, ctx)
    except Exception as error:
        if step is not None and _collided(error):
            step.collided = True
        _event(stack, logical_id, None, type_name, failed, engine._reason(error))
        commit()
        raise ResourceFailed(logical_id, engine._reason(error)) from error
    resource = local_resource(stack, logical_id, type_name, physical_id, props, resolved)
    with changing():  # committed with the next step's record (a crash before that: recovery locates it)
        step.physical_id, step.done = physical_id, True
        resource_map._parsed_resources[logical_id] = resource
        engine._event(stack, logical_id, physical_id, type_name, complete)
    return resource


def update_resource(stack: Any, op: Operation, logical_id: str, old: Any) -> None:
    """Update in place, or replace (create the new one now, delete the old one once the update succeeded)."""
    engine, resource_map = _engine(), stack.resource_map
    new_json = resource_map._resource_json_map[logical_id]
    try:
        resolved = _resolve(resource_map, logical_id)
    except Exception as error:
        _event(stack, logical_id, old.physical_id, old.type_name, "UPDATE_FAILED", engine._reason(error))
        raise ResourceFailed(logical_id, engine._reason(error)) from error
    if resolved is None:  # its condition turned false: removed in the clean-up phase
        with changing():
            resource_map._parsed_resources.pop(logical_id, None)
            op.replaced.append(old)
        return
    new_props = resolved.get("Properties") or {}
    if new_json.get("Type") == old.type_name and new_props == old.props:
        old.deletion_policy = resolved.get("DeletionPolicy", "Delete")
        old.metadata = resolved.get("Metadata", {})
        return
    provider = engine.REGISTRY.get(new_json.get("Type", ""))
    if provider is None or new_json.get("Type") != old.type_name or provider.requires_replacement(old.props, new_props):
        name = provider.custom_name(new_props) if provider is not None else None
        if provider is not None and name and name == provider.custom_name(old.props):
            reason = f"CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename {name} and update the stack again."
            _event(stack, logical_id, old.physical_id, old.type_name, "UPDATE_FAILED", reason)
            raise ResourceFailed(logical_id, reason)
        create_resource(
            stack,
            op,
            logical_id,
            ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_FAILED"),
            "Requested update requires the creation of a new physical resource; hence creating one.",
        )
        with changing():
            op.replaced.append(old)
        return
    ctx = _ctx(stack, logical_id)
    _event(stack, logical_id, old.physical_id, old.type_name, "UPDATE_IN_PROGRESS")
    step = Step("update", logical_id, old.type_name, new_props, ctx.suffix, physical_id=old.physical_id)
    with changing():
        op.steps.append(step)
    commit()
    try:
        physical_id = provider.update(old.physical_id, old.props, new_props, ctx)
    except Exception as error:
        _event(stack, logical_id, old.physical_id, old.type_name, "UPDATE_FAILED", engine._reason(error))
        commit()
        raise ResourceFailed(logical_id, engine._reason(error)) from error
    resource = local_resource(stack, logical_id, old.type_name, physical_id, new_props, resolved)
    with changing():
        step.done = True
        resource_map._parsed_resources[logical_id] = resource
        engine._event(stack, logical_id, physical_id, old.type_name, "UPDATE_COMPLETE")


def delete_resource(resource: Any, *, force: bool = False) -> None:
    """Delete (or skip, per DeletionPolicy) one resource; one that is already gone counts as deleted, as on AWS."""
    if force:
        resource.deletion_policy = "Delete"
        if resource.type_name == "AWS::S3::Bucket":
            try:
                _engine()._empty_bucket(resource)  # what this operation's own bucket received (access logs, say)
            except Exception as error:
                if not is_not_found(error):
                    raise
    resource.delete(resource.account_id, resource.region)


def undo_steps(stack: Any, op: Operation) -> list[str]:
    """Undo this operation's steps, newest first: delete what it created, restore what it modified."""
    engine, failures = _engine(), []
    previous = (op.previous or {}).get("parsed", {})
    known = {getattr(r, "physical_id", None) for r in previous.values()} | {s.physical_id for s in op.steps if s.physical_id}
    for step in reversed(op.steps):
        try:
            if step.action == "create" and not step.collided:
                ids = (
                    [step.physical_id]
                    if step.physical_id
                    else [i for i in engine.REGISTRY[step.type_name].locate(step.props, _ctx(stack, step.logical_id, step.suffix)) if i not in known]
                )
                for physical_id in ids:
                    delete_resource(local_resource(stack, step.logical_id, step.type_name, physical_id, step.props, {"Properties": step.props}), force=True)
            elif step.action == "update" and step.logical_id in previous:
                before = previous[step.logical_id]
                ctx = _ctx(stack, step.logical_id, step.suffix)
                _event(stack, step.logical_id, step.physical_id, step.type_name, "UPDATE_IN_PROGRESS")
                engine.REGISTRY[step.type_name].update(step.physical_id, step.props, before.props, ctx)
                _event(stack, step.logical_id, step.physical_id, step.type_name, "UPDATE_COMPLETE")
        except Exception as error:  # noqa: BLE001 - report, keep undoing the rest
            reason = engine._reason(error)
            log.warning("stack %s: undoing %s %s failed: %s", stack.name, step.action, step.logical_id, reason)
            if step.done or step.action == "create":
                failures.append(f"{step.logical_id}: {reason}")
                _event(stack, step.logical_id, step.physical_id, step.type_name, "DELETE_FAILED" if step.action == "create" else "UPDATE_FAILED", reason)
        commit()
    return failures


def resolve_outputs(stack: Any, template: dict[str, Any] | None = None) -> None:
    """Outputs are read once, at the end of the operation (GetAtt reads the live resource). An update passes its
    new template: the outputs are the new template's, resolved against the new resources (not the old template's)."""
    from moto.cloudformation.parsing import OutputMap

    output_map = stack._create_output_map() if template is None else OutputMap(stack.resource_map, template, stack.stack_id)
    for key in list(output_map):
        try:
            output_map[key]
        except Exception as error:  # noqa: BLE001 - an output that cannot be read is left out, not a failed stack
            log.warning("stack %s: output %s: %s", stack.name, key, _engine()._reason(error))
    with changing():
        stack.output_map = output_map
