"""The automated-backup clock of the local cloud: WAL archived every minute, base backups daily, pruning.

RDS archives transaction logs about every five minutes and takes a daily snapshot in the instance's
backup window, keeping ``BackupRetentionPeriod`` days. This thread does the same for every local
instance with retention > 0, every ``RENTALIQ_LOCAL_ARCHIVE_SECONDS`` (default 30, so the latest
restorable time is never more than a minute behind): it finishes and archives the current WAL segment,
takes a base backup daily in the instance's backup window (or every ``RENTALIQ_LOCAL_BASE_BACKUP_SECONDS``
when set) and prunes what fell out of the retention window. Pending instance modifications are applied when
the maintenance window opens, and a Multi-AZ instance's standby is rebuilt when it is missing or down
(RDS replaces a failed standby by itself). Stopped and busy instances are skipped, as RDS skips them.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moto.rds import models as rds_models

from rentaliq.local import rds_events, rds_modifications, rds_recovery
from rentaliq.local import rds_postgres as bound
from rentaliq.local.periodic import PeriodicThread
from rentaliq.local.postgres.archive import base_backups

log = logging.getLogger(__name__)

_ARCHIVE_ENV = "RENTALIQ_LOCAL_ARCHIVE_SECONDS"
_BASE_BACKUP_ENV = "RENTALIQ_LOCAL_BASE_BACKUP_SECONDS"
_SLOW_JOB_S = 10


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.2, float(os.environ.get(name, default)))
    except ValueError:
        return default


class BackupSchedule(PeriodicThread):
    """One clock thread; each instance's work runs on a small pool, one job per instance at a time, so a slow
    or failing instance (a 1 GiB base backup, a broken archive) never delays the others' latest restorable time."""

    name = "rds-backup-schedule"

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rds-backup")
        self._inflight: set[str] = set()
        self._inflight_guard = threading.Lock()

    def interval(self) -> float:
        return _seconds(_ARCHIVE_ENV, 30)

    def tick(self) -> None:
        self.run_once(datetime.datetime.now(datetime.UTC))

    def stop(self) -> None:
        super().stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run_once(self, now: datetime.datetime) -> None:
        """Start this pass's job for every available local instance whose previous job has finished."""
        for backend, db in _local_instances():
            if self.stopping.is_set():
                return
            key = str(db.dbi_resource_id)
            with self._inflight_guard:
                if db.status != "available" or key in self._inflight:
                    continue
                self._inflight.add(key)
            try:
                self._pool.submit(self._job, backend, db, now, key)
            except RuntimeError:  # the pool shut down: the local cloud is stopping
                self._inflight.discard(key)
                return

    def _job(self, backend: Any, db: Any, now: datetime.datetime, key: str) -> None:
        started = time.monotonic()
        try:
            self.back_up(backend, db, now)
        except Exception as error:  # noqa: BLE001 - one instance's failure must not stop the others' backups
            log.warning("automated backup of %s failed: %s", db.db_instance_identifier, error)
        finally:
            with self._inflight_guard:
                self._inflight.discard(key)
        if time.monotonic() - started > _SLOW_JOB_S:
            log.warning("automated backup pass of %s took %.1fs", db.db_instance_identifier, time.monotonic() - started)

    def back_up(self, backend: Any, db: Any, now: datetime.datetime) -> None:
        """Pending modifications due, a base backup due, pruning, and the WAL tick, for one instance."""
        base_every = datetime.timedelta(seconds=_seconds(_BASE_BACKUP_ENV, 86400)) if _BASE_BACKUP_ENV in os.environ else None
        with rds_events.changing():
            changed = rds_modifications.apply_due(backend, db, now)
        if getattr(db, "multi_az", False) and not db.is_replica and bound.engine().ensure_standby(db.db_instance_identifier):
            log.warning("the standby of %s was missing or down and has been rebuilt", db.db_instance_identifier)
        if rds_recovery.wants_backups(db) and not db.is_replica:
            newest = base_backups(rds_recovery.archive_of(db))
            if not newest or base_backup_due(db.preferred_backup_window, newest[-1].taken_at, now, base_every):
                with rds_events.changing():
                    rds_recovery.take_base_backup(backend, db)
                    rds_recovery.prune(backend, db, now)
                changed = True
            bound.engine().archive_tick(db.db_instance_identifier, when_idle=True)
        if changed:
            rds_events.persist()


def base_backup_due(window: str | None, newest: datetime.datetime, now: datetime.datetime, every: datetime.timedelta | None) -> bool:
    """Daily in the backup window (``03:00-04:00``), as RDS takes it; every ``every`` when that is set (tests).

    A day whose window passed with the local cloud stopped gets its backup at the first pass after the
    window, so the restore window never goes more than a day without a base backup.
    """
    if every is not None:
        return now - newest >= every
    start = _window_start(window, now)
    if start > now:
        start -= datetime.timedelta(days=1)
    return newest < start


def _window_start(window: str | None, now: datetime.datetime) -> datetime.datetime:
    """Today's start of a daily ``HH:MM-HH:MM`` window (03:00 UTC, the spec's, when unset or unreadable)."""
    try:
        hour, minute = (int(part) for part in str(window).split("-", 1)[0].split(":"))
    except ValueError:
        hour, minute = 3, 0
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0)


def _local_instances() -> list[tuple[Any, Any]]:
    found = []
    for account in list(dict.values(rds_models.rds_backends)):
        for backend in list(dict.values(account)):
            for db in list(backend.databases.values()):
                if bound.is_bound(db):
                    found.append((backend, db))
    return found
