"""Diff, deploy and destroy through CloudFormation change sets: the same calls for AWS and the local cloud."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import ClientError

from rentaliq.deploy import stacks
from rentaliq.deploy.parameters import api_key_parameters
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec

NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]


class DeployError(RuntimeError):
    """A deploy, diff or destroy that did not succeed; ``events`` holds the failing stack events."""

    def __init__(self, message: str, events: list[stacks.StackEvent] | None = None):
        super().__init__(message)
        self.events = events or []


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove
    logical_id: str
    resource_type: str
    replacement: str | None = None


@dataclass
class DeployResult:
    stack_name: str
    status: str
    changed: bool
    changes: list[Change] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def template_body(template_path: Path) -> str:
    """Compact JSON: CloudFormation takes at most 51,200 bytes inline."""
    return json.dumps(json.loads(template_path.read_text()), separators=(",", ":"))


def _changes(described: dict) -> list[Change]:
    changes = []
    for change in described.get("Changes", []):
        rc = change.get("ResourceChange", {})
        changes.append(Change(rc.get("Action", "?"), rc.get("LogicalResourceId", "?"), rc.get("ResourceType", "?"), rc.get("Replacement")))
    return changes


def _create_change_set(target: Target, spec: EnvironmentSpec, body: str) -> tuple[str, str, list[Change]]:
    """Returns (change set id, type, changes); raises DeployError with the reason when it cannot be made."""
    cfn = target.client("cloudformation")
    existing = stacks.describe(target, spec.stack_name)
    if existing and existing["StackStatus"] in ("ROLLBACK_COMPLETE", "CREATE_FAILED", "ROLLBACK_FAILED"):
        # A stack whose creation failed cannot be updated; CloudFormation wants it deleted first.
        cfn.delete_stack(StackName=spec.stack_name)
        existing = None
    change_set_type = "UPDATE" if existing and existing["StackStatus"] != "REVIEW_IN_PROGRESS" else "CREATE"
    name = f"rentaliq-{int(time.time() * 1000)}"
    try:
        created = cfn.create_change_set(
            StackName=spec.stack_name, ChangeSetName=name, ChangeSetType=change_set_type, TemplateBody=body,
            Parameters=api_key_parameters(change_set_type == "UPDATE"), Capabilities=CAPABILITIES,
            Tags=[{"Key": k, "Value": v} for k, v in spec.resource_tags().items()],
        )
    except ClientError as error:
        message = error.response["Error"]["Message"]
        if any(marker in message for marker in NO_CHANGES):
            return "", change_set_type, []
        raise DeployError(f"{spec.stack_name}: {message}") from None
    described = _wait_for_change_set(target, created["Id"])
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        cfn.delete_change_set(ChangeSetName=created["Id"])
        if any(marker in reason for marker in NO_CHANGES):
            return "", change_set_type, []
        raise DeployError(f"{spec.stack_name}: change set failed: {reason}")
    return created["Id"], change_set_type, _changes(described)


def _wait_for_change_set(target: Target, change_set_id: str, timeout: float = 300) -> dict:
    cfn, deadline = target.client("cloudformation"), time.monotonic() + timeout
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        if time.monotonic() > deadline:
            raise DeployError(f"change set {change_set_id} still {described['Status']} after {timeout:.0f}s")
        time.sleep(1)


def diff(target: Target, spec: EnvironmentSpec, template_path: Path) -> list[Change]:
    """What a deploy would do, resource by resource; leaves nothing behind."""
    change_set_id, change_set_type, changes = _create_change_set(target, spec, template_body(template_path))
    cfn = target.client("cloudformation")
    if change_set_id:
        cfn.delete_change_set(ChangeSetName=change_set_id)
        if change_set_type == "CREATE":
            cfn.delete_stack(StackName=spec.stack_name)  # the REVIEW_IN_PROGRESS placeholder
    return changes


OnEvent = Callable[[stacks.StackEvent], None]


def deploy(target: Target, spec: EnvironmentSpec, template_path: Path, on_event: OnEvent | None = None, timeout: float = 3600) -> DeployResult:
    """Execute a change set and stream its events; on failure raise DeployError with the failing events."""
    started = time.monotonic()
    change_set_id, _, changes = _create_change_set(target, spec, template_body(template_path))
    if not change_set_id:
        stack = stacks.describe(target, spec.stack_name)
        _sync_termination_protection(target, spec, stack)
        return DeployResult(spec.stack_name, stack["StackStatus"], False, [], stacks.outputs(stack), time.monotonic() - started)
    before = {e.event_id for e in stacks.events(target, spec.stack_name)}
    seen = set(before)  # follow_stack adds what it reports; `before` stays the baseline
    target.client("cloudformation").execute_change_set(ChangeSetName=change_set_id)
    status = follow_stack(target, spec.stack_name, seen, on_event, timeout)
    stack = stacks.describe(target, spec.stack_name)
    if status in stacks.TERMINAL_OK:
        _sync_termination_protection(target, spec, stack)
    if status not in stacks.TERMINAL_OK:
        failing = [e for e in stacks.events(target, spec.stack_name) if e.event_id not in before and e.failed]
        raise DeployError(f"{spec.stack_name}: deploy failed, stack is {status}", failing)
    return DeployResult(spec.stack_name, status, True, changes, stacks.outputs(stack), time.monotonic() - started)


def _sync_termination_protection(target: Target, spec: EnvironmentSpec, stack: dict) -> None:
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
        if not status.endswith("_IN_PROGRESS"):
            return status
        if time.monotonic() > deadline:
            raise DeployError(f"{stack_name}: still {status} after {timeout:.0f}s")
        time.sleep(2)
