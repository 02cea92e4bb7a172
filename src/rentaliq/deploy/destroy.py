"""Destroy an environment deliberately: nothing silently left behind, PROD only on request and unprotected."""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.contract import deletion_policy
from rentaliq.deploy import stacks
from rentaliq.deploy.changesets import DeployError, OnEvent, follow_stack
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec


class DestroyRefused(RuntimeError):
    """The destroy was not started; the message says what to do. Nothing was changed."""


@dataclass
class DestroyPlan:
    stack_name: str
    exists: bool
    buckets_to_empty: dict[str, int] = field(default_factory=dict)  # bucket -> object versions
    buckets_retained: list[str] = field(default_factory=list)
    secrets: dict[str, int] = field(default_factory=dict)  # secret name -> recovery window days (0 = now)
    database: str | None = None
    final_snapshot: bool = False


def _stack_resources(target: Target, stack_name: str) -> list[dict]:
    return target.client("cloudformation").describe_stack_resources(StackName=stack_name)["StackResources"]


def _count_versions(target: Target, bucket: str) -> int:
    s3, count = target.client("s3"), 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        count += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
    return count


def plan(target: Target, spec: EnvironmentSpec) -> DestroyPlan:
    stack = stacks.describe(target, spec.stack_name)
    result = DestroyPlan(spec.stack_name, stack is not None)
    if stack is None:
        return result
    template = target.client("cloudformation").get_template(StackName=spec.stack_name)["TemplateBody"]
    resources = template["Resources"] if isinstance(template, dict) else {}
    for resource in _stack_resources(target, spec.stack_name):
        kind, physical = resource["ResourceType"], resource.get("PhysicalResourceId")
        policy = deletion_policy(resources.get(resource["LogicalResourceId"], {}))
        if kind == "AWS::S3::Bucket":
            if policy == "Retain":
                result.buckets_retained.append(physical)
            else:
                count = _count_versions(target, physical)
                if count:
                    result.buckets_to_empty[physical] = count
        elif kind == "AWS::RDS::DBInstance":
            result.database, result.final_snapshot = physical, policy == "Snapshot"
    result.secrets = {naming.secret_path(spec.name, n): spec.secrets.recovery_window_days for n in naming.SECRET_NAMES}
    return result


def check(target: Target, spec: EnvironmentSpec, destroy_plan: DestroyPlan, *, confirm_prod: bool, empty_buckets: bool) -> None:
    """Every reason to refuse, checked before anything is touched."""
    if spec.is_prod and not confirm_prod:
        raise DestroyRefused(f"refusing to destroy {spec.stack_name}: pass --confirm-prod to destroy PROD")
    if destroy_plan.database and spec.is_prod:
        db = target.client("rds").describe_db_instances(DBInstanceIdentifier=destroy_plan.database)["DBInstances"][0]
        if db.get("DeletionProtection"):
            raise DestroyRefused(
                f"refusing to destroy {spec.stack_name}: {destroy_plan.database} has deletion protection; "
                f"lift it first, as its own step: rentaliq protection off {spec.name.value} --confirm-prod"
            )
    if destroy_plan.buckets_to_empty and not empty_buckets:
        listing = ", ".join(f"{b} ({n} object versions)" for b, n in destroy_plan.buckets_to_empty.items())
        raise DestroyRefused(f"refusing to destroy {spec.stack_name}: {listing} not empty; pass --empty-buckets to delete their contents")


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


def destroy(target: Target, spec: EnvironmentSpec, destroy_plan: DestroyPlan, on_event: OnEvent | None = None) -> str:
    """Run a checked plan: empty buckets, schedule secrets for deletion, delete the stack. Returns its final status."""
    if not destroy_plan.exists:
        return "DELETE_COMPLETE"
    for bucket in destroy_plan.buckets_to_empty:
        _empty(target, bucket)
    for name, window in destroy_plan.secrets.items():
        _delete_secret(target, name, window)
    before = {e.event_id for e in stacks.events(target, spec.stack_name)}
    seen = set(before)  # follow_stack adds what it reports; `before` stays the baseline
    stack_id = stacks.describe(target, spec.stack_name)["StackId"]
    cfn = target.client("cloudformation")
    if spec.is_prod:  # reached only past check(): --confirm-prod given and deletion protection already lifted
        cfn.update_termination_protection(EnableTerminationProtection=False, StackName=spec.stack_name)
    cfn.delete_stack(StackName=spec.stack_name)
    status = follow_stack(target, stack_id, seen, on_event, timeout=3600)
    if status != "DELETE_COMPLETE":
        failing = [e for e in stacks.events(target, stack_id) if e.event_id not in before and e.failed]
        raise DeployError(f"{spec.stack_name}: delete failed, stack is {status}", failing)
    return status


def set_deletion_protection(target: Target, spec: EnvironmentSpec, enabled: bool) -> None:
    target.client("rds").modify_db_instance(DBInstanceIdentifier=naming.db_instance_id(spec.name), DeletionProtection=enabled, ApplyImmediately=True)
