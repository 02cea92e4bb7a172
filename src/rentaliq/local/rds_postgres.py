"""Bind moto's RDS DB instances to real PostgreSQL servers.

The hooks sit on moto's RDS *backend*, below both the RDS API and CloudFormation, so an instance created
either way gets a server; stopping, starting, rebooting, renaming, deleting it or changing its password
acts on that server. The RDS status and the server never disagree: a status changes only when the server
action succeeded, and a failed one answers InvalidDBInstanceState (never a 500). ``rds_rules`` makes
identifiers case-insensitive before these hooks run; ``postgres_supervisor`` restarts a server that died.
``Endpoint`` then points at 127.0.0.1 and the server's port, while ``DbInstancePort`` keeps the configured
port (5432), as the spec says.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from moto.rds import models as rds_models
from moto.rds.exceptions import InvalidDBInstanceStateError, RDSClientError

from rentaliq.local import (
    postgres_supervisor,
    rds_backup_schedule,
    rds_classes,
    rds_events,
    rds_modifications,
    rds_multi_az,
    rds_recovery,
    rds_replicas,
    rds_rules,
    rds_snapshots,
)
from rentaliq.local.postgres import Endpoint, PostgresEngine, PostgresEngineError, PostgresNotInstalled
from rentaliq.local.postgres.standby import standby_id

log = logging.getLogger(__name__)

_engine: PostgresEngine | None = None
_supervisor: postgres_supervisor.Supervisor | None = None
_schedule: rds_backup_schedule.BackupSchedule | None = None


def engine() -> PostgresEngine:
    if _engine is None:
        raise RuntimeError("the local PostgreSQL engine is not installed in this process")
    return _engine


def force_ssl(backend: Any, db: Any) -> bool:
    """``rds.force_ssl`` from the instance's parameter group; RDS for PostgreSQL 15 defaults it to 0."""
    group = backend.db_parameter_groups.get(getattr(db, "db_parameter_group_name", None) or "")
    if group is None:
        return False
    param = group.parameters.get("rds.force_ssl") or {}
    return str(param.get("ParameterValue", "0")) == "1"


def _is_postgres(db: Any) -> bool:
    return str(getattr(db, "engine", "")).lower() == "postgres"


def _bind(backend: Any, db: Any, master_password: str) -> None:
    """A server for a new instance: fresh, or the copy a restore in progress asked for (``rds_recovery``)."""

    def fresh() -> Endpoint:
        return engine().create(
            db.db_instance_identifier,
            master_username=db.master_username,
            master_password=master_password,
            dbname=db.db_name or None,
            force_ssl=force_ssl(backend, db),
            max_connections=rds_classes.max_connections(db.db_instance_class),
        )

    for leftover in (db.db_instance_identifier, standby_id(db.db_instance_identifier)):
        engine().set_aside(leftover)  # moto has no such instance, so a server of that name is an orphan
    endpoint = rds_recovery.make_server(backend, db, fresh)
    try:
        rds_recovery.after_bind(backend, db)
        rds_multi_az.after_bind(db)
    except PostgresEngineError:
        engine().delete(db.db_instance_identifier)
        engine().remove_standby(db.db_instance_identifier)
        raise
    db._rentaliq_endpoint = endpoint  # bound only now: the supervisor and the backup schedule leave it alone until then


def _local_endpoint(db: Any) -> Endpoint | None:
    return getattr(db, "_rentaliq_endpoint", None)


def is_bound(db: Any) -> bool:
    return _local_endpoint(db) is not None


def _after(method_name: str):
    """Wrap an RDSBackend method; ``hook(backend, result, *args, **kwargs)`` runs after it succeeds."""

    def decorate(hook):
        original = getattr(rds_models.RDSBackend, method_name)

        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            hook(self, result, *args, **kwargs)
            return result

        setattr(rds_models.RDSBackend, method_name, wrapper)
        return hook

    return decorate


def _refuse(db: Any, action: str, error: Exception) -> RDSClientError:
    """A server action failed: the API call fails too (never a 500), and the caller restored the status."""
    return RDSClientError("InvalidDBInstanceState", f"DB instance {db.db_instance_identifier} could not {action}: {error}")


def install(state_dir: Path) -> None:
    global _engine, _supervisor, _schedule
    _engine = PostgresEngine(state_dir / "postgres")
    rds_events.install()

    original_endpoint = rds_models.DBInstance.endpoint.fget

    def endpoint(self) -> dict[str, Any]:
        local = _local_endpoint(self)
        return {"Address": local.host, "Port": local.port} if local else original_endpoint(self)

    def address(self) -> str:
        local = _local_endpoint(self)
        return local.host if local else f"{self.db_instance_identifier}.aaaaaaaaaa.{self.region}.rds.amazonaws.com"

    rds_models.DBInstance.endpoint = property(endpoint)
    rds_models.DBInstance.address = property(address)

    _watch_parameter_groups()

    # Every hook below keeps the RDS status and the server in agreement: a status only changes when the
    # server action succeeded, and the identifier used for the server is the instance's (lowercase) one.

    @_after("create_db_instance")
    def created(backend, db, db_kwargs):
        if _is_postgres(db) and not db_kwargs.get("db_cluster_identifier"):
            password = rds_rules.managed_password(db) or db_kwargs.get("master_user_password") or ""
            try:
                _check_class_and_retention({"db_instance_class": db.db_instance_class, "backup_retention_period": db.backup_retention_period})
            except RDSClientError:
                backend.databases.pop(db.db_instance_identifier, None)  # nothing half-created
                raise
            try:
                _bind(backend, db, password)
            except (PostgresEngineError, PostgresNotInstalled) as error:
                backend.databases.pop(db.db_instance_identifier, None)  # nothing half-created
                if getattr(db, "master_user_secret", None) is not None:
                    db.master_user_secret.delete_secret()
                raise RDSClientError("InvalidParameterCombination", f"local PostgreSQL for {db.db_instance_identifier}: {error}") from None

    @_after("stop_db_instance")
    def stopped(backend, db, *args, **kwargs):
        if _local_endpoint(db):
            try:
                engine().stop(db.db_instance_identifier)
            except PostgresEngineError as error:
                db.status = "available"
                raise _refuse(db, "stop", error) from None

    @_after("start_db_instance")
    def started(backend, db, *args, **kwargs):
        if _local_endpoint(db):
            db.status = "starting"
            try:
                db._rentaliq_endpoint = engine().start(db.db_instance_identifier)
            except PostgresEngineError as error:
                db.status = "stopped"
                raise _refuse(db, "start", error) from None
            db.status = "available"

    @_after("reboot_db_instance")
    def rebooted(backend, db, *args, **kwargs):
        if _local_endpoint(db):
            previous, db.status = db.status, "rebooting"
            try:
                db._rentaliq_endpoint = engine().reboot(db.db_instance_identifier)
            except PostgresEngineError as error:
                db.status = previous
                raise _refuse(db, "reboot", error) from None
            db.status = "available" if previous == "rebooting" else previous
            rds_events.record(db, rds_events.RESTARTED)

    @_after("delete_db_instance")
    def deleted(backend, db, *args, **kwargs):
        if _local_endpoint(db):
            try:
                rds_replicas.promote_replicas_of(backend, db)
                engine().delete(db.db_instance_identifier)
                rds_recovery.forget_archive(db)
            except PostgresEngineError as error:
                backend.databases[db.db_instance_identifier] = db  # still there, as its server is
                db.status = "available"
                raise _refuse(db, "be deleted", error) from None

    original_modify = rds_models.RDSBackend.modify_db_instance

    @functools.wraps(original_modify)
    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        db = self.describe_db_instances(db_instance_identifier)[0]
        old_id = db.db_instance_identifier
        if _local_endpoint(db) and db.status != "available" and _touches_server(db, db_kwargs):
            raise InvalidDBInstanceStateError(old_id, "stop")  # "Instance <id> is not in available state."
        if _local_endpoint(db):
            _check_class_and_retention(db_kwargs)
        before = {"class": db.db_instance_class, "retention": int(db.backup_retention_period or 0)}
        pending = rds_modifications.defer(db, db_kwargs) if _local_endpoint(db) else {}
        result = original_modify(self, db_instance_identifier, db_kwargs)
        if _local_endpoint(db):
            rds_modifications.record_pending(db, pending)
            _apply_modification(self, db, old_id, db_kwargs)
            _apply_backups_and_class(self, db, before)
        return result

    rds_models.RDSBackend.modify_db_instance = modify_db_instance

    original_reboot = rds_models.RDSBackend.reboot_db_instance

    @functools.wraps(original_reboot)
    def reboot_db_instance(self, db_instance_identifier, *args, **kwargs):
        db = self.describe_db_instances(db_instance_identifier)[0]
        if _local_endpoint(db) and db.status != "available":  # RDS reboots only an available instance
            raise InvalidDBInstanceStateError(db.db_instance_identifier, "stop")
        return original_reboot(self, db_instance_identifier, *args, **kwargs)

    rds_models.RDSBackend.reboot_db_instance = reboot_db_instance

    _supervisor = postgres_supervisor.Supervisor(_engine, is_bound)
    rds_recovery.install(state_dir)  # after the hooks above, so its wrappers see bound instances
    rds_multi_az.install()
    _schedule = rds_backup_schedule.BackupSchedule()


def _apply_modification(backend: Any, db: Any, old_id: str, db_kwargs: Any) -> None:
    new_id = db.db_instance_identifier
    if new_id != old_id:
        previous, db.status = db.status, "renaming"
        try:
            db._rentaliq_endpoint = engine().rename(old_id, new_id)
        except PostgresEngineError as error:
            backend.databases.pop(new_id, None)
            db.db_instance_identifier = old_id
            backend.databases[old_id] = db
            db.status = previous
            raise _refuse(db, f"be renamed to {new_id}", error) from None
        db.status = previous
        _follow_rename(backend, db, old_id, new_id)
    try:
        if db_kwargs.get("master_user_password"):
            engine().set_master_password(new_id, db.master_username, db_kwargs["master_user_password"])
        elif (db_kwargs.get("manage_master_user_password") or db_kwargs.get("rotate_master_user_password")) and (password := rds_rules.managed_password(db)):
            engine().set_master_password(new_id, db.master_username, password)
        if "db_parameter_group_name" in db_kwargs:
            engine().setforce_ssl(new_id, force_ssl(backend, db))
    except PostgresEngineError as error:
        raise _refuse(db, "apply the modification", error) from None


def _apply_backups_and_class(backend: Any, db: Any, before: dict[str, Any]) -> None:
    """Retention 0 <-> >0 starts or stops automated backups; a new class restarts the server now."""
    retention = int(db.backup_retention_period or 0)
    try:
        if before["retention"] == 0 and retention > 0 and not db.is_replica:
            rds_recovery.start_backups(backend, db)
        elif before["retention"] > 0 and retention == 0:
            rds_recovery.stop_backups(backend, db)
        if db.db_instance_class != before["class"]:
            rds_modifications.restart_for_class(backend, db)
    except PostgresEngineError as error:
        raise _refuse(db, "apply the modification", error) from None


def _check_class_and_retention(db_kwargs: Any) -> None:
    """What RDS refuses before changing anything: an instance class it does not offer, retention beyond 35 days."""
    instance_class = db_kwargs.get("db_instance_class")
    if instance_class is not None and rds_classes.memory_bytes(instance_class) is None:
        raise RDSClientError(
            "InvalidParameterCombination",
            f"RDS does not support creating a DB instance with the following combination: DBInstanceClass={instance_class}, Engine=postgres.",
        )
    retention = db_kwargs.get("backup_retention_period")
    if retention is not None and not 0 <= int(retention) <= 35:
        raise RDSClientError("InvalidParameterValue", f"The backup retention period must be between 0 and 35 days, not {retention}.")


def _follow_rename(backend: Any, db: Any, old_id: str, new_id: str) -> None:
    """Replicas name their source, and a primary its replicas: both follow a rename, as on RDS."""
    for replica_id in list(getattr(db, "replicas", [])):
        if (replica := backend.databases.get(replica_id)) is not None:
            replica.source_db_instance_identifier = new_id
    source = backend.databases.get(str(getattr(db, "source_db_instance_identifier", None) or "").lower())
    if source is not None and old_id in source.replicas:
        source.replicas[source.replicas.index(old_id)] = new_id


def _touches_server(db: Any, db_kwargs: Any) -> bool:
    """Changes the local server must carry out, which need it running (the others are RDS metadata)."""
    renamed = str(db_kwargs.get("new_db_instance_identifier") or db.db_instance_identifier).lower() != db.db_instance_identifier
    return bool(
        renamed
        or db_kwargs.get("master_user_password")
        or db_kwargs.get("manage_master_user_password")
        or db_kwargs.get("rotate_master_user_password")
        or "db_parameter_group_name" in db_kwargs
        or (db_kwargs.get("apply_immediately") and db_kwargs.get("db_instance_class") not in (None, db.db_instance_class))
        or ("multi_az" in db_kwargs and bool(db_kwargs["multi_az"]) != bool(db.multi_az))
    )


def _watch_parameter_groups() -> None:
    """`rds.force_ssl` changed in a parameter group reaches every running server that uses the group."""
    original = rds_models.RDSBackend.modify_db_parameter_group

    @functools.wraps(original)
    def modify_db_parameter_group(self, db_parameter_group_name, *args, **kwargs):
        result = original(self, db_parameter_group_name, *args, **kwargs)
        for db in list(self.databases.values()):
            if _local_endpoint(db) and getattr(db, "db_parameter_group_name", None) == db_parameter_group_name:
                engine().setforce_ssl(db.db_instance_identifier, force_ssl(self, db))
        return result

    rds_models.RDSBackend.modify_db_parameter_group = modify_db_parameter_group


def after_restore() -> None:
    """Bring back the servers of instances that were running when the local cloud stopped.

    A server that cannot start must not keep the local cloud down: it is logged, and the supervisor's
    first pass marks its instance ``failed`` with RDS's event, as it would after a crash.
    """
    if _engine is not None:
        try:
            _engine.start_all()
        except PostgresEngineError as error:
            log.error("some PostgreSQL servers did not start: %s", error)
    if _supervisor is not None:
        _supervisor.settle()
        _supervisor.start()
    rds_snapshots.resume()
    if _schedule is not None:
        _schedule.start()


def stop_all() -> None:
    if _schedule is not None:
        _schedule.stop()
    if _supervisor is not None:
        _supervisor.stop()  # first, or it would restart the servers being stopped
    if _engine is not None:
        _engine.stop_all()
