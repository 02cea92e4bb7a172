"""Undoing a destroy: find what a previous destroy retained, and bring it back into a new stack.

A destroy keeps PROD's buckets (DeletionPolicy Retain), leaves secrets in their recovery window and, where the
database has `DeletionPolicy: Snapshot`, a final snapshot. A plain create would then fail ("already exists"),
so `up` looks first (`find`) and stops with the choices unless `--restore-retained` is given. The restore:

1. `restore-secret` for each secret in its recovery window;
2. one CloudFormation IMPORT change set that adopts the retained buckets and secrets into the new stack
   (template: only the imported resources, DeletionPolicy Retain, references to resources not yet in the stack
   dropped; CloudFormation does not compare properties on import, the update that follows sets them all);
3. the database from the final snapshot through a deploy-time parameter, `RestoreDbSnapshot`, that this module
   adds to the synthesized template as the DBInstance's `DBSnapshotIdentifier` (MasterUsername dropped, as AWS
   requires when restoring). Chosen over restore-db-instance-from-db-snapshot + import because the instance
   needs the stack's subnet group, parameter group and security group, which exist only after the stack is
   created. AWS requires the same DBSnapshotIdentifier on every later update (a change replaces the instance),
   so once a stack has the parameter, every deploy keeps it (UsePreviousValue).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.deploy.commands import command
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec

SNAPSHOT_PARAMETER = "RestoreDbSnapshot"
_IDENTIFIERS = {"AWS::S3::Bucket": ("BucketName", "BucketName"), "AWS::SecretsManager::Secret": ("Id", "Name")}


@dataclass
class Retained:
    buckets: list[str] = field(default_factory=list)
    secrets_deleted: dict[str, str] = field(default_factory=dict)  # name -> ARN, in the recovery window
    secrets_live: dict[str, str] = field(default_factory=dict)  # name -> ARN, not scheduled (would block a create)
    snapshot: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.buckets or self.secrets_deleted or self.secrets_live or self.snapshot)

    @property
    def blocks_create(self) -> bool:
        """A snapshot alone does not stop a create (it is only offered); a bucket or secret with the stack's names does."""
        return bool(self.buckets or self.secrets_deleted or self.secrets_live)

    def describe(self) -> list[str]:
        lines = [f"bucket {b} (retained, with its objects)" for b in self.buckets]
        lines += [f"secret {n} (scheduled for deletion, recoverable)" for n in self.secrets_deleted]
        lines += [f"secret {n} (exists outside any stack)" for n in self.secrets_live]
        if self.snapshot:
            lines.append(f"database snapshot {self.snapshot} (newest)")
        return lines


def find(target: Target, spec: EnvironmentSpec) -> Retained:
    """What a previous destroy of `spec`'s environment left behind (call only when its stack does not exist)."""
    env, found = spec.name.value, Retained()
    s3, sm, rds = target.client("s3"), target.client("secretsmanager"), target.client("rds")
    buckets = [naming.files_bucket(env)] + ([naming.access_logs_bucket()] if spec.storage.access_logs else [])
    if spec.audit.cloudtrail or spec.audit.config:  # the audit logs bucket is retained in PROD too
        buckets.append(naming.trail_logs_bucket(env))
    for bucket in buckets:
        try:
            s3.head_bucket(Bucket=bucket)
            found.buckets.append(bucket)
        except ClientError:
            pass
    for secret in naming.SECRET_NAMES:
        name = naming.secret_path(env, secret)
        try:
            described = sm.describe_secret(SecretId=name)
        except ClientError:
            continue
        (found.secrets_deleted if described.get("DeletedDate") else found.secrets_live)[name] = described["ARN"]
    try:
        snapshots = rds.describe_db_snapshots(DBInstanceIdentifier=naming.db_instance_id(env))["DBSnapshots"]
    except ClientError:
        snapshots = []
    # A final snapshot is a manual one; automated (`rds:`) snapshots go with the instance they belong to.
    available = [s for s in snapshots if s.get("Status", "available") == "available" and s.get("SnapshotType", "manual") == "manual"]
    if available:
        found.snapshot = max(available, key=lambda s: s.get("SnapshotCreateTime") or 0)["DBSnapshotIdentifier"]
    return found


def refusal(spec: EnvironmentSpec, found: Retained, aws: str = "aws") -> str:
    env = spec.name.value
    force = "; ".join(
        f"{aws} secretsmanager delete-secret --secret-id {n} --force-delete-without-recovery" for n in [*found.secrets_deleted, *found.secrets_live]
    )
    choices = [f"`{command('up', env, '--restore-retained')}` to bring them back into the new stack"]
    empty = [f"`{force}`"] if force else []
    empty += [f"delete the bucket{'s' if len(found.buckets) > 1 else ''} {', '.join(found.buckets)} (with every object version)"] if found.buckets else []
    choices.append("or start empty: " + " and ".join(empty))
    return (
        f"{spec.stack_name} does not exist, but resources it would create exist outside any stack (kept by a previous "
        f"destroy, or left by a failed run): {', '.join(found.describe())}; a create would fail on them. Run " + " ".join(choices)
    )


def restore_secrets(target: Target, found: Retained) -> None:
    sm = target.client("secretsmanager")
    for name in found.secrets_deleted:
        sm.restore_secret(SecretId=name)


def api_key_values(target: Target, spec: EnvironmentSpec) -> dict[str, str]:
    """The restored API keys secret's values as stack parameters, so the update that follows the import keeps them."""
    import json

    from rentaliq.contract import API_KEY_PARAMETERS

    try:
        values = json.loads(target.client("secretsmanager").get_secret_value(SecretId=naming.secret_path(spec.name.value, "api/keys"))["SecretString"])
    except (ClientError, ValueError):
        return {}
    return {parameter: values[key] for key, parameter in API_KEY_PARAMETERS.items() if isinstance(values.get(key), str)}


def _refs(value: Any) -> set[str]:
    """Logical ids and parameters a template value refers to."""
    if isinstance(value, dict):
        out: set[str] = set()
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                out.add(inner)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                out |= {name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", str(text)) if not name.startswith("AWS::")}
                out |= _refs(inner[1]) if isinstance(inner, list) and len(inner) > 1 else set()
            elif key == "Fn::GetAtt":
                out.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            else:
                out |= _refs(inner)
        return out
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def _physical_name(resource: dict[str, Any]) -> str | None:
    name = resource.get("Properties", {}).get(_IDENTIFIERS.get(resource.get("Type", ""), ("", ""))[1])
    return name if isinstance(name, str) else None


def import_plan(template: dict[str, Any], found: Retained) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(import template, ResourcesToImport) for the retained buckets and secrets the template declares."""
    wanted = {b: b for b in found.buckets} | {n: arn for n, arn in {**found.secrets_deleted, **found.secrets_live}.items()}
    resources, to_import = {}, []
    for logical_id, resource in template.get("Resources", {}).items():
        name = _physical_name(resource)
        if resource.get("Type") in _IDENTIFIERS and name in wanted:
            key = _IDENTIFIERS[resource["Type"]][0]
            resources[logical_id] = resource
            to_import.append({"ResourceType": resource["Type"], "LogicalResourceId": logical_id, "ResourceIdentifier": {key: wanted[name]}})
    kept = set(resources)
    import_template: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}
    for logical_id, resource in resources.items():
        props = {k: v for k, v in resource.get("Properties", {}).items() if _refs(v) <= kept}
        import_template["Resources"][logical_id] = {"Type": resource["Type"], "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": props}
    return import_template, to_import


def with_snapshot_parameter(template: dict[str, Any]) -> dict[str, Any]:
    """The template with `RestoreDbSnapshot` wired into every DBInstance (empty value: a normal create)."""
    result = copy.deepcopy(template)
    result.setdefault("Parameters", {})[SNAPSHOT_PARAMETER] = {
        "Type": "String",
        "Default": "",
        "Description": "Final snapshot the database was restored from (keep on updates)",
    }
    result.setdefault("Conditions", {})["RestoringDbSnapshot"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": SNAPSHOT_PARAMETER}, ""]}]}
    for resource in result.get("Resources", {}).values():
        if resource.get("Type") == "AWS::RDS::DBInstance":
            props = resource.setdefault("Properties", {})
            props["DBSnapshotIdentifier"] = {"Fn::If": ["RestoringDbSnapshot", {"Ref": SNAPSHOT_PARAMETER}, {"Ref": "AWS::NoValue"}]}
            # What a restore inherits from the snapshot (CloudFormation ignores them with DBSnapshotIdentifier): the
            # key included, since a snapshot keeps the key it was made under.
            for key in ("MasterUsername", "DBName", "KmsKeyId"):
                if key in props:
                    props[key] = {"Fn::If": ["RestoringDbSnapshot", {"Ref": "AWS::NoValue"}, props[key]]}
    return result


def snapshot_parameters(stack: dict[str, Any] | None, snapshot: str | None) -> list[dict[str, Any]] | None:
    """The parameter value for a deploy: the snapshot on the restoring create, the previous value afterwards."""
    if snapshot:
        return [{"ParameterKey": SNAPSHOT_PARAMETER, "ParameterValue": snapshot}]
    if stack and any(p["ParameterKey"] == SNAPSHOT_PARAMETER for p in stack.get("Parameters", [])):
        return [{"ParameterKey": SNAPSHOT_PARAMETER, "UsePreviousValue": True}]
    return None
