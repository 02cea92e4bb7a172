"""RDS events the local cloud records itself, in moto's event store, with RDS's own categories and messages.

moto keeps ``RDSBackend.events`` (what DescribeEvents answers) but only knows creation, backup and snapshot
events. The local cloud's PostgreSQL supervision adds what RDS reports around an automatic recovery and a
failed instance (Amazon RDS User Guide, "Amazon RDS event categories and event messages", DB instance events):

=================  ==============  ===================================================================
event id           category        message
=================  ==============  ===================================================================
RDS-EVENT-0004     availability    DB instance shutdown.
RDS-EVENT-0020     recovery        Recovery of the DB instance has started. Recovery time will vary ...
RDS-EVENT-0021     recovery        Recovery of the DB instance is complete.
RDS-EVENT-0006     availability    DB instance restarted.
RDS-EVENT-0031     failure         The DB instance has failed due to an incompatible configuration ...
=================  ==============  ===================================================================

Events added outside a request (the supervisor's thread) are committed to the local cloud's state at once,
so ``describe-events`` still lists them after a restart.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from moto.rds import models as rds_models

log = logging.getLogger(__name__)

SHUTDOWN = "RENTALIQ_DB_INSTANCE_SHUTDOWN"
RECOVERY_STARTED = "RENTALIQ_DB_INSTANCE_RECOVERY_STARTED"
RECOVERY_COMPLETE = "RENTALIQ_DB_INSTANCE_RECOVERY_COMPLETE"
RESTARTED = "RENTALIQ_DB_INSTANCE_RESTARTED"
FAILED = "RENTALIQ_DB_INSTANCE_FAILED"

EVENTS: dict[str, dict[str, Any]] = {
    SHUTDOWN: {"Categories": ["availability"], "Message": "DB instance shutdown."},
    RECOVERY_STARTED: {
        "Categories": ["recovery"],
        "Message": "Recovery of the DB instance has started. Recovery time will vary with the amount of data to be recovered.",
    },
    RECOVERY_COMPLETE: {"Categories": ["recovery"], "Message": "Recovery of the DB instance is complete."},
    RESTARTED: {"Categories": ["availability"], "Message": "DB instance restarted."},
    FAILED: {
        "Categories": ["failure"],
        "Message": "The DB instance has failed due to an incompatible configuration or an underlying storage issue. "
        "Begin a point-in-time-restore for the DB instance.",
    },
}


def install() -> None:
    """Teach moto's ``Event`` the local cloud's event types (idempotent)."""
    rds_models.Event.EVENT_MAP.update(EVENTS)


def record(db: Any, *event_types: str) -> None:
    """Append events for ``db`` to its backend's store, in order."""
    for event_type in event_types:
        db.add_event(event_type)


@contextlib.contextmanager
def changing() -> Iterator[None]:
    """Change RDS state from the supervisor's thread as a request would (under the persistence shared lock), so a
    concurrent commit never pickles it half-changed. Commit afterwards, outside the block: ``persist()``."""
    from rentaliq.local import state

    current = state.current()
    if current is None:
        yield
        return
    with current.changing():
        yield


def persist() -> None:
    """Commit RDS state changed outside a request (status, events); a no-op without persistence."""
    from rentaliq.local import persistence

    current = persistence.current()
    if current is None:
        return
    try:
        current.mark_dirty(rds_models.rds_backends)
        current.commit()
    except Exception:
        log.exception("could not commit RDS state changed by the PostgreSQL supervisor")
