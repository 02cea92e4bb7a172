"""`rentaliq replica create|promote|delete ENV [NAME]`: read replicas of the environment's database.

A replica lives in its primary's subnet group and parameter group (RDS's default for a same-Region replica)
and gets the environment's security groups explicitly (RDS would otherwise give it the VPC's default group).
promote and delete act only on a replica of the environment's own instance: never on the primary, never on
an instance that is no longer a replica. Without NAME they take the environment's only replica, or ask.
A replica gets its replica-lag alarm when it is available; promoting or deleting it removes the alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.contract import BACKUP_TAG, replica_lag_alarm
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.recovery import names, replica_alarms, waits
from rentaliq.ops.recovery.errors import RecoveryError, from_aws
from rentaliq.ops.recovery.instances import LiveInstance, describe, environment_instance, require_free

ACTIONS = ("create", "promote", "delete")


@dataclass(frozen=True)
class ReplicaPlan:
    env: str
    action: str
    primary: str
    replica: str
    instance_class: str
    security_groups: tuple[str, ...]
    tags: tuple[tuple[str, str], ...] = ()

    def lines(self) -> list[str]:
        if self.action == "create":
            return [
                f"replica create {self.env}: a read replica {self.replica} of {self.primary} ({self.instance_class}, "
                f"security groups {', '.join(self.security_groups) or '(none)'}), then wait until it is available",
                f"  then the alarm {replica_lag_alarm(self.replica)} on its ReplicaLag, notifying {naming.alerts_topic(self.env)}",
            ]
        if self.action == "promote":
            return [f"replica promote {self.env}: {self.replica} stops following {self.primary} and becomes an independent, writable instance"]
        return [f"replica delete {self.env}: delete the read replica {self.replica} of {self.primary} (no final snapshot: RDS takes none of a replica)"]


def plan(target: Target, spec: EnvironmentSpec, action: str, name: str | None) -> ReplicaPlan:
    if action not in ACTIONS:
        raise RecoveryError(f"replica action {action!r} is unknown; allowed: {', '.join(ACTIONS)}")
    env = spec.name.value
    primary = environment_instance(target, env)
    if action == "create":
        replica = names.instance_identifier(name, "NAME") if name else _free_name(target, env)
        require_free(target, replica, "NAME" if name else None)
        if primary.backup_retention_days == 0:
            raise RecoveryError(f"{primary.identifier} keeps no automated backups (BackupRetentionPeriod 0); RDS needs them to create a read replica")
        tags = {**spec.resource_tags(), **BACKUP_TAG}
        return ReplicaPlan(env, action, primary.identifier, replica, primary.instance_class, primary.security_groups, tuple(sorted(tags.items())))
    existing = _existing(target, primary, name)
    return ReplicaPlan(env, action, primary.identifier, existing.identifier, existing.instance_class, existing.security_groups)


def _free_name(target: Target, env: str) -> str:
    for candidate in names.replicas(env):
        if describe(target, candidate) is None:
            return candidate
    raise RecoveryError(f"every default replica name of {env} is taken; give a NAME")


def _existing(target: Target, primary: LiveInstance, name: str | None) -> LiveInstance:
    """The named replica of ``primary``, or its only one; refuse anything that is not its replica."""
    if name is None:
        if len(primary.replicas) != 1:
            listing = ", ".join(primary.replicas) if primary.replicas else "none"
            raise RecoveryError(f"give the replica's NAME: {primary.identifier} has {len(primary.replicas)} read replicas ({listing})")
        name = primary.replicas[0]
    identifier = names.instance_identifier(name, "NAME")
    if identifier == primary.identifier:
        raise RecoveryError(f"refusing: {identifier} is the environment's primary, not a read replica; replicas: {', '.join(primary.replicas) or 'none'}")
    replica = describe(target, identifier)
    if replica is None:
        raise RecoveryError(f"NAME {identifier}: no such DB instance; replicas of {primary.identifier}: {', '.join(primary.replicas) or 'none'}")
    source = (replica.replica_source or "").rpartition(":db:")[2] or replica.replica_source  # an identifier, or an ARN for cross-Region
    if source != primary.identifier:
        raise RecoveryError(f"refusing: {identifier} is not a read replica of {primary.identifier}; replicas: {', '.join(primary.replicas) or 'none'}")
    return replica


def run(target: Target, spec: EnvironmentSpec, replica_plan: ReplicaPlan, progress: waits.Progress) -> LiveInstance | None:
    """Carry out the plan and wait for its end state; the replica as it is then (None once deleted). The replica's
    lag alarm follows it: created with it, removed when it is promoted or deleted."""
    rds, p = target.client("rds"), replica_plan
    try:
        if p.action == "create":
            rds.create_db_instance_read_replica(
                DBInstanceIdentifier=p.replica,
                SourceDBInstanceIdentifier=p.primary,
                DBInstanceClass=p.instance_class,
                VpcSecurityGroupIds=list(p.security_groups),
                PubliclyAccessible=False,
                CopyTagsToSnapshot=True,
                Tags=[{"Key": k, "Value": v} for k, v in p.tags],
            )
        elif p.action == "promote":
            rds.promote_read_replica(DBInstanceIdentifier=p.replica)
        else:
            rds.delete_db_instance(DBInstanceIdentifier=p.replica, SkipFinalSnapshot=True)
    except ClientError as error:
        raise from_aws(error, p.env, f"replica {p.action} {p.replica}") from None
    progress(f"replica {p.action} {p.replica}: started")
    if p.action == "delete":
        waits.instance_gone(target, p.replica, progress)
        replica_alarms.remove(target, p.env, p.replica)
        return None
    if p.action == "promote":
        promoted = _promoted(target, p.replica, progress)
        replica_alarms.remove(target, p.env, p.replica)
        return promoted
    available = waits.instance_available(target, p.replica, progress)
    if alarm := replica_alarms.put(target, spec, p.replica):
        progress(f"replica {p.action} {p.replica}: alarm {alarm} created")
    return available


def _promoted(target: Target, identifier: str, progress: waits.Progress) -> LiveInstance:
    """A promotion goes available → modifying → rebooting → available: done once it no longer names a source."""
    return waits.instance_available(target, identifier, progress, until=lambda i: f"still a replica of {i.replica_source}" if i.replica_source else None)
