"""Destroy an environment deliberately: nothing silently left behind, PROD only on request and unprotected.

Order matters for a destroy that fails half-way: the stack is deleted first and the secrets are scheduled for
deletion only once it is gone, so a failed delete (DELETE_FAILED) leaves the environment usable, its secrets
readable. Works on a stack in any state (`states` says which cannot be deleted now and why).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from rentaliq import naming
from rentaliq.contract import deletion_policy
from rentaliq.deploy import stacks, states
from rentaliq.deploy.changesets import DeployError, OnEvent, client_error, follow_stack
from rentaliq.deploy.commands import command
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec


class DestroyRefused(RuntimeError):
    """The destroy was not started; the message says what to do. Nothing was changed."""


@dataclass
class DestroyPlan:
    stack_name: str
    exists: bool
    status: str | None = None
    buckets_to_empty: dict[str, int] = field(default_factory=dict)  # bucket -> object versions
    buckets_retained: list[str] = field(default_factory=list)
    secrets: dict[str, int] = field(default_factory=dict)  # secret name -> recovery window days (0 = now)
    database: str | None = None
    final_snapshot: bool = False


def _stack_resources(target: Target, stack_name: str, status: str) -> list[dict[str, Any]]:
    """The stack's resources; the summaries when the full description fails; none for a stack never created
    whose resources cannot even be listed (nothing of it holds data worth a guard)."""
    cfn = target.client("cloudformation")
    try:
        resources: list[dict[str, Any]] = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
        return resources
    except (ClientError, ResponseParserError):
        try:
            pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
            return [r for page in pages for r in page["StackResourceSummaries"]]
        except (ClientError, ResponseParserError):
            if states.clean_before_create(status):
                return []
            raise


def _count_versions(target: Target, bucket: str) -> int:
    s3, count = target.client("s3"), 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        count += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
    return count


def _template_resources(target: Target, stack_name: str) -> dict[str, Any]:
    """The stack's template resources; {} for a stack that has no template worth reading (never created)."""
    try:
        template = target.client("cloudformation").get_template(StackName=stack_name).get("TemplateBody", {})
    except ClientError:
        return {}
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError:
            return {}
    return template.get("Resources", {}) if isinstance(template, dict) else {}


def plan(target: Target, spec: EnvironmentSpec) -> DestroyPlan:
    stack = stacks.describe(target, spec.stack_name)
    result = DestroyPlan(spec.stack_name, stack is not None, stack["StackStatus"] if stack else None)
    if stack is None:
        return result
    resources = _template_resources(target, spec.stack_name)
    for resource in _stack_resources(target, spec.stack_name, stack["StackStatus"]):
        kind, physical = resource["ResourceType"], resource.get("PhysicalResourceId")
        if not physical or resource.get("ResourceStatus") in ("DELETE_COMPLETE", "CREATE_FAILED"):
            continue  # never made, or already gone: nothing of it to count or to protect
        policy = deletion_policy(resources.get(resource["LogicalResourceId"], {}))
        if kind == "AWS::S3::Bucket":
            if policy == "Retain":
                result.buckets_retained.append(physical)
            else:
                try:
                    count = _count_versions(target, physical)
                except ClientError:  # the bucket is already gone
                    count = 0
                if count:
                    result.buckets_to_empty[physical] = count
        elif kind == "AWS::RDS::DBInstance":
            result.database, result.final_snapshot = physical, policy == "Snapshot"
    result.secrets = {name: spec.secrets.recovery_window_days for name in _live_secrets(target, spec)}
    return result


def check(target: Target, spec: EnvironmentSpec, destroy_plan: DestroyPlan, *, confirm_prod: bool, empty_buckets: bool) -> None:
    """Every reason to refuse, checked before anything is touched."""
    reason = states.blocker(destroy_plan.status, "destroy", spec.stack_name, spec.name.value, target.aws_cli)
    if reason:
        raise DestroyRefused(reason)
    if spec.is_prod and not confirm_prod:
        raise DestroyRefused(f"refusing to destroy {spec.stack_name}: pass --confirm-prod to destroy PROD")
    if destroy_plan.database and spec.is_prod:
        try:
            db = target.client("rds").describe_db_instances(DBInstanceIdentifier=destroy_plan.database)["DBInstances"][0]
        except ClientError:
            db = {}  # already gone
        if db.get("DeletionProtection"):
            raise DestroyRefused(
                f"refusing to destroy {spec.stack_name}: {destroy_plan.database} has deletion protection; "
                f"lift it first, as its own step: {command('protection', 'off', spec.name.value, '--confirm-prod')}"
            )
    if destroy_plan.buckets_to_empty and not empty_buckets:
        listing = ", ".join(f"{b} ({n} object versions)" for b, n in destroy_plan.buckets_to_empty.items())
        raise DestroyRefused(f"refusing to destroy {spec.stack_name}: {listing} not empty; pass --empty-buckets to delete their contents")


def _live_secrets(target: Target, spec: EnvironmentSpec) -> list[str]:
    """The environment's secrets that exist and are not already scheduled for deletion."""
    live = []
    for secret in naming.SECRET_NAMES:
        name = naming.secret_path(spec.name.value, secret)
        try:
            if "DeletedDate" not in target.client("secretsmanager").describe_secret(SecretId=name):
                live.append(name)
        except ClientError:
            pass
    return live


def _empty(target: Target, bucket: str) -> None:
    s3 = target.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})


def _delete_secret(target: Target, name: str, window_days: int) -> None:
    sm = target.client("secretsmanager")
    try:
        if window_days == 0:
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        else:
            sm.delete_secret(SecretId=name, RecoveryWindowInDays=window_days)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("ResourceNotFoundException", "InvalidRequestException"):
            raise


def _delete_wake_stop(target: Target, spec: EnvironmentSpec) -> None:
    """The one-time stop `rentaliq wake --for` may have left is not in the stack: delete it with the environment."""
    try:
        target.client("scheduler").delete_schedule(Name=naming.db_wake_stop_schedule(spec.name.value))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise client_error(error, spec) from None


def destroy(target: Target, spec: EnvironmentSpec, destroy_plan: DestroyPlan, on_event: OnEvent | None = None) -> str:
    """Run a checked plan: empty buckets, delete the stack, then (only once it is gone) schedule the secrets for deletion.

    Returns the final status. A failed delete raises DeployError and leaves the secrets untouched, so whatever
    still runs can still read them; running the destroy again retries.
    """
    if not destroy_plan.exists:
        return "DELETE_COMPLETE"
    for bucket in destroy_plan.buckets_to_empty:
        _empty(target, bucket)
    _delete_wake_stop(target, spec)
    stack = stacks.describe(target, spec.stack_name)
    if stack is not None:
        before = {e.event_id for e in stacks.events(target, spec.stack_name)}
        seen = set(before)  # follow_stack adds what it reports; `before` stays the baseline
        stack_id = stack["StackId"]
        cfn = target.client("cloudformation")
        try:
            if spec.is_prod:  # reached only past check(): --confirm-prod given and deletion protection already lifted
                cfn.update_termination_protection(EnableTerminationProtection=False, StackName=spec.stack_name)
            cfn.delete_stack(StackName=stack_id)
        except ClientError as error:
            raise client_error(error, spec) from None
        status = follow_stack(target, stack_id, seen, on_event, timeout=3600)
        if status != "DELETE_COMPLETE":
            failing = [e for e in stacks.events(target, stack_id) if e.event_id not in before and e.failed]
            raise DeployError(
                f"{spec.stack_name}: delete failed, stack is {status}; its secrets were left in place, the "
                f"environment still works. Fix the failing resource, then run `{command('destroy', spec.name.value)}` again",
                failing,
            )
    for name, window in destroy_plan.secrets.items():
        _delete_secret(target, name, window)
    return "DELETE_COMPLETE"


def set_deletion_protection(target: Target, spec: EnvironmentSpec, enabled: bool) -> None:
    target.client("rds").modify_db_instance(DBInstanceIdentifier=naming.db_instance_id(spec.name), DeletionProtection=enabled, ApplyImmediately=True)
