"""The live DB instance, read once through describe-db-instances into a frozen dataclass.

Restores and replicas take their network and parameter settings from here (the environment as it runs),
never from a copy of the template: what was changed live (a scaled class, a new security group) is what a
restored instance must fit into.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.deploy.commands import command
from rentaliq.deploy.target import Target
from rentaliq.ops.recovery.errors import RecoveryError, error_code, from_aws

NOT_FOUND = ("DBInstanceNotFound", "DBInstanceNotFoundFault")


@dataclass(frozen=True)
class LiveInstance:
    identifier: str
    status: str
    instance_class: str
    allocated_storage: int
    max_allocated_storage: int | None
    multi_az: bool
    subnet_group: str | None
    security_groups: tuple[str, ...]
    parameter_group: str | None
    address: str | None
    port: int | None
    replica_source: str | None
    replicas: tuple[str, ...]
    backup_retention_days: int
    latest_restorable: datetime | None
    maintenance_window: str | None
    deletion_protection: bool
    availability_zone: str | None
    secondary_availability_zone: str | None
    created: datetime | None = None
    pending: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, db: dict[str, Any]) -> LiveInstance:
        endpoint = db.get("Endpoint") or {}
        groups = db.get("DBParameterGroups") or [{}]
        return cls(
            identifier=db["DBInstanceIdentifier"],
            status=db.get("DBInstanceStatus", "unknown"),
            instance_class=db.get("DBInstanceClass", ""),
            allocated_storage=int(db.get("AllocatedStorage") or 0),
            max_allocated_storage=db.get("MaxAllocatedStorage"),
            multi_az=bool(db.get("MultiAZ")),
            subnet_group=(db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            security_groups=tuple(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", []) if g.get("Status", "active") == "active"),
            parameter_group=groups[0].get("DBParameterGroupName"),
            address=endpoint.get("Address"),
            port=endpoint.get("Port"),
            replica_source=db.get("ReadReplicaSourceDBInstanceIdentifier"),
            replicas=tuple(db.get("ReadReplicaDBInstanceIdentifiers", [])),
            backup_retention_days=int(db.get("BackupRetentionPeriod") or 0),
            latest_restorable=db.get("LatestRestorableTime"),
            maintenance_window=db.get("PreferredMaintenanceWindow"),
            deletion_protection=bool(db.get("DeletionProtection")),
            availability_zone=db.get("AvailabilityZone"),
            secondary_availability_zone=db.get("SecondaryAvailabilityZone"),
            created=db.get("InstanceCreateTime"),
            pending=dict(db.get("PendingModifiedValues") or {}),
        )

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}" if self.address else "(no endpoint yet)"


def describe(target: Target, identifier: str) -> LiveInstance | None:
    """The instance, or None when RDS does not know it."""
    try:
        dbs = target.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            return None
        raise from_aws(error, "", f"describe {identifier}") from None
    return LiveInstance.from_api(dbs[0]) if dbs else None


def environment_instance(target: Target, env: str) -> LiveInstance:
    """The environment's own instance (``rentaliq-{env}-db``), or one line saying it is not deployed."""
    identifier = naming.db_instance_id(env)
    instance = describe(target, identifier)
    if instance is None:
        raise RecoveryError(f"{identifier} does not exist: environment {env} is not deployed here; deploy it with `{command('up', env)}`")
    return instance


def require_free(target: Target, identifier: str, option: str | None) -> None:
    """A restore or replica never overwrites: refuse a name already in use (``option`` None: the default name)."""
    if describe(target, identifier) is not None:
        named = f"{option} {identifier}" if option else f"the default name {identifier}"
        raise RecoveryError(f"refusing {named}: a DB instance with that name already exists; choose another name (a restore never overwrites)")
