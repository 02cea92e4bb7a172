"""ModifyDBInstance as RDS applies it: now with ``ApplyImmediately``, else in the maintenance window.

An instance class or storage change with ``--apply-immediately`` restarts the server now (the class sets
``max_connections``, see ``rds_classes``). Without the flag RDS shows the change in
``PendingModifiedValues`` and keeps the current values until the instance's weekly maintenance window;
``rds_backup_schedule`` calls :func:`apply_due` to apply it then. Storage only grows (``rds_rules``).
"""

from __future__ import annotations

import datetime
from typing import Any

from rentaliq.local import rds_classes
from rentaliq.local import rds_postgres as bound
from rentaliq.local.postgres.copies import PG_DEFAULT_MAX_CONNECTIONS
from rentaliq.local.postgres.standby import standby_id

# ModifyDBInstance arguments that wait for the maintenance window unless applied immediately.
DEFERRED = {"db_instance_class": "DBInstanceClass", "allocated_storage": "AllocatedStorage", "storage_type": "StorageType", "iops": "Iops"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def defer(db: Any, db_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the deferred changes out of ``db_kwargs`` (unless applied immediately); the PendingModifiedValues.

    Applied immediately, a modification also applies what was queued before it, as RDS does ("any changes
    in the pending modifications queue are also applied"), so nothing stays pending.
    """
    if db_kwargs.get("apply_immediately"):
        queued = getattr(db, "pending_modified_values", None) or {}
        for key, api_name in DEFERRED.items():
            if api_name in queued and db_kwargs.get(key) is None:
                db_kwargs[key] = queued[api_name]
        db.pending_modified_values = {}
        return {}
    pending = {}
    for key, api_name in DEFERRED.items():
        if key in db_kwargs and db_kwargs[key] is not None and db_kwargs[key] != getattr(db, key, None):
            pending[api_name] = db_kwargs.pop(key)
    return pending


def record_pending(db: Any, pending: dict[str, Any]) -> None:
    if pending:
        db.pending_modified_values = {**(getattr(db, "pending_modified_values", None) or {}), **pending}


def restart_for_class(backend: Any, db: Any) -> None:
    """The server restarts with the new class's max_connections (the status shows ``modifying`` meanwhile).

    Its standby and read replicas first get at least as many slots: a hot standby stops replaying when
    its primary has more than it has (PostgreSQL's rule), so they must never have fewer.
    """
    engine = bound.engine()
    wanted = rds_classes.max_connections(db.db_instance_class) or PG_DEFAULT_MAX_CONNECTIONS
    followers = [standby_id(db.db_instance_identifier)] if engine.has_standby(db.db_instance_identifier) else []
    for replica_id in list(getattr(db, "replicas", [])):
        replica = backend.databases.get(replica_id)
        if replica is not None and bound.is_bound(replica):
            followers.append(replica.db_instance_identifier)
    for follower in followers:
        if engine.max_connections(follower) < wanted:
            engine.reboot(follower, max_connections=wanted)
    previous, db.status = db.status, "modifying"
    try:
        db._rentaliq_endpoint = engine.reboot(db.db_instance_identifier, max_connections=wanted)
    finally:
        db.status = previous


def in_window(window: str | None, now: datetime.datetime) -> bool:
    """Whether ``now`` (UTC) is inside a weekly window like ``sun:05:00-sun:06:00``."""
    if not window or "-" not in window:
        return False
    start_text, end_text = window.lower().split("-", 1)

    def minute_of_week(text: str) -> int:
        day, hour, minute = text.split(":")
        return _DAYS.index(day) * 1440 + int(hour) * 60 + int(minute)

    try:
        start, end = minute_of_week(start_text), minute_of_week(end_text)
    except ValueError:
        return False
    current = now.weekday() * 1440 + now.hour * 60 + now.minute
    return start <= current < end if start <= end else current >= start or current < end


def apply_due(backend: Any, db: Any, now: datetime.datetime) -> bool:
    """Apply the pending modifications when the maintenance window is open; whether anything changed."""
    pending = getattr(db, "pending_modified_values", None)
    if not pending or not in_window(getattr(db, "preferred_maintenance_window", None), now):
        return False
    class_changed = "DBInstanceClass" in pending and pending["DBInstanceClass"] != db.db_instance_class
    for key, api_name in DEFERRED.items():
        if api_name in pending:
            setattr(db, key, pending[api_name])
    db.pending_modified_values = {}
    if class_changed:
        restart_for_class(backend, db)
    return True
