"""Adopt existing resources into a stack with a CloudFormation IMPORT change set (the AWS API, on both targets)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from rentaliq.deploy import stacks
from rentaliq.deploy.changesets import CAPABILITIES, DeployError, OnEvent, client_error, follow_stack, wait_for_change_set
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec


def import_resources(target: Target, spec: EnvironmentSpec, template: dict[str, Any], to_import: list[dict[str, Any]], on_event: OnEvent | None = None) -> str:
    """Create `spec`'s stack holding only the given existing resources; returns the final status (IMPORT_COMPLETE)."""
    cfn = target.client("cloudformation")
    try:
        created = cfn.create_change_set(
            StackName=spec.stack_name,
            ChangeSetName="rentaliq-import",
            ChangeSetType="IMPORT",
            TemplateBody=json.dumps(template, separators=(",", ":")),
            ResourcesToImport=to_import,
            Capabilities=CAPABILITIES,
            Tags=[{"Key": k, "Value": v} for k, v in spec.resource_tags().items()],
        )
    except ClientError as error:
        raise client_error(error, spec) from None
    described = wait_for_change_set(target, created["Id"])
    if described["Status"] == "FAILED":
        cfn.delete_change_set(ChangeSetName=created["Id"])
        raise DeployError(f"{spec.stack_name}: import change set failed: {described.get('StatusReason', '')}")
    seen: set[str] = {e.event_id for e in stacks.events(target, spec.stack_name)}
    cfn.execute_change_set(ChangeSetName=created["Id"])
    status = follow_stack(target, spec.stack_name, seen, on_event, timeout=3600)
    if status != "IMPORT_COMPLETE":
        raise DeployError(
            f"{spec.stack_name}: importing the retained resources ended {status}", [e for e in stacks.events(target, spec.stack_name) if e.failed]
        )
    return status
