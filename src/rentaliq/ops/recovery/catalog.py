"""What can be restored: the environment's automated and manual snapshots and its restorable window.

The window comes from describe-db-instance-automated-backups (``RestoreWindow``), the one AWS documents for
point-in-time restore; where that has no entry yet (a new instance, or an API without it), from the
instance's ``LatestRestorableTime`` with no known earliest time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.recovery.errors import RecoveryError, error_code, from_aws
from rentaliq.ops.recovery.instances import describe
from rentaliq.ops.recovery.times import utc
from rentaliq.ops.recovery.waits import SNAPSHOT_NOT_FOUND


@dataclass(frozen=True)
class Snapshot:
    identifier: str
    kind: str  # automated | manual
    status: str
    instance: str
    created: datetime | None
    allocated_gib: int
    percent: int | None

    @classmethod
    def from_api(cls, snap: dict[str, Any]) -> Snapshot:
        return cls(
            snap["DBSnapshotIdentifier"],
            str(snap.get("SnapshotType", "manual")),
            str(snap.get("Status", "unknown")),
            str(snap.get("DBInstanceIdentifier", "")),
            snap.get("SnapshotCreateTime"),
            int(snap.get("AllocatedStorage") or 0),
            snap.get("PercentProgress"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created": utc(self.created) if self.created else None}


@dataclass(frozen=True)
class Catalog:
    instance: str
    deployed: bool
    retention_days: int | None
    earliest: datetime | None
    latest: datetime | None
    snapshots: tuple[Snapshot, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "deployed": self.deployed,
            "backup_retention_days": self.retention_days,
            "restore_window": {"earliest": utc(self.earliest) if self.earliest else None, "latest": utc(self.latest) if self.latest else None},
            "snapshots": [s.to_dict() for s in self.snapshots],
        }


def _snapshots(target: Target, instance: str) -> list[Snapshot]:
    rds, found = target.client("rds"), list[Snapshot]()
    for kind in ("automated", "manual"):
        for page in rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=instance, SnapshotType=kind):
            found.extend(Snapshot.from_api(s) for s in page.get("DBSnapshots", []))
    return sorted(found, key=lambda s: (s.created is None, s.created or datetime.min), reverse=False)


def restore_window(target: Target, instance: str) -> tuple[datetime | None, datetime | None]:
    """(earliest, latest) restorable time of the instance; None where unknown.

    Without a RestoreWindow the earliest is an upper bound of what AWS would allow: the later of the
    instance's creation and the start of its retention period.
    """
    try:
        backups = target.client("rds").describe_db_instance_automated_backups(DBInstanceIdentifier=instance).get("DBInstanceAutomatedBackups", [])
    except ClientError as error:
        if error_code(error) not in ("DBInstanceAutomatedBackupNotFound", "DBInstanceAutomatedBackupNotFoundFault", "DBInstanceNotFound"):
            raise from_aws(error, "", f"reading the automated backups of {instance}") from None
        backups = []
    window = next((b.get("RestoreWindow") for b in backups if b.get("Status", "active") == "active" and b.get("RestoreWindow")), None)
    if window and window.get("LatestTime"):
        return window.get("EarliestTime"), window.get("LatestTime")
    live = describe(target, instance)
    if live is None:
        return None, None
    # No RestoreWindow: nothing before the instance existed, nor before its retention, can be restorable.
    floor = live.latest_restorable - timedelta(days=live.backup_retention_days) if live.latest_restorable else None
    earliest = max((t for t in (live.created, floor) if t is not None), default=None)
    return earliest, live.latest_restorable


def catalog(target: Target, spec: EnvironmentSpec) -> Catalog:
    """Everything restorable for the environment's database, oldest snapshot first."""
    identifier = naming.db_instance_id(spec.name.value)
    try:
        live = describe(target, identifier)
        snapshots = _snapshots(target, identifier)
        earliest, latest = restore_window(target, identifier) if live else (None, None)
    except ClientError as error:
        raise from_aws(error, spec.name.value, f"listing the backups of {identifier}") from None
    return Catalog(identifier, live is not None, live.backup_retention_days if live else None, earliest, latest, tuple(snapshots))


def snapshot(target: Target, env: str, snapshot_id: str) -> Snapshot:
    """One snapshot by identifier, or one line saying it does not exist (AWS's DBSnapshotNotFound)."""
    try:
        snaps = target.client("rds").describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    except ClientError as error:
        if error_code(error) in SNAPSHOT_NOT_FOUND:
            raise RecoveryError(f"--snapshot {snapshot_id}: DBSnapshotNotFound: no such snapshot; list them with `{_backups(env)}`") from None
        raise from_aws(error, env, f"reading snapshot {snapshot_id}") from None
    if not snaps:
        raise RecoveryError(f"--snapshot {snapshot_id}: DBSnapshotNotFound: no such snapshot; list them with `{_backups(env)}`")
    return Snapshot.from_api(snaps[0])


def exists(target: Target, snapshot_id: str) -> bool:
    try:
        return bool(target.client("rds").describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"])
    except ClientError as error:
        if error_code(error) in SNAPSHOT_NOT_FOUND:
            return False
        raise


def _backups(env: str) -> str:
    from rentaliq.deploy.commands import command

    return command("backups", env)
