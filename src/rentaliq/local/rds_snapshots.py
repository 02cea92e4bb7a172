"""RDS DB snapshots with the data in them: CreateDBSnapshot, CopyDBSnapshot, DeleteDBSnapshot, final snapshots.

CreateDBSnapshot takes a physical copy of the instance's server (``postgres.copies``), ``creating`` until it
is complete, on a worker thread; a final snapshot (DeleteDBInstance, StopDBInstance with a snapshot) is
taken before the server goes. Each snapshot is a directory of its own under ``<state>/rds-backups/snapshots/``,
so it outlives its instance; DeleteDBSnapshot frees its disk, CopyDBSnapshot makes an independent copy.
A snapshot cut off by a ``kill -9`` of the local cloud has ``failed`` at start (:func:`resume`).
moto's at-create automated snapshot (metadata only) is dropped: automated snapshots are the real base
backups (``rds_recovery``).
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import secrets
import shutil
import threading
from pathlib import Path
from typing import Any

from moto.rds import models as rds_models
from moto.rds.exceptions import RDSClientError

from rentaliq.local import rds_events
from rentaliq.local import rds_postgres as bound
from rentaliq.local import rds_recovery as recovery
from rentaliq.local.postgres import PostgresEngineError
from rentaliq.local.postgres.copies import read_copy_info

log = logging.getLogger(__name__)

_synchronous: contextvars.ContextVar[bool] = contextvars.ContextVar("rentaliq_sync_snapshots", default=False)
"""Set during DeleteDBInstance and StopDBInstance: their final snapshot is taken at once, and the automated
snapshots they delete are theirs to delete (the API refuses to delete an automated snapshot)."""


def snapshot_dir(snapshot: Any) -> Path | None:
    value = getattr(snapshot, "_rentaliq_dir", None)
    return Path(value) if value else None


def _snapshot_worker(backend: Any, db_id: str, snapshot: Any, directory: Path) -> None:
    """Copy the data, then show the snapshot ``available`` (or ``failed``) and commit that.

    A physical copy is consistent as of the end of the copy, so that is the snapshot's SnapshotCreateTime:
    what the snapshot holds is the data as of the time it states.
    """
    consistent_at = None
    try:
        consistent_at = datetime.datetime.fromisoformat(bound.engine().snapshot(db_id, directory).taken_at)
        status = "available"
    except Exception as error:  # noqa: BLE001 - reported on the snapshot, as RDS does
        log.error("snapshot %s of %s failed: %s", snapshot.db_snapshot_identifier, db_id, error)
        shutil.rmtree(directory, ignore_errors=True)
        status = "failed"
    with rds_events.changing():
        snapshot.status = status
        snapshot.percent_progress = 100 if status == "available" else 0
        if consistent_at is not None:
            snapshot.created = consistent_at
    rds_events.persist()


def resume() -> None:
    """After a restart: a snapshot cut off mid-copy has ``failed``, as RDS reports a snapshot it could not take.

    Copying it again would copy the server as it is now, not as it was when the snapshot was asked for:
    a snapshot taken before a destructive change would silently hold the change.
    """
    for backend in recovery.backends():
        for snapshot in list(backend.database_snapshots.values()):
            directory = snapshot_dir(snapshot)
            if snapshot.status == "creating" and directory is not None:
                log.warning("snapshot %s was cut off by a restart of the local cloud: failed", snapshot.db_snapshot_identifier)
                shutil.rmtree(directory, ignore_errors=True)
                snapshot.status = "failed"
                snapshot.percent_progress = 0
    _sweep_incomplete_copies()


def _sweep_incomplete_copies() -> None:
    """Copies a crash cut off before any snapshot recorded them (a final snapshot of a delete that never
    finished): incomplete, so unusable, and no API call could free them."""
    snapshots = recovery.root() / "snapshots"
    if snapshots.is_dir():
        for directory in snapshots.iterdir():
            if read_copy_info(directory) is None:
                log.warning("removing %s: a snapshot copy a crash cut off", directory)
                shutil.rmtree(directory, ignore_errors=True)


def install() -> None:
    def create_db_snapshot(original, backend, db_instance_identifier, db_snapshot_identifier, snapshot_type="manual", *args, **kwargs):
        db = backend.databases.get(str(db_instance_identifier).lower()) or backend.databases.get(db_instance_identifier)
        local = db is not None and bound.is_bound(db) and snapshot_type == "manual"
        if local and db.status not in ("available", "stopped"):
            raise RDSClientError("InvalidDBInstanceState", f"Instance {db.db_instance_identifier} is not in available state.")
        snapshot = original(backend, db_instance_identifier, db_snapshot_identifier, snapshot_type, *args, **kwargs)
        if not local:
            return snapshot
        directory = recovery.root() / "snapshots" / f"{snapshot.db_snapshot_identifier}.{secrets.token_hex(4)}"
        snapshot._rentaliq_dir = str(directory)
        if _synchronous.get():
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

    def with_final_snapshot(original, backend, *args, **kwargs):
        """Delete and stop: the final snapshot must hold the data before the server goes."""
        token = _synchronous.set(True)
        try:
            return original(backend, *args, **kwargs)
        finally:
            _synchronous.reset(token)

    def delete_db_snapshot(original, backend, db_snapshot_identifier):
        snapshot = backend.database_snapshots.get(str(db_snapshot_identifier).lower())
        if snapshot is not None and snapshot.snapshot_type == "automated" and not _synchronous.get():
            raise RDSClientError(
                "InvalidDBSnapshotState", f"Cannot delete the automated snapshot {snapshot.db_snapshot_identifier}: only manual snapshots can be deleted."
            )
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
            target = recovery.root() / "snapshots" / f"{copied.db_snapshot_identifier}.{secrets.token_hex(4)}"
            try:
                bound.engine().copy_snapshot(directory, target)
            except PostgresEngineError as error:
                backend.database_snapshots.pop(copied.db_snapshot_identifier, None)
                shutil.rmtree(target, ignore_errors=True)
                why = str(error).splitlines()[0][:300]
                raise RDSClientError("InvalidDBSnapshotState", f"Snapshot {source.db_snapshot_identifier} could not be copied: {why}") from None
            copied._rentaliq_dir = str(target)
        return copied

    recovery.wrap_backend_method("create_db_snapshot", create_db_snapshot)
    recovery.wrap_backend_method("delete_db_instance", with_final_snapshot)
    recovery.wrap_backend_method("stop_db_instance", with_final_snapshot)
    recovery.wrap_backend_method("delete_db_snapshot", delete_db_snapshot)
    recovery.wrap_backend_method("copy_db_snapshot", copy_db_snapshot)

    original_save = rds_models.DBInstance.save_automated_backup

    def save_automated_backup(self: Any) -> None:
        """moto's at-create automated snapshot is metadata only; local instances list their real base backups."""
        if str(getattr(self, "engine", "")).lower() != "postgres":
            original_save(self)

    rds_models.DBInstance.save_automated_backup = save_automated_backup
