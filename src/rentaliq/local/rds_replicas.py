"""RDS read replicas that stream: CreateDBInstanceReadReplica, PromoteReadReplica, and a deleted primary's replicas.

moto makes a replica a shallow copy of its primary's object, sharing its server. Here a replica gets its own
server, a hot standby streaming from the primary on its own port (read-only: SQLSTATE 25006), its own
identity (DbiResourceId), no automated backups and no deletion protection unless asked, as on RDS.
PromoteReadReplica, and deleting the primary, end its recovery: it becomes an independent primary.
"""

from __future__ import annotations

from typing import Any

from moto.rds.exceptions import RDSClientError

from rentaliq.local import rds_classes
from rentaliq.local import rds_postgres as bound
from rentaliq.local import rds_recovery as recovery
from rentaliq.local.postgres import PostgresEngineError


def install() -> None:
    def create_db_instance_read_replica(original, backend, db_kwargs):
        primary = backend.find_db_from_id(db_kwargs["source_db_instance_identifier"])
        if str(db_kwargs["db_instance_identifier"]).lower() in backend.databases:
            raise RDSClientError("DBInstanceAlreadyExists", "DB instance already exists")
        if bound.is_bound(primary) and primary.status != "available":
            raise RDSClientError("InvalidDBInstanceState", f"Instance {primary.db_instance_identifier} is not in available state.")
        if bound.is_bound(primary) and not primary.is_replica and not recovery.wants_backups(primary):
            raise RDSClientError(
                "InvalidDBInstanceState",
                "Automated backups are not enabled for this database instance. To enable automated backups, "
                "use ModifyDBInstance to set the backup retention period to a non-zero value.",
            )
        replica = original(backend, db_kwargs)
        if not bound.is_bound(primary):
            return replica
        # moto's replica is a shallow copy of the primary: give it its own server and its own lists.
        for private in ("_rentaliq_endpoint",):
            replica.__dict__.pop(private, None)
        replica.replicas = []
        replica.tags = list(db_kwargs.get("tags") or [])
        replica.backup_retention_period = 0  # RDS for PostgreSQL replicas start without automated backups
        replica.deletion_protection = bool(db_kwargs.get("deletion_protection"))  # RDS's default, not the primary's
        replica.multi_az = bool(db_kwargs.get("multi_az"))
        replica.dbi_resource_id = recovery.new_resource_id()  # a copy of the primary's object: its own identity
        bound.engine().set_aside(replica.db_instance_identifier)  # an orphan of that name is never adopted
        try:
            replica._rentaliq_endpoint = bound.engine().create_replica(
                replica.db_instance_identifier,
                primary.db_instance_identifier,
                force_ssl=bound.force_ssl(backend, replica),
                max_connections=rds_classes.max_connections(replica.db_instance_class),
            )
        except PostgresEngineError as error:
            backend.databases.pop(replica.db_instance_identifier, None)
            primary.remove_replica(replica)
            raise RDSClientError("InvalidDBInstanceState", f"read replica {replica.db_instance_identifier} could not be created: {error}") from None
        return replica

    def promote_read_replica(original, backend, db_kwargs):
        db = backend.describe_db_instances(db_kwargs["db_instance_identifier"])[0]
        if not db.is_replica:
            raise RDSClientError("InvalidDBInstanceState", f"DB instance {db.db_instance_identifier} is not a read replica.")
        promoted = original(backend, db_kwargs)
        if bound.is_bound(promoted):
            promote_locally(backend, promoted)
        return promoted

    recovery.wrap_backend_method("create_db_instance_read_replica", create_db_instance_read_replica)
    recovery.wrap_backend_method("promote_read_replica", promote_read_replica)


def promote_locally(backend: Any, replica: Any) -> None:
    """The replica's server leaves recovery and the metadata says it is nobody's replica any more."""
    try:
        bound.engine().promote(replica.db_instance_identifier)
    except PostgresEngineError as error:
        raise RDSClientError("InvalidDBInstanceState", f"read replica {replica.db_instance_identifier} could not be promoted: {error}") from None
    primary = backend.databases.get(str(replica.source_db_instance_identifier or "").lower())
    if primary is not None and replica.db_instance_identifier in primary.replicas:
        primary.remove_replica(replica)
    replica.is_replica = False
    replica.source_db_instance_identifier = None
    if not replica.backup_retention_period:
        replica.backup_retention_period = 1  # PromoteReadReplica's default, so the new primary is restorable
    if recovery.wants_backups(replica):
        recovery.start_backups(backend, replica)


def promote_replicas_of(backend: Any, primary: Any) -> None:
    """Deleting a primary promotes its read replicas, as RDS does."""
    for replica_id in list(primary.replicas):
        replica = backend.databases.get(replica_id)
        if replica is not None and bound.is_bound(replica):
            promote_locally(backend, replica)
