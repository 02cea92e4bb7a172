"""Which changes replace a resource, and the guard that keeps a deploy from replacing stored data.

CloudFormation reports a replacement per resource change (`Replacement`: True, Conditional or False) and, in
the change's `Details`, the property whose change causes it (`RequiresRecreation`: Always or Conditionally).
Replacing a database, a bucket or a secret creates a new, empty one and deletes the old one with its data, so
`deploy`/`up` refuse such a change set unless the user names the resource: `--allow-replacement prod-database`.

Short names (`ENV-RESOURCE`): `{env}-database`, `{env}-files`, `prod-access-logs`, and the secrets
`{env}-db-credentials`, `{env}-db-connection-string`, `{env}-api-keys`, `{env}-s3-config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rentaliq import naming

STATEFUL_TYPES = ("AWS::RDS::DBInstance", "AWS::S3::Bucket", "AWS::SecretsManager::Secret")
REPLACING = ("True", "Conditional")


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str | None = None  # True | Conditional | False (Modify only)
    causes: tuple[str, ...] = field(default=())  # "Properties.DBName (Always)", ...
    physical_id: str | None = None

    @property
    def replaces(self) -> bool:
        return self.action == "Modify" and self.replacement in REPLACING


def from_change_set(described: dict[str, Any]) -> list[Change]:
    """The resource changes of a DescribeChangeSet answer, with what causes each replacement."""
    changes = []
    for change in described.get("Changes", []):
        rc = change.get("ResourceChange", {})
        causes = []
        for detail in rc.get("Details", []):
            tgt = detail.get("Target", {})
            recreation = tgt.get("RequiresRecreation", "Never")
            if recreation in ("Always", "Conditionally"):
                where = f"{tgt.get('Attribute', 'Properties')}.{tgt['Name']}" if tgt.get("Name") else tgt.get("Attribute", "?")
                text = f"{where} ({recreation.lower()})"
                if text not in causes:
                    causes.append(text)
        changes.append(
            Change(
                rc.get("Action", "?"),
                rc.get("LogicalResourceId", "?"),
                rc.get("ResourceType", "?"),
                rc.get("Replacement"),
                tuple(causes),
                rc.get("PhysicalResourceId"),
            )
        )
    return changes


def short_names(env: str) -> dict[str, str]:
    """Physical name -> short name, for every stateful resource an environment can have."""
    names = {naming.db_instance_id(env): f"{env}-database", naming.files_bucket(env): f"{env}-files", naming.access_logs_bucket(): f"{env}-access-logs"}
    for secret in naming.SECRET_NAMES:
        names[naming.secret_path(env, secret)] = f"{env}-{secret.replace('/', '-')}"
    return names


def _physical_name(resource: dict[str, Any]) -> str | None:
    props = resource.get("Properties", {})
    for key in ("DBInstanceIdentifier", "BucketName", "Name"):
        name = props.get(key)
        if isinstance(name, str):
            return name
    return None


def short_name(env: str, change: Change, template: dict[str, Any]) -> str:
    """`prod-database` for the change to rentaliq-prod-db; the logical id when the resource has no known name.

    The resource being replaced is the live one (the change set's physical id): a rename replaces
    rentaliq-qa-files, whatever the new template calls its successor."""
    names = short_names(env)
    for physical in (change.physical_id, _physical_name(template.get("Resources", {}).get(change.logical_id, {}))):
        if physical in names:
            return names[physical]
    return f"{env}-{change.logical_id}"


def guarded(env: str, changes: list[Change], template: dict[str, Any], allowed: set[str]) -> list[tuple[str, Change]]:
    """(short name, change) of every replacement of stored data that `allowed` does not name."""
    found = []
    for change in changes:
        if change.replaces and change.resource_type in STATEFUL_TYPES:
            name = short_name(env, change, template)
            if name not in allowed:
                found.append((name, change))
    return found


def refusal(stack_name: str, blocked: list[tuple[str, Change]]) -> str:
    parts = []
    for name, change in blocked:
        how = "would replace" if change.replacement == "True" else "may replace"
        cause = f" because of {', '.join(change.causes)}" if change.causes else ""
        parts.append(f"{how} {name} ({change.resource_type} {change.logical_id}){cause}")
    flags = " ".join(f"--allow-replacement {name}" for name, _ in blocked)
    return (
        f"refusing to deploy {stack_name}: it {'; '.join(parts)}, creating a new, empty resource and deleting the old one "
        f"with its data; nothing was executed. To accept, pass {flags}"
    )
