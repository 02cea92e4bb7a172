"""Automatic recovery of the PostgreSQL servers behind RDS instances, like RDS's own host monitoring.

When the server of an ``available`` instance dies (a crash, ``kill -9`` of the postmaster), RDS notices,
shows the instance as ``rebooting`` while it brings the database back, and records the recovery as events.
This thread does the same for the local cloud: every ``RENTALIQ_PG_SUPERVISE_SECONDS`` (default 1 s) it
looks at each bound instance; a dead server is restarted with the instance shown as ``rebooting`` and
``describe-events`` listing shutdown, recovery started, recovery complete and restarted. When the server
cannot come back (its data directory is gone, say), the instance becomes ``failed`` with RDS's failure
event, instead of claiming ``available``; RDS does not retry a failed instance, and neither does this.

Instances stopped through the API (``stopped``) or in any transition (``rebooting``, ``modifying``,
``deleting``...) are left alone: only ``available`` promises a running server. The engine re-checks under
the instance's lock, so a reboot or stop in progress is never taken for a crash.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from moto.rds import models as rds_models

from rentaliq.local import rds_events
from rentaliq.local.periodic import PeriodicThread
from rentaliq.local.postgres import PostgresEngine

log = logging.getLogger(__name__)

_INTERVAL_ENV = "RENTALIQ_PG_SUPERVISE_SECONDS"
_DEFAULT_INTERVAL = 1.0
_TRANSITIONS = {"rebooting", "starting", "renaming", "modifying"}


def _interval() -> float:
    try:
        return max(0.1, float(os.environ.get(_INTERVAL_ENV, _DEFAULT_INTERVAL)))
    except ValueError:
        return _DEFAULT_INTERVAL


def _bound_instances(is_bound: Callable[[Any], bool]) -> Iterator[tuple[Any, Any]]:
    """(backend, db) for every DB instance with a local server, across accounts and regions."""
    for account in list(dict.values(rds_models.rds_backends)):
        for backend in list(dict.values(account)):
            for db in list(backend.databases.values()):
                if is_bound(db):
                    yield backend, db


class Supervisor(PeriodicThread):
    """One daemon thread per local cloud process; ``check_once`` is the whole policy, for tests and the loop."""

    name = "postgres-supervisor"

    def __init__(self, engine: PostgresEngine, is_bound: Callable[[Any], bool]) -> None:
        super().__init__()
        self.engine = engine
        self.is_bound = is_bound

    def interval(self) -> float:
        return _interval()

    def tick(self) -> None:
        self.check_once()

    def settle(self) -> None:
        """After a restart: an instance saved mid-transition (the process died during a reboot, start,
        rename or recovery) is ``available`` again, so that the next pass recovers its server if needed."""
        for _backend, db in _bound_instances(self.is_bound):
            if db.status in _TRANSITIONS:
                log.warning("RDS instance %s was %s when the local cloud stopped", db.db_instance_identifier, db.status)
                db.status = "available"
            elif db.status == "failed" and self.engine.status(db.db_instance_identifier) == "running":
                # Its server started with the local cloud (its cause was fixed): the local counterpart of an RDS
                # recovery, so a restart of the local cloud is the documented way to retry a failed instance.
                log.warning("RDS instance %s was failed; its server runs again", db.db_instance_identifier)
                db.status = "available"
                rds_events.record(db, rds_events.RECOVERY_COMPLETE)
                rds_events.persist()

    def check_once(self) -> list[str]:
        """Recover every dead server of an available instance; returns the identifiers acted on."""
        acted = []
        for backend, db in _bound_instances(self.is_bound):
            if self.stopping.is_set():
                break
            instance_id = db.db_instance_identifier
            if db.status != "available" or self.engine.status(instance_id) != "stopped":
                if db.status == "available" and self.engine.status(instance_id) == "absent" and self._still_there(backend, db):
                    self._fail(db, "its PostgreSQL directory is gone")
                    acted.append(instance_id)
                continue
            if self._recover(backend, db):
                acted.append(instance_id)
        return acted

    @staticmethod
    def _still_there(backend: Any, db: Any) -> bool:
        return backend.databases.get(db.db_instance_identifier) is db

    def _recover(self, backend: Any, db: Any) -> bool:
        instance_id = db.db_instance_identifier

        def show_recovery() -> None:
            log.warning("postgres server of RDS instance %s died; recovering", instance_id)
            with rds_events.changing():
                db.status = "rebooting"
                rds_events.record(db, rds_events.SHUTDOWN, rds_events.RECOVERY_STARTED)
            rds_events.persist()

        try:
            restarted = self.engine.recover(instance_id, show_recovery)
        except Exception as error:  # noqa: BLE001 - whatever keeps it down, the instance has failed
            if self._still_there(backend, db):
                self._fail(db, str(error))
                return True
            return False
        if restarted:
            with rds_events.changing():
                if db.status == "rebooting":
                    db.status = "available"
                rds_events.record(db, rds_events.RECOVERY_COMPLETE, rds_events.RESTARTED)
            rds_events.persist()
            log.warning("postgres server of RDS instance %s recovered", instance_id)
        return restarted

    @staticmethod
    def _fail(db: Any, why: str) -> None:
        log.error("RDS instance %s failed: %s", db.db_instance_identifier, why)
        with rds_events.changing():
            db.status = "failed"
            rds_events.record(db, rds_events.FAILED)
        rds_events.persist()
