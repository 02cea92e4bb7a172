"""RDS backup and recovery on the local cloud, with the data underneath: snapshots, restores and replicas.

moto models snapshots, restores and read replicas as metadata: a restored instance is a fresh empty
server, a point-in-time restore calls itself a replica of its source, and a "replica" shares its
primary's server. These hooks make each API act on real copies of the data (``postgres.copies`` and
``postgres.archive``) while moto keeps the metadata:

- CreateDBSnapshot takes a physical copy, ``creating`` until it is complete (on a worker thread); a final
  snapshot on delete is taken before the server goes. Snapshots live in their own directories, so they
  outlive their instance; DeleteDBSnapshot frees the disk, CopyDBSnapshot makes an independent copy.
- RestoreDBInstanceFromDBSnapshot and RestoreDBInstanceToPointInTime create the new instance's server
  from the snapshot, or from the source's base backup plus archived WAL up to the restore time (refused
  outside the restore window with ``InvalidRestoreTime``). The new instance is nobody's replica.
- CreateDBInstanceReadReplica makes a streaming hot standby on its own port; PromoteReadReplica, and
  deleting the primary, promote it.
- Automated backups (retention > 0) are the instance's WAL archive and base backups, kept by
  ``rds_backup_schedule``; ``LatestRestorableTime`` and DescribeDBInstanceAutomatedBackups'
  ``RestoreWindow`` come from them, and each base backup is listed as an ``rds:`` automated snapshot.

Files live under ``<state>/rds-backups/``: ``snapshots/<id>.<token>/`` and ``archives/<DbiResourceId>/``.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import logging
import secrets
import shutil
import string
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.rds import models as rds_models
from moto.rds.exceptions import InvalidParameterCombination, RDSClientError

from rentaliq.local import rds_classes, rds_events
from rentaliq.local import rds_postgres as bound
from rentaliq.local.postgres import Endpoint, PostgresEngineError
from rentaliq.local.postgres.archive import restore_window

log = logging.getLogger(__name__)

_root: Path | None = None
_source: contextvars.ContextVar[Callable[[Any, Any], Endpoint] | None] = contextvars.ContextVar("rentaliq_rds_source", default=None)
_synchronous_snapshots: contextvars.ContextVar[bool] = contextvars.ContextVar("rentaliq_sync_snapshots", default=False)


def root() -> Path:
    if _root is None:
        raise RuntimeError("RDS recovery is not installed in this process")
    return _root


def archive_of(db: Any) -> Path:
    """One archive per instance, keyed by its DbiResourceId so renames and reused names never mix."""
    return root() / "archives" / str(db.dbi_resource_id)


def wants_backups(db: Any) -> bool:
    return int(getattr(db, "backup_retention_period", 0) or 0) > 0


def snapshot_dir(snapshot: Any) -> Path | None:
    value = getattr(snapshot, "_rentaliq_dir", None)
    return Path(value) if value else None


def make_server(backend: Any, db: Any, create_fresh: Callable[[], Endpoint]) -> Endpoint:
    """The server of a new instance: from the restore in progress, else a fresh one."""
    source = _source.get()
    return source(backend, db) if source is not None else create_fresh()


def after_bind(backend: Any, db: Any) -> None:
    """A new instance with backups on starts archiving at once, with its first base backup (as RDS does)."""
    if wants_backups(db) and not getattr(db, "is_replica", False):
        start_backups(backend, db)


def start_backups(backend: Any, db: Any) -> None:
    archive = archive_of(db)
    bound.engine().enable_archiving(db.db_instance_identifier, archive)
    take_base_backup(backend, db)
    bound.engine().archive_tick(db.db_instance_identifier)


def stop_backups(backend: Any, db: Any) -> None:
    """Retention 0: archiving stops and the automated backups are deleted, as on RDS."""
    bound.engine().disable_archiving(db.db_instance_identifier)
    for snapshot in _automated_snapshots(backend, db):
        backend.database_snapshots.pop(snapshot.db_snapshot_identifier, None)
    shutil.rmtree(archive_of(db), ignore_errors=True)


def forget_archive(db: Any) -> None:
    """A deleted instance's automated backups go with it (DeleteAutomatedBackups defaults to true)."""
    shutil.rmtree(archive_of(db), ignore_errors=True)


def take_base_backup(backend: Any, db: Any) -> None:
    base = bound.engine().base_backup(db.db_instance_identifier, archive_of(db))
    snapshot_id = f"rds:{db.db_instance_identifier}-{base.taken_at:%Y-%m-%d-%H-%M}"
    if snapshot_id in backend.database_snapshots:
        snapshot_id = f"{snapshot_id}-{base.taken_at:%S%f}"
    snapshot = rds_models.DBSnapshot(backend, db, snapshot_id, "automated")
    snapshot._rentaliq_dir = str(base.path)
    backend.database_snapshots[snapshot_id] = snapshot


def prune(backend: Any, db: Any, now: datetime.datetime) -> None:
    keep_since = now - datetime.timedelta(days=int(db.backup_retention_period))
    dropped = {str(b.path) for b in bound.engine().prune(archive_of(db), keep_since)}
    for snapshot in _automated_snapshots(backend, db):
        if getattr(snapshot, "_rentaliq_dir", None) in dropped:
            backend.database_snapshots.pop(snapshot.db_snapshot_identifier, None)


def _automated_snapshots(backend: Any, db: Any) -> list[Any]:
    return [s for s in list(backend.database_snapshots.values()) if s.snapshot_type == "automated" and s.dbi_resource_id == db.dbi_resource_id]


def _restore_time(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RDSClientError("InvalidParameterValue", f"Invalid RestoreTime {value!r}: use ISO 8601, e.g. 2026-11-30T01:02:03Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _snapshot_worker(backend: Any, db_id: str, snapshot: Any, directory: Path) -> None:
    """Copy the data, then show the snapshot ``available`` (or ``failed``) and commit that."""
    try:
        bound.engine().snapshot(db_id, directory)
        status = "available"
    except Exception as error:  # noqa: BLE001 - reported on the snapshot, as RDS does
        log.error("snapshot %s of %s failed: %s", snapshot.db_snapshot_identifier, db_id, error)
        shutil.rmtree(directory, ignore_errors=True)
        status = "failed"
    with rds_events.changing():
        snapshot.status = status
        snapshot.percent_progress = 100 if status == "available" else 0
    rds_events.persist()


def resume_snapshots() -> None:
    """After a restart: snapshots cut off mid-copy are copied again (or fail when their instance is gone)."""
    for backend in _backends():
        for snapshot in list(backend.database_snapshots.values()):
            directory = snapshot_dir(snapshot)
            if snapshot.status == "creating" and directory is not None:
                db = backend.databases.get(snapshot.db_instance_identifier)
                if db is not None and bound.is_bound(db):
                    threading.Thread(target=_snapshot_worker, args=(backend, db.db_instance_identifier, snapshot, directory), daemon=True).start()
                else:
                    snapshot.status = "failed"


def _backends() -> list[Any]:
    return [backend for account in list(dict.values(rds_models.rds_backends)) for backend in list(dict.values(account))]


def _wrap(method_name: str, around: Callable[..., Any]) -> None:
    original = getattr(rds_models.RDSBackend, method_name)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        return around(original, self, *args, **kwargs)

    setattr(rds_models.RDSBackend, method_name, wrapper)


def new_resource_id() -> str:
    """A DbiResourceId as RDS makes them: ``db-`` and 26 upper-case letters and digits, unique per instance."""
    alphabet = string.ascii_uppercase + string.digits
    return "db-" + "".join(secrets.choice(alphabet) for _ in range(26))


def install(state_dir: Path) -> None:
    global _root
    _root = state_dir / "rds-backups"
    rds_models.DBSnapshot.percent_progress = 100  # moto never sets it on instance snapshots
    original_init = rds_models.DBInstance.__init__

    @functools.wraps(original_init)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        # moto gives every instance the same DbiResourceId; it keys each instance's backup archive here.
        original_init(self, *args, **kwargs)
        self.dbi_resource_id = new_resource_id()

    rds_models.DBInstance.__init__ = init
    _install_snapshots()
    _install_restores()
    _install_replicas()
    _install_backup_views()


# --------------------------------------------------------------------------- snapshots


def _install_snapshots() -> None:
    def create_db_snapshot(original, backend, db_instance_identifier, db_snapshot_identifier, snapshot_type="manual", *args, **kwargs):
        db = backend.databases.get(str(db_instance_identifier).lower()) or backend.databases.get(db_instance_identifier)
        local = db is not None and bound.is_bound(db) and snapshot_type == "manual"
        if local and db.status not in ("available", "stopped"):
            raise RDSClientError("InvalidDBInstanceState", f"Instance {db.db_instance_identifier} is not in available state.")
        snapshot = original(backend, db_instance_identifier, db_snapshot_identifier, snapshot_type, *args, **kwargs)
        if not local:
            return snapshot
        directory = root() / "snapshots" / f"{snapshot.db_snapshot_identifier}.{secrets.token_hex(4)}"
        snapshot._rentaliq_dir = str(directory)
        if _synchronous_snapshots.get():
            try:
                bound.engine().snapshot(db.db_instance_identifier, directory)
            except PostgresEngineError as error:
                backend.database_snapshots.pop(snapshot.db_snapshot_identifier, None)
                shutil.rmtree(directory, ignore_errors=True)
                raise RDSClientError("InvalidDBInstanceState", f"DB snapshot {db_snapshot_identifier} could not be taken: {error}") from None
            return snapshot
        snapshot.status = "creating"
        snapshot.percent_progress = 0
        threading.Thread(target=_snapshot_worker, args=(backend, db.db_instance_identifier, snapshot, directory), daemon=True).start()
        return snapshot

    def delete_db_instance(original, backend, *args, **kwargs):
        token = _synchronous_snapshots.set(True)  # the final snapshot must hold the data before the server goes
        try:
            return original(backend, *args, **kwargs)
        finally:
            _synchronous_snapshots.reset(token)

    def stop_db_instance(original, backend, *args, **kwargs):
        token = _synchronous_snapshots.set(True)
        try:
            return original(backend, *args, **kwargs)
        finally:
            _synchronous_snapshots.reset(token)

    def delete_db_snapshot(original, backend, db_snapshot_identifier):
        snapshot = backend.database_snapshots.get(str(db_snapshot_identifier).lower())
        if snapshot is not None and snapshot.status == "creating":
            raise RDSClientError("InvalidDBSnapshotState", f"Cannot delete the snapshot {snapshot.db_snapshot_identifier}: it is being created.")
        deleted = original(backend, str(db_snapshot_identifier).lower())
        if (directory := snapshot_dir(deleted)) is not None and deleted.snapshot_type == "manual":
            shutil.rmtree(directory, ignore_errors=True)  # frees its disk; other snapshots are copies of their own
        return deleted

    def copy_db_snapshot(original, backend, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kwargs):
        source_id = str(source_db_snapshot_identifier)
        if source_id.startswith("arn:aws:rds:"):
            source_id = backend.extract_snapshot_name_from_arn(source_id)
        source = backend.get_db_snapshot(source_id)
        if source.status != "available":
            raise RDSClientError("InvalidDBSnapshotState", f"Snapshot {source.db_snapshot_identifier} is not available.")
        copied = original(backend, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kwargs)
        if (directory := snapshot_dir(source)) is not None:
            target = root() / "snapshots" / f"{copied.db_snapshot_identifier}.{secrets.token_hex(4)}"
            try:
                bound.engine().copy_snapshot(directory, target)
            except PostgresEngineError as error:
                backend.database_snapshots.pop(copied.db_snapshot_identifier, None)
                shutil.rmtree(target, ignore_errors=True)
                raise RDSClientError("InvalidDBSnapshotState", f"Snapshot {source.db_snapshot_identifier} could not be copied: {error}") from None
            copied._rentaliq_dir = str(target)
        return copied

    _wrap("create_db_snapshot", create_db_snapshot)
    _wrap("delete_db_instance", delete_db_instance)
    _wrap("stop_db_instance", stop_db_instance)
    _wrap("delete_db_snapshot", delete_db_snapshot)
    _wrap("copy_db_snapshot", copy_db_snapshot)

    original_save = rds_models.DBInstance.save_automated_backup

    def save_automated_backup(self: Any) -> None:
        """moto's at-create automated snapshot is metadata only; local instances list their real base backups."""
        if str(getattr(self, "engine", "")).lower() != "postgres":
            original_save(self)

    rds_models.DBInstance.save_automated_backup = save_automated_backup


# --------------------------------------------------------------------------- restores


def _install_restores() -> None:
    def restore_db_instance_from_db_snapshot(original, backend, from_snapshot_id, overrides):
        snapshot_id = backend.extract_snapshot_name_from_arn(from_snapshot_id) if str(from_snapshot_id).startswith("arn:aws:rds:") else from_snapshot_id
        snapshot = backend.describe_db_snapshots(db_instance_identifier=None, db_snapshot_identifier=snapshot_id)[0]
        if snapshot.status != "available":
            raise RDSClientError("InvalidDBSnapshotState", f"Snapshot {snapshot.db_snapshot_identifier} is not available (it is {snapshot.status}).")
        directory = snapshot_dir(snapshot)
        if directory is None:
            return original(backend, from_snapshot_id, overrides)

        def from_snapshot(backend: Any, db: Any) -> Endpoint:
            return bound.engine().restore_snapshot(
                db.db_instance_identifier,
                directory,
                force_ssl=bound.force_ssl(backend, db),
                max_connections=rds_classes.max_connections(db.db_instance_class),
            )

        restored = _with_source(from_snapshot, lambda: original(backend, from_snapshot_id, overrides))
        restored.deletion_protection = bool(overrides.get("deletion_protection"))  # RDS's default, not the source's
        return restored

    def restore_db_instance_to_point_in_time(original, backend, source_db_identifier, target_db_identifier, overrides):
        source = backend.describe_db_instances(db_instance_identifier=source_db_identifier)[0]
        restore_time = overrides.pop("restore_time", None)
        use_latest = bool(overrides.pop("use_latest_restorable_time", False))
        for key in ("source_db_instance_identifier", "source_dbi_resource_id", "source_db_instance_automated_backups_arn", "target_db_instance_identifier"):
            overrides.pop(key, None)
        if restore_time is not None and use_latest:
            raise InvalidParameterCombination("Cannot specify both RestoreTime and UseLatestRestorableTime.")
        if restore_time is None and not use_latest:
            raise InvalidParameterCombination("Either RestoreTime or UseLatestRestorableTime must be specified.")
        if str(target_db_identifier).lower() in backend.databases:
            raise RDSClientError("DBInstanceAlreadyExists", "DB instance already exists")
        if not bound.is_bound(source):
            created = original(backend, source_db_identifier, target_db_identifier, overrides)
            created.is_replica, created.source_db_instance_identifier = False, None
            return created
        archive = archive_of(source)
        window = restore_window(archive) if wants_backups(source) else None
        if window is None:
            raise RDSClientError("InvalidDBInstanceState", f"Automated backups are not enabled for DB instance {source.db_instance_identifier}.")
        target = window[1] if use_latest else _restore_time(restore_time)
        if not window[0] <= target <= window[1]:
            raise RDSClientError(
                "InvalidRestoreTime",
                f"The restore time {target.isoformat()} is outside the restorable window "
                f"{window[0].isoformat()} to {window[1].isoformat()} of DB instance {source.db_instance_identifier}.",
            )

        def to_time(backend: Any, db: Any) -> Endpoint:
            return bound.engine().restore_to_time(
                db.db_instance_identifier,
                archive,
                target,
                force_ssl=bound.force_ssl(backend, db),
                max_connections=rds_classes.max_connections(db.db_instance_class),
            )

        created = _with_source(to_time, lambda: original(backend, source_db_identifier, target_db_identifier, overrides))
        created.is_replica, created.source_db_instance_identifier, created.replicas = False, None, []
        created.deletion_protection = bool(overrides.get("deletion_protection"))  # RDS's default, not the source's
        return created

    _wrap("restore_db_instance_from_db_snapshot", restore_db_instance_from_db_snapshot)
    _wrap("restore_db_instance_to_point_in_time", restore_db_instance_to_point_in_time)


def _with_source(source: Callable[[Any, Any], Endpoint], create: Callable[[], Any]) -> Any:
    token = _source.set(source)
    try:
        return create()
    finally:
        _source.reset(token)


# --------------------------------------------------------------------------- replicas


def _install_replicas() -> None:
    def create_db_instance_read_replica(original, backend, db_kwargs):
        primary = backend.find_db_from_id(db_kwargs["source_db_instance_identifier"])
        if str(db_kwargs["db_instance_identifier"]).lower() in backend.databases:
            raise RDSClientError("DBInstanceAlreadyExists", "DB instance already exists")
        if bound.is_bound(primary) and primary.status != "available":
            raise RDSClientError("InvalidDBInstanceState", f"Instance {primary.db_instance_identifier} is not in available state.")
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
        replica.dbi_resource_id = new_resource_id()  # a copy of the primary's object: its own identity
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

    _wrap("create_db_instance_read_replica", create_db_instance_read_replica)
    _wrap("promote_read_replica", promote_read_replica)


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
    if wants_backups(replica):
        start_backups(backend, replica)


def promote_replicas_of(backend: Any, primary: Any) -> None:
    """Deleting a primary promotes its read replicas, as RDS does."""
    for replica_id in list(primary.replicas):
        replica = backend.databases.get(replica_id)
        if replica is not None and bound.is_bound(replica):
            promote_locally(backend, replica)


# --------------------------------------------------------------------------- views


def _install_backup_views() -> None:
    original_latest = rds_models.DBInstance.latest_restorable_time.fget

    def latest_restorable_time(self: Any) -> datetime.datetime | None:
        if not bound.is_bound(self):
            return original_latest(self)
        if not wants_backups(self):
            return None
        window = restore_window(archive_of(self))
        return window[1] if window else None

    rds_models.DBInstance.latest_restorable_time = property(latest_restorable_time)

    original_describe = rds_models.RDSBackend.describe_db_instance_automated_backups

    def describe_db_instance_automated_backups(self: Any, db_instance_identifier: str | None = None, **kwargs: Any) -> list[Any]:
        others = [b for b in original_describe(self, db_instance_identifier, **kwargs) if not _is_local_id(self, b.db_instance_identifier)]
        wanted = str(db_instance_identifier).lower() if db_instance_identifier else None
        local = [
            _automated_backup(db)
            for db in list(self.databases.values())
            if bound.is_bound(db) and wants_backups(db) and (wanted is None or db.db_instance_identifier == wanted)
        ]
        return others + [b for b in local if b is not None]

    rds_models.RDSBackend.describe_db_instance_automated_backups = describe_db_instance_automated_backups


def _is_local_id(backend: Any, db_id: str) -> bool:
    db = backend.databases.get(db_id)
    return db is not None and bound.is_bound(db)


def _automated_backup(db: Any) -> dict[str, Any] | None:
    archive = archive_of(db)
    window = restore_window(archive)
    if window is None:
        return None
    view = {
        "DBInstanceArn": db.db_instance_arn,
        "DbiResourceId": db.dbi_resource_id,
        "Region": db.region,
        "DBInstanceIdentifier": db.db_instance_identifier,
        "RestoreWindow": {"EarliestTime": window[0], "LatestTime": window[1]},
        "AllocatedStorage": db.allocated_storage,
        "Status": "active",
        "Port": db.port,
        "AvailabilityZone": db.availability_zone,
        "InstanceCreateTime": db.created,
        "MasterUsername": db.master_username,
        "Engine": db.engine,
        "EngineVersion": db.engine_version,
        "LicenseModel": db.license_model,
        "Encrypted": bool(db.storage_encrypted),
        "StorageType": db.storage_type,
        "KmsKeyId": db.kms_key_id,
        "BackupRetentionPeriod": int(db.backup_retention_period),
        "DBInstanceAutomatedBackupsArn": f"arn:aws:rds:{db.region}:{db.account_id}:auto-backup:ab-{str(db.dbi_resource_id).lower()}",
        "BackupTarget": "region",
    }
    return {key: value for key, value in view.items() if value is not None}
