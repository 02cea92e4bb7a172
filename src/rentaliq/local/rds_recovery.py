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

This module holds what they share (where files live, the archive of an instance, starting and stopping
automated backups) and the restores; ``rds_snapshots``, ``rds_replicas`` and ``rds_backup_views`` the rest.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.rds import models as rds_models
from moto.rds.exceptions import InvalidParameterCombination, RDSClientError

from rentaliq.local import rds_classes
from rentaliq.local import rds_postgres as bound
from rentaliq.local.postgres import Endpoint
from rentaliq.local.postgres.archive import restore_window

log = logging.getLogger(__name__)

_root: Path | None = None
_source: contextvars.ContextVar[Callable[[Any, Any], Endpoint] | None] = contextvars.ContextVar("rentaliq_rds_source", default=None)


def root() -> Path:
    if _root is None:
        raise RuntimeError("RDS recovery is not installed in this process")
    return _root


def archive_of(db: Any) -> Path:
    """One archive per instance, keyed by its DbiResourceId so renames and reused names never mix."""
    return root() / "archives" / str(db.dbi_resource_id)


def wants_backups(db: Any) -> bool:
    return int(getattr(db, "backup_retention_period", 0) or 0) > 0


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


def backends() -> list[Any]:
    return [backend for account in list(dict.values(rds_models.rds_backends)) for backend in list(dict.values(account))]


def wrap_backend_method(method_name: str, around: Callable[..., Any]) -> None:
    """Replace an RDSBackend method by ``around(original, backend, *args, **kwargs)``."""
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
    from rentaliq.local import rds_backup_views, rds_replicas, rds_snapshots  # they build on this module

    rds_snapshots.install()
    _install_restores()
    rds_replicas.install()
    rds_backup_views.install()


# --------------------------------------------------------------------------- restores


def _install_restores() -> None:
    def restore_db_instance_from_db_snapshot(original, backend, from_snapshot_id, overrides):
        snapshot_id = backend.extract_snapshot_name_from_arn(from_snapshot_id) if str(from_snapshot_id).startswith("arn:aws:rds:") else from_snapshot_id
        snapshot = backend.describe_db_snapshots(db_instance_identifier=None, db_snapshot_identifier=snapshot_id)[0]
        if snapshot.status != "available":
            raise RDSClientError("InvalidDBSnapshotState", f"Snapshot {snapshot.db_snapshot_identifier} is not available (it is {snapshot.status}).")
        directory = _snapshot_dir(snapshot)
        multi_az = bool(overrides.get("multi_az"))  # RDS restores Single-AZ unless asked
        if directory is None:
            return original(backend, from_snapshot_id, overrides)

        def from_snapshot(backend: Any, db: Any) -> Endpoint:
            db.multi_az = multi_az  # moto keeps the source's when MultiAZ=false is given
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
        multi_az = bool(overrides.get("multi_az"))  # RDS restores Single-AZ unless asked
        if not window[0] <= target <= window[1]:
            raise RDSClientError(
                "InvalidRestoreTime",
                f"The restore time {target.isoformat()} is outside the restorable window "
                f"{window[0].isoformat()} to {window[1].isoformat()} of DB instance {source.db_instance_identifier}.",
            )

        def to_time(backend: Any, db: Any) -> Endpoint:
            db.multi_az = multi_az  # moto keeps the source's when MultiAZ=false is given
            return bound.engine().restore_to_time(
                db.db_instance_identifier,
                archive,
                target,
                force_ssl=bound.force_ssl(backend, db),
                max_connections=rds_classes.max_connections(db.db_instance_class),
                source=source.db_instance_identifier,
            )

        created = _with_source(to_time, lambda: original(backend, source_db_identifier, target_db_identifier, overrides))
        created.is_replica, created.source_db_instance_identifier, created.replicas = False, None, []
        created.deletion_protection = bool(overrides.get("deletion_protection"))  # RDS's default, not the source's
        return created

    wrap_backend_method("restore_db_instance_from_db_snapshot", restore_db_instance_from_db_snapshot)
    wrap_backend_method("restore_db_instance_to_point_in_time", restore_db_instance_to_point_in_time)


def _snapshot_dir(snapshot: Any) -> Path | None:
    from rentaliq.local.rds_snapshots import snapshot_dir

    return snapshot_dir(snapshot)


def _with_source(source: Callable[[Any, Any], Endpoint], create: Callable[[], Any]) -> Any:
    token = _source.set(source)
    try:
        return create()
    finally:
        _source.reset(token)
