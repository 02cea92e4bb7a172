"""Read a deployed stack: does it exist, its status, outputs and events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rentaliq.deploy.target import Target


@dataclass(frozen=True)
class StackEvent:
    timestamp: datetime
    logical_id: str
    resource_type: str
    status: str
    reason: str | None
    event_id: str

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")


def describe(target: Target, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = target.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def events(target: Target, stack_name: str) -> list[StackEvent]:
    """Oldest first; none for a stack name that does not exist (a stack id keeps its events after the delete)."""
    try:
        raw = target.client("cloudformation").describe_stack_events(StackName=stack_name)["StackEvents"]
    except ClientError as error:
        if "does not exist" in str(error):
            return []
        raise
    return sorted(
        (StackEvent(e["Timestamp"], e["LogicalResourceId"], e["ResourceType"], e["ResourceStatus"], e.get("ResourceStatusReason"), e["EventId"]) for e in raw),
        key=lambda e: e.timestamp,
    )
