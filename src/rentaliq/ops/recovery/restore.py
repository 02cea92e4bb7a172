"""`rentaliq restore ENV`: restore the environment's database to a NEW instance; never overwrite one.

From a snapshot (restore-db-instance-from-db-snapshot) or a point in time (restore-db-instance-to-point-in-time,
``--to-time`` or ``--latest``). RDS gives a restored instance the default security group and parameter group
unless told otherwise, so the plan reads the environment's live instance and passes its subnet group,
security groups and parameter group (TLS enforcement lives in the latter), its class and Multi-AZ setting.
Deletion protection only with --cutover, when the instance is to serve the environment.
Everything is checked in :func:`plan` before anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.contract import BACKUP_TAG
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.recovery import catalog, names, waits
from rentaliq.ops.recovery.errors import RecoveryError, from_aws
from rentaliq.ops.recovery.instances import LiveInstance, describe, environment_instance, require_free
from rentaliq.ops.recovery.times import check_in_window, utc

RESTORED_FROM_TAG = "rentaliq:restored-from"


@dataclass(frozen=True)
class Source:
    """Exactly one of: a snapshot, a time, the latest restorable time."""

    snapshot: str | None = None
    to_time: datetime | None = None
    latest: bool = False

    @classmethod
    def from_options(cls, snapshot: str | None, to_time: datetime | None, latest: bool) -> Source:
        given = [option for option, value in (("--snapshot", snapshot), ("--to-time", to_time), ("--latest", latest)) if value]
        if len(given) != 1:
            got = f"got {' and '.join(given)}" if given else "got none"
            raise RecoveryError(f"give exactly one of --snapshot ID, --to-time T, --latest ({got})")
        return cls(snapshot, to_time, latest)

    def describe(self, instance: str) -> str:
        if self.snapshot:
            return f"snapshot {self.snapshot}"
        return f"{instance} as of {utc(self.to_time)}" if self.to_time else f"{instance} at its latest restorable time"

    def tag(self, instance: str) -> str:
        return self.snapshot or f"{instance}@{utc(self.to_time) if self.to_time else 'latest'}"


@dataclass(frozen=True)
class RestorePlan:
    env: str
    source_instance: str
    new_instance: str
    source: Source
    instance_class: str
    subnet_group: str | None
    security_groups: tuple[str, ...]
    parameter_group: str | None
    multi_az: bool
    deletion_protection: bool
    tags: tuple[tuple[str, str], ...]
    cutover: bool

    def lines(self) -> list[str]:
        lines = [
            f"restore {self.env}: {self.source.describe(self.source_instance)} to a NEW instance {self.new_instance}",
            f"  class {self.instance_class}, Multi-AZ {'yes' if self.multi_az else 'no'}, deletion protection {'on' if self.deletion_protection else 'off'}",
            f"  subnet group {self.subnet_group}, security groups {', '.join(self.security_groups) or '(none)'}, parameter group {self.parameter_group}",
            f"  {self.source_instance} is not touched; wait until {self.new_instance} is available and print its endpoint",
        ]
        if self.cutover:
            lines.append(f"  then cut over: point {naming.secret_path(self.env, 'db/credentials')} and db/connection-string at {self.new_instance}")
        return lines


def plan(target: Target, spec: EnvironmentSpec, source: Source, name: str | None, *, cutover: bool, now: datetime | None = None) -> RestorePlan:
    """Check everything a restore needs and refuse now, before anything is created."""
    env = spec.name.value
    live = environment_instance(target, env)
    if name:
        new = names.instance_identifier(name, "--as")
        require_free(target, new, "--as")
    else:
        new = next((n for n in names.restored_instances(env, now or datetime.now(UTC)) if describe(target, n) is None), "")
        if not new:
            raise RecoveryError(f"every default name for a restored instance of {env} this minute is taken; give one with --as NAME")
    if source.snapshot:
        snap = catalog.snapshot(target, env, source.snapshot)
        if snap.instance != live.identifier:
            raise RecoveryError(
                f"--snapshot {snap.identifier} is a snapshot of {snap.instance or 'another instance'}, not of {live.identifier}; "
                "restore only the environment's own data into it"
            )
        if snap.status != "available":
            raise RecoveryError(
                f"--snapshot {snap.identifier} is {snap.status}, not available yet; wait for it "
                f"(`{target.aws_cli} rds describe-db-snapshots --db-snapshot-identifier {snap.identifier}`)"
            )
    else:
        _check_point_in_time(target, live, source, now or datetime.now(UTC))
    tags = {**spec.resource_tags(), **BACKUP_TAG, RESTORED_FROM_TAG: source.tag(live.identifier)}
    return RestorePlan(
        env,
        live.identifier,
        new,
        source,
        live.instance_class,
        live.subnet_group,
        live.security_groups,
        live.parameter_group,
        live.multi_az,
        live.deletion_protection and cutover,
        tuple(sorted(tags.items())),
        cutover,
    )


def _check_point_in_time(target: Target, live: LiveInstance, source: Source, now: datetime) -> None:
    if live.backup_retention_days == 0:
        raise RecoveryError(f"{live.identifier} keeps no automated backups (BackupRetentionPeriod 0): point-in-time restore is impossible; use --snapshot")
    earliest, latest = catalog.restore_window(target, live.identifier)
    if source.to_time is not None:
        if source.to_time > now:
            raise RecoveryError(f"--to-time {utc(source.to_time)} is in the future (now {utc(now)}); use --latest for the newest data")
        check_in_window(source.to_time, earliest, latest, live.identifier)


def run(target: Target, restore: RestorePlan, progress: waits.Progress) -> LiveInstance:
    """Create the instance as planned and wait until it is available."""
    rds = target.client("rds")
    common: dict[str, Any] = {
        "DBInstanceClass": restore.instance_class,
        "VpcSecurityGroupIds": list(restore.security_groups),
        "MultiAZ": restore.multi_az,
        "PubliclyAccessible": False,
        "CopyTagsToSnapshot": True,
        "DeletionProtection": restore.deletion_protection,
        "Tags": [{"Key": k, "Value": v} for k, v in restore.tags],
    }
    if restore.subnet_group:
        common["DBSubnetGroupName"] = restore.subnet_group
    if restore.parameter_group:
        common["DBParameterGroupName"] = restore.parameter_group
    source = restore.source
    try:
        if source.snapshot:
            rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=restore.new_instance, DBSnapshotIdentifier=source.snapshot, **common)
        else:
            when: dict[str, Any] = {"RestoreTime": source.to_time} if source.to_time else {"UseLatestRestorableTime": True}
            rds.restore_db_instance_to_point_in_time(
                SourceDBInstanceIdentifier=restore.source_instance, TargetDBInstanceIdentifier=restore.new_instance, **when, **common
            )
    except ClientError as error:
        raise from_aws(error, restore.env, f"restore of {source.describe(restore.source_instance)}") from None
    progress(f"restoring {source.describe(restore.source_instance)} to {restore.new_instance}")
    return waits.instance_available(target, restore.new_instance, progress)
