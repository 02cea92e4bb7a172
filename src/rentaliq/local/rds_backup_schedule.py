"""The automated-backup clock of the local cloud: WAL archived every minute, base backups daily, pruning.

RDS archives transaction logs about every five minutes and takes a daily snapshot in the instance's
backup window, keeping ``BackupRetentionPeriod`` days. This thread does the same for every local
instance with retention > 0, every ``RENTALIQ_LOCAL_ARCHIVE_SECONDS`` (default 30, so the latest
restorable time is never more than a minute behind): it finishes and archives the current WAL segment,
takes a base backup when the newest is older than ``RENTALIQ_LOCAL_BASE_BACKUP_SECONDS`` (default one
day) and prunes what fell out of the retention window. Pending instance modifications are applied when
the maintenance window opens. Stopped and busy instances are skipped, as RDS skips them.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
from typing import Any

from moto.rds import models as rds_models

from rentaliq.local import rds_events, rds_modifications, rds_recovery
from rentaliq.local import rds_postgres as bound
from rentaliq.local.postgres.archive import base_backups

log = logging.getLogger(__name__)

_ARCHIVE_ENV = "RENTALIQ_LOCAL_ARCHIVE_SECONDS"
_BASE_BACKUP_ENV = "RENTALIQ_LOCAL_BASE_BACKUP_SECONDS"


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.2, float(os.environ.get(name, default)))
    except ValueError:
        return default


class BackupSchedule:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rds-backup-schedule", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        interval = _seconds(_ARCHIVE_ENV, 30)
        while not self._stop.wait(interval):
            try:
                self.run_once(datetime.datetime.now(datetime.UTC))
            except Exception:
                log.exception("automated backup pass failed")

    def run_once(self, now: datetime.datetime) -> None:
        base_every = datetime.timedelta(seconds=_seconds(_BASE_BACKUP_ENV, 86400))
        changed = False
        for backend, db in _local_instances():
            if self._stop.is_set():
                return
            if db.status != "available":
                continue
            try:
                with rds_events.changing():
                    changed |= rds_modifications.apply_due(backend, db, now)
                if not rds_recovery.wants_backups(db) or db.is_replica:
                    continue
                newest = base_backups(rds_recovery.archive_of(db))
                if not newest or now - newest[-1].taken_at >= base_every:
                    with rds_events.changing():
                        rds_recovery.take_base_backup(backend, db)
                        rds_recovery.prune(backend, db, now)
                    changed = True
                bound.engine().archive_tick(db.db_instance_identifier)
            except Exception as error:  # noqa: BLE001 - one instance's failure must not stop the others' backups
                log.warning("automated backup of %s failed: %s", db.db_instance_identifier, error)
        if changed:
            rds_events.persist()


def _local_instances() -> list[tuple[Any, Any]]:
    found = []
    for account in list(dict.values(rds_models.rds_backends)):
        for backend in list(dict.values(account)):
            for db in list(backend.databases.values()):
                if bound.is_bound(db):
                    found.append((backend, db))
    return found
