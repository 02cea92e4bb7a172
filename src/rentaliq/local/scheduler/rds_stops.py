"""RDS's side of stopping: the events of a stop and a start, when each instance stopped, and AWS's 7-day rule.

RDS reports a stop and a start as events (Amazon RDS User Guide, "Amazon RDS event categories and event
messages", DB instance events, category ``notification``):

=================  ======================================================================================
RDS-EVENT-0087     DB instance stopped.
RDS-EVENT-0088     DB instance started.
RDS-EVENT-0154     DB instance is being started due to it exceeding the maximum allowed time being stopped.
=================  ======================================================================================

and "Stopping an Amazon RDS DB instance temporarily" says an instance stays stopped for at most seven days: then
RDS starts it by itself. The local cloud keeps that rule for every stopped instance, whoever stopped it: the
moment of the stop is kept on the instance (``_rentaliq_stopped_at``, pickled with RDS's state, so it survives a
restart and ``kill -9``), and :func:`expire` starts what has been stopped for seven days, through moto's RDS
backend, so the real PostgreSQL server starts (:mod:`rentaliq.local.rds_postgres`) and the states and events
are those of a user's StartDBInstance, after RDS-EVENT-0154.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.rds import models as rds_models

from rentaliq.offhours import AUTO_START_AFTER

log = logging.getLogger(__name__)

STOPPED_AT = "_rentaliq_stopped_at"
STOPPED = "RENTALIQ_DB_INSTANCE_STOPPED"
STARTED = "RENTALIQ_DB_INSTANCE_STARTED"
AUTO_STARTING = "RENTALIQ_DB_INSTANCE_AUTO_STARTING"
EVENTS: dict[str, dict[str, Any]] = {
    STOPPED: {"Categories": ["notification"], "Message": "DB instance stopped."},
    STARTED: {"Categories": ["notification"], "Message": "DB instance started."},
    AUTO_STARTING: {
        "Categories": ["notification"],
        "Message": "DB instance is being started due to it exceeding the maximum allowed time being stopped.",
    },
}
_installed = False


def install() -> None:
    """Record the stop time and the events on every successful stop and start (after ``rds_postgres``'s hooks,
    so only a stop whose PostgreSQL server really stopped counts). Idempotent."""
    global _installed
    if _installed:
        return
    rds_models.Event.EVENT_MAP.update(EVENTS)
    backend_cls = rds_models.RDSBackend
    original_stop, original_start = backend_cls.stop_db_instance, backend_cls.start_db_instance

    @functools.wraps(original_stop)
    def stop_db_instance(self: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        db = original_stop(self, db_instance_identifier, *args, **kwargs)
        setattr(db, STOPPED_AT, time.time())
        db.add_event(STOPPED)
        return db

    @functools.wraps(original_start)
    def start_db_instance(self: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        db = original_start(self, db_instance_identifier, *args, **kwargs)
        setattr(db, STOPPED_AT, None)
        db.add_event(STARTED)
        return db

    backend_cls.stop_db_instance = stop_db_instance
    backend_cls.start_db_instance = start_db_instance
    _installed = True


def stopped_since(db: Any) -> datetime | None:
    value = getattr(db, STOPPED_AT, None)
    return None if value is None else datetime.fromtimestamp(value, UTC)


def backends() -> list[tuple[str, str, Any]]:
    """Every RDS backend that exists (account, region, backend), without creating any."""
    found = []
    for account_id, by_region in list(dict.items(rds_models.rds_backends)):
        for region, backend in list(dict.items(by_region)):
            found.append((account_id, region, backend))
    return found


def stopped_instances() -> list[tuple[Any, Any]]:
    return [(backend, db) for _, _, backend in backends() for db in list(backend.databases.values()) if db.status == "stopped"]


def auto_start(backend: Any, db: Any) -> None:
    """RDS's automatic start of an instance stopped too long: its event, then a start as a user's call makes it."""
    db.add_event(AUTO_STARTING)
    backend.start_db_instance(db.db_instance_identifier)


def pending(now: datetime) -> bool:
    """Whether :func:`expire` has anything to do at ``now`` (a stop time to record, or seven days over): a pass
    changes, and commits, nothing otherwise."""
    stops = [stopped_since(db) for _, db in stopped_instances()]
    return any(since is None or now - since >= AUTO_START_AFTER for since in stops)


def expire(now: datetime, *, only: str | None = None, pretend_stopped_for: timedelta | None = None) -> list[dict[str, Any]]:
    """Start every stopped instance whose seven days are over at ``now`` (or just ``only``, treated as stopped for
    ``pretend_stopped_for``: the control call). An instance stopped before its stop time was recorded gets
    ``now`` as its stop time: it has at least seven more days. Returns what was started or failed to."""
    results = []
    for backend, db in stopped_instances():
        if only is not None and db.db_instance_identifier != only:
            continue
        recorded = stopped_since(db)
        if recorded is None:
            setattr(db, STOPPED_AT, now.timestamp())
            recorded = now
        since = recorded if pretend_stopped_for is None else min(recorded, now - pretend_stopped_for)
        if now - since < AUTO_START_AFTER:
            continue
        outcome: dict[str, Any] = {"DBInstanceIdentifier": db.db_instance_identifier, "StoppedAt": recorded.isoformat()}
        try:
            auto_start(backend, db)
            outcome["Status"] = "STARTED"
        except Exception as error:  # noqa: BLE001 - one instance's failed start must not stop the others'
            outcome.update(Status="FAILED", ErrorCode=getattr(error, "code", type(error).__name__), ErrorMessage=str(getattr(error, "message", error)))
            log.warning("automatic start of %s after 7 days stopped failed: %s", db.db_instance_identifier, outcome["ErrorMessage"])
        results.append(outcome)
    return results
