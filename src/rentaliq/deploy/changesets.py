"""Diff and deploy through CloudFormation change sets: the same calls for AWS and the local cloud.

Before a change set is made, the stack's state is checked against `states` (one line and no change when the
action is impossible; a stack that was never created is deleted first, as the CDK CLI does). After it is made,
`replacements` refuses a change set that would replace stored data unless the user named the resource.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from rentaliq.deploy import deployed_spec, replacements, stacks, states
from rentaliq.deploy.parameters import api_key_parameters
from rentaliq.deploy.replacements import Change
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec

NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
_BUSY = re.compile(r"is in (\w+_IN_PROGRESS) state")

__all__ = ["Change", "DeployError", "DeployResult", "ReplacementRefused", "StackBusy", "deploy", "diff", "follow_stack"]


class DeployError(RuntimeError):
    """A deploy, diff or destroy that did not succeed; ``events`` holds the failing stack events."""

    def __init__(self, message: str, events: list[stacks.StackEvent] | None = None):
        super().__init__(message)
        self.events = events or []


class StackBusy(DeployError):
    """Another operation runs on the stack (on AWS the stack status is the environment's lock)."""


class ReplacementRefused(DeployError):
    """The change set would replace stored data the user did not name; it was deleted, nothing executed."""


@dataclass
class DeployResult:
    stack_name: str
    status: str
    changed: bool
    changes: list[Change] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


OnEvent = Callable[[stacks.StackEvent], None]
OnStep = Callable[[str], None]


def template_body(template_path: Path) -> str:
    """Compact JSON: CloudFormation takes at most 51,200 bytes inline."""
    return json.dumps(json.loads(template_path.read_text()), separators=(",", ":"))


def client_error(error: ClientError, spec: EnvironmentSpec) -> DeployError:
    """CloudFormation's answer as one line; "is in X_IN_PROGRESS state" becomes the busy message."""
    message = error.response["Error"]["Message"]
    busy = _BUSY.search(message)
    if busy:
        return StackBusy(states.in_progress_message(spec.stack_name, busy.group(1), spec.name.value))
    return DeployError(f"{spec.stack_name}: {message}")


def check_state(target: Target, spec: EnvironmentSpec, action: states.Action) -> dict[str, Any] | None:
    """The live stack (None if absent) once `action` may go ahead; raises DeployError with the reason if not."""
    stack = stacks.describe(target, spec.stack_name)
    status = stack["StackStatus"] if stack else None
    reason = states.blocker(status, action, spec.stack_name, spec.name.value, target.aws_cli)
    if reason:
        raise (StackBusy if states.kind(status) is states.Kind.IN_PROGRESS else DeployError)(reason)
    return stack


def clean_never_created(
    target: Target, spec: EnvironmentSpec, stack: dict[str, Any] | None, on_step: OnStep, on_event: OnEvent | None
) -> dict[str, Any] | None:
    """Delete a stack that was never created (ROLLBACK_COMPLETE, REVIEW_IN_PROGRESS, ...) so it can be created anew."""
    if stack is None or not states.clean_before_create(stack["StackStatus"]):
        return stack
    on_step(states.deleted_by_next_up(spec.stack_name, stack["StackStatus"]))
    seen = {e.event_id for e in stacks.events(target, stack["StackId"])}
    try:
        target.client("cloudformation").delete_stack(StackName=stack["StackId"])
    except ClientError as error:
        raise client_error(error, spec) from None
    status = follow_stack(target, stack["StackId"], seen, on_event, timeout=3600)
    if status != "DELETE_COMPLETE":
        raise DeployError(
            f"{spec.stack_name}: deleting the failed stack ended {status}; see `aws cloudformation describe-stack-events --stack-name {stack['StackId']}`"
        )
    return None


def _create_change_set(
    target: Target,
    spec: EnvironmentSpec,
    body: str,
    stack: dict[str, Any] | None,
    extra_parameters: list[dict[str, Any]] | None = None,
    known_keys: dict[str, str] | None = None,
) -> tuple[str, str, list[Change], dict[str, Any]]:
    """Returns (change set id, type, changes, description); raises DeployError with the reason when it cannot be made."""
    cfn = target.client("cloudformation")
    change_set_type = "UPDATE" if stack and stack["StackStatus"] != "REVIEW_IN_PROGRESS" else "CREATE"
    name = f"rentaliq-{int(time.time() * 1000)}"
    try:
        created = cfn.create_change_set(
            StackName=spec.stack_name,
            ChangeSetName=name,
            ChangeSetType=change_set_type,
            TemplateBody=body,
            Parameters=api_key_parameters(change_set_type == "UPDATE", {p["ParameterKey"] for p in (stack or {}).get("Parameters", [])}, known_keys)
            + (extra_parameters or []),
            Capabilities=CAPABILITIES,
            Tags=[{"Key": k, "Value": v} for k, v in spec.resource_tags().items()],
        )
    except ClientError as error:
        message = error.response["Error"]["Message"]
        if any(marker in message for marker in NO_CHANGES):
            return "", change_set_type, [], {}
        raise client_error(error, spec) from None
    described = wait_for_change_set(target, created["Id"])
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        cfn.delete_change_set(ChangeSetName=created["Id"])
        if change_set_type == "CREATE":
            _drop_placeholder(target, spec)
        if any(marker in reason for marker in NO_CHANGES):
            return "", change_set_type, [], {}
        raise DeployError(f"{spec.stack_name}: change set failed: {reason}")
    return created["Id"], change_set_type, replacements.from_change_set(described), described


def _drop_placeholder(target: Target, spec: EnvironmentSpec) -> None:
    """A CREATE change set leaves a REVIEW_IN_PROGRESS stack; remove it when the change set is not executed."""
    stack = stacks.describe(target, spec.stack_name)
    if stack and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
        target.client("cloudformation").delete_stack(StackName=stack["StackId"])


def wait_for_change_set(target: Target, change_set_id: str, timeout: float = 300) -> dict[str, Any]:
    cfn, deadline = target.client("cloudformation"), time.monotonic() + timeout
    while True:
        described: dict[str, Any] = cfn.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            while described.get("NextToken") is not None:  # long change sets come in pages
                more = cfn.describe_change_set(ChangeSetName=change_set_id, NextToken=described["NextToken"])
                described = {**more, "Changes": described["Changes"] + more.get("Changes", [])}
            return described
        if time.monotonic() > deadline:
            raise DeployError(f"change set {change_set_id} still {described['Status']} after {timeout:.0f}s")
        time.sleep(1)


def diff(target: Target, spec: EnvironmentSpec, template_path: Path, on_step: OnStep = lambda message: None) -> list[Change]:
    """What a deploy would do, resource by resource; changes nothing (a placeholder it makes, it removes).

    A spec AWS would refuse against the live database (storage below what is deployed) is refused here too."""
    stack = check_state(target, spec, "diff")
    if stack is not None:
        deployed_spec.check(target, spec, on_step)
    if stack and states.clean_before_create(stack["StackStatus"]) and stack["StackStatus"] != "REVIEW_IN_PROGRESS":
        # `up` deletes this stack and creates it anew: every resource of the template is an Add.
        resources = json.loads(template_path.read_text()).get("Resources", {})
        return [Change("Add", logical_id, r.get("Type", "?")) for logical_id, r in resources.items()]
    body, extra_parameters = _deployed_template(template_path, stack, None)
    change_set_id, change_set_type, changes, _ = _create_change_set(target, spec, body, stack, extra_parameters)
    if change_set_id:
        target.client("cloudformation").delete_change_set(ChangeSetName=change_set_id)
        if change_set_type == "CREATE" and stack is None:
            _drop_placeholder(target, spec)
    return changes


def _deployed_template(template_path: Path, stack: dict[str, Any] | None, restore_snapshot: str | None) -> tuple[str, list[dict[str, Any]] | None]:
    """The template body and extra parameters a deploy sends: a stack restored from a snapshot keeps its
    `RestoreDbSnapshot` wiring on every later change set (diff included), or its database would read as replaced."""
    from rentaliq.deploy import retained

    template = json.loads(template_path.read_text())
    extra_parameters = retained.snapshot_parameters(stack, restore_snapshot)
    if extra_parameters:
        template = retained.with_snapshot_parameter(template)
    return json.dumps(template, separators=(",", ":")), extra_parameters


def deploy(
    target: Target,
    spec: EnvironmentSpec,
    template_path: Path,
    on_event: OnEvent | None = None,
    timeout: float = 3600,
    *,
    allow_replacement: frozenset[str] = frozenset(),
    on_step: OnStep = lambda message: None,
    restore_snapshot: str | None = None,
    known_keys: dict[str, str] | None = None,
) -> DeployResult:
    """Execute a change set and stream its events; on failure raise DeployError with the failing events.

    `restore_snapshot`: create the database from this snapshot (see `retained`); a stack restored once keeps it.
    `known_keys`: API key parameter values to use where the stack has none yet (the restored secret's).
    """
    started = time.monotonic()
    stack = clean_never_created(target, spec, check_state(target, spec, "deploy"), on_step, on_event)
    if stack is not None:
        deployed_spec.check(target, spec, on_step)
    body, extra_parameters = _deployed_template(template_path, stack, restore_snapshot)
    template = json.loads(body)
    change_set_id, change_set_type, changes, _ = _create_change_set(target, spec, body, stack, extra_parameters, known_keys)
    if not change_set_id:
        stack = _existing(target, spec.stack_name)
        _sync_termination_protection(target, spec, stack)
        return DeployResult(spec.stack_name, stack["StackStatus"], False, [], stacks.outputs(stack), time.monotonic() - started)
    blocked = replacements.guarded(spec.name.value, changes, template, set(allow_replacement))
    if blocked:
        target.client("cloudformation").delete_change_set(ChangeSetName=change_set_id)
        raise ReplacementRefused(replacements.refusal(spec.stack_name, blocked))
    before = {e.event_id for e in stacks.events(target, spec.stack_name)}
    seen = set(before)  # follow_stack adds what it reports; `before` stays the baseline
    try:
        target.client("cloudformation").execute_change_set(ChangeSetName=change_set_id)
    except ClientError as error:
        raise client_error(error, spec) from None
    status = follow_stack(target, spec.stack_name, seen, on_event, timeout)
    stack = _existing(target, spec.stack_name)
    if status in states.SUCCEEDED:
        _sync_termination_protection(target, spec, stack)
    else:
        failing = [e for e in stacks.events(target, spec.stack_name) if e.event_id not in before and e.failed]
        raise DeployError(f"{spec.stack_name}: deploy failed, stack is {status} ({states.meaning(status)})", failing)
    return DeployResult(spec.stack_name, status, True, changes, stacks.outputs(stack), time.monotonic() - started)


def _existing(target: Target, stack_name: str) -> dict[str, Any]:
    """The stack a deploy just worked on; it can only be missing if someone deleted it meanwhile."""
    stack = stacks.describe(target, stack_name)
    if stack is None:
        raise DeployError(f"{stack_name}: the stack no longer exists; it was deleted while this deploy ran")
    return stack


def _sync_termination_protection(target: Target, spec: EnvironmentSpec, stack: dict[str, Any]) -> None:
    """A stack-level setting a change set cannot carry; the CDK CLI sets it the same way. PROD only."""
    if stack.get("EnableTerminationProtection", False) != spec.is_prod:
        target.client("cloudformation").update_termination_protection(EnableTerminationProtection=spec.is_prod, StackName=spec.stack_name)


def follow_stack(target: Target, stack_name: str, seen: set[str], on_event: OnEvent | None, timeout: float) -> str:
    """Poll until the stack settles, reporting each new event once."""
    deadline = time.monotonic() + timeout
    while True:
        stack = stacks.describe(target, stack_name)
        for event in stacks.events(target, stack_name):
            if event.event_id not in seen:
                seen.add(event.event_id)
                if on_event:
                    on_event(event)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if states.kind(status) is not states.Kind.IN_PROGRESS:
            return status
        if time.monotonic() > deadline:
            raise DeployError(f"{stack_name}: still {status} after {timeout:.0f}s")
        time.sleep(0.5 if target.is_local else 2)  # a local operation settles in seconds; AWS in minutes
