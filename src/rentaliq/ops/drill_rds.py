"""The RDS side of the DR drill: the source instance, its restorable time, the scratch restore and its deletion.

Only public RDS API calls (the same on AWS and on the local cloud). The scratch instance is the env's instance
restored with ``--use-latest-restorable-time`` into the same subnet group, security groups and parameter group
(so TLS is enforced exactly as on the source), Single-AZ, without deletion protection, tagged as the env's
resources are plus ``Purpose=dr-drill``. Its deletion skips the final snapshot and the automated backups: it
holds nothing the source does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rentaliq import naming
from rentaliq.environments import EnvironmentSpec


class DrillError(RuntimeError):
    """The drill cannot go on; the message is one line for the operator."""


@dataclass(frozen=True)
class SourceInstance:
    identifier: str
    instance_class: str
    subnet_group: str | None
    security_groups: tuple[str, ...]
    parameter_group: str | None
    backup_retention_days: int
    status: str
    latest_restorable_time: datetime | None


def _source(item: dict[str, Any]) -> SourceInstance:
    groups = item.get("DBParameterGroups") or [{}]
    return SourceInstance(
        identifier=item["DBInstanceIdentifier"],
        instance_class=item["DBInstanceClass"],
        subnet_group=(item.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
        security_groups=tuple(g["VpcSecurityGroupId"] for g in item.get("VpcSecurityGroups", []) if g.get("Status", "active") == "active"),
        parameter_group=groups[0].get("DBParameterGroupName"),
        backup_retention_days=int(item.get("BackupRetentionPeriod", 0)),
        status=item.get("DBInstanceStatus", "unknown"),
        latest_restorable_time=item.get("LatestRestorableTime"),
    )


def describe(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        return found
    except rds.exceptions.DBInstanceNotFoundFault:
        return None


def source_instance(rds: Any, env: str) -> SourceInstance:
    """The env's instance, which must be available and keep automated backups (no point-in-time restore without)."""
    identifier = naming.db_instance_id(env)
    item = describe(rds, identifier)
    if item is None:
        raise DrillError(f"database {identifier} does not exist: is the environment deployed?")
    source = _source(item)
    if source.status != "available":
        raise DrillError(f"database {identifier} is {source.status}; a drill needs it available")
    if source.backup_retention_days == 0 or source.latest_restorable_time is None:
        raise DrillError(f"database {identifier} keeps no automated backups (BackupRetentionPeriod 0): nothing to restore to a point in time")
    return source


def latest_restorable_time(rds: Any, identifier: str) -> datetime:
    item = describe(rds, identifier)
    latest = item.get("LatestRestorableTime") if item else None
    if latest is None:
        raise DrillError(f"{identifier} reports no LatestRestorableTime")
    return latest  # type: ignore[no-any-return]


def wait_restorable(rds: Any, identifier: str, after: datetime, *, timeout_s: float, poll_s: float, on_poll: Callable[[datetime | None], None]) -> datetime:
    """Poll until the instance's LatestRestorableTime passes ``after``; return it. ``on_poll`` sees every value read."""
    deadline = time.monotonic() + timeout_s
    while True:
        item = describe(rds, identifier)
        latest = item.get("LatestRestorableTime") if item else None
        on_poll(latest)
        if latest is not None and latest >= after:
            return latest  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            raise DrillError(f"{identifier}: LatestRestorableTime ({latest}) did not pass {after.isoformat()} within {timeout_s:.0f} s")
        time.sleep(poll_s)


def request_restore(rds: Any, spec: EnvironmentSpec, source: SourceInstance, scratch: str) -> None:
    args: dict[str, Any] = {
        "SourceDBInstanceIdentifier": source.identifier,
        "TargetDBInstanceIdentifier": scratch,
        "UseLatestRestorableTime": True,
        "DBInstanceClass": source.instance_class,
        "VpcSecurityGroupIds": list(source.security_groups),
        "MultiAZ": False,
        "PubliclyAccessible": False,
        "DeletionProtection": False,
        "Tags": [{"Key": k, "Value": v} for k, v in {**spec.resource_tags(), "Purpose": "dr-drill"}.items()],
    }
    if source.subnet_group:
        args["DBSubnetGroupName"] = source.subnet_group
    if source.parameter_group:
        args["DBParameterGroupName"] = source.parameter_group
    rds.restore_db_instance_to_point_in_time(**args)


def wait_available(rds: Any, scratch: str, *, deadline: float, poll_s: float, on_status: Callable[[str], None]) -> dict[str, Any] | None:
    """The scratch instance once available; None if ``deadline`` (monotonic) passes first."""
    while time.monotonic() < deadline:
        item = describe(rds, scratch)
        status = item.get("DBInstanceStatus", "unknown") if item else "not found"
        if item is not None and status == "available":
            return item
        if status in ("failed", "incompatible-restore", "incompatible-parameters", "incompatible-network", "storage-full", "not found"):
            raise DrillError(f"restore {scratch} is {status}")
        on_status(status)
        time.sleep(poll_s)
    return None


def _appears(rds: Any, scratch: str, *, settle_s: float, poll_s: float) -> bool:
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        time.sleep(poll_s)
        if describe(rds, scratch) is not None:
            return True
    return False


def delete_scratch(rds: Any, scratch: str, *, retry_s: float, confirm_s: float, poll_s: float) -> str:
    """Delete the scratch instance (no final snapshot), retrying for ``retry_s`` while its state refuses deletion
    (an instance still being created), then waiting up to ``confirm_s`` for it to be gone.

    Returns ``deleted`` (gone), ``deleting`` (on AWS deletion takes minutes) or ``not created``.
    """
    deadline = time.monotonic() + retry_s
    while True:
        try:
            item = describe(rds, scratch)
            if item is not None and item.get("DeletionProtection"):  # asked for none; lift it if the restore kept the source's
                rds.modify_db_instance(DBInstanceIdentifier=scratch, DeletionProtection=False, ApplyImmediately=True)
            rds.delete_db_instance(DBInstanceIdentifier=scratch, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
            break
        except rds.exceptions.DBInstanceNotFoundFault:
            # A restore request cut short (Ctrl-C) may still be landing: look again before calling it never made.
            if _appears(rds, scratch, settle_s=min(retry_s, max(2.0, 2 * poll_s)), poll_s=poll_s):
                continue
            return "not created"
        except rds.exceptions.InvalidDBInstanceStateFault as error:
            item = describe(rds, scratch)
            if item is not None and item.get("DBInstanceStatus") == "deleting":
                break
            if time.monotonic() >= deadline:
                raise DrillError(f"could not delete {scratch}: {error}") from None
            time.sleep(poll_s)
    deadline = time.monotonic() + confirm_s
    while time.monotonic() < deadline:
        if describe(rds, scratch) is None:
            return "deleted"
        time.sleep(poll_s)
    return "deleting"
