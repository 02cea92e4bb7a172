"""RDS storage autoscaling on the local cloud: grow AllocatedStorage when free space stays low.

AWS's rule (Amazon RDS User Guide, "Managing capacity automatically with Amazon RDS storage autoscaling",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIOPS.Autoscaling.html): RDS starts a storage
modification for an instance with a maximum storage threshold (``MaxAllocatedStorage``) when

- free available space is less than or equal to 10 percent of the allocated storage,
- the low-storage condition lasts at least five minutes, and
- at least six hours have passed since the last storage modification;

the increment is the greatest of 10 GiB, 10 percent of the currently allocated storage, and the predicted
storage growth exceeding the current allocated size in the next 7 hours, based on the FreeStorageSpace
metrics of the past hour; the new size never exceeds ``MaxAllocatedStorage``.

Here FreeStorageSpace is the value the metrics collector just measured from the server's data directory
(``rentaliq.local.metrics``); the prediction is the linear growth of used space over the past hour's samples.
``RENTALIQ_LOCAL_STORAGE_AUTOSCALING_SECONDS`` (default 300) and ``RENTALIQ_LOCAL_STORAGE_COOLDOWN_SECONDS``
(default 21600) shorten the two waits for tests. The growth is recorded with RDS's event RDS-EVENT-0217
(notification, "Applying autoscaling-initiated modification to allocated storage."). The new size is in
``AllocatedStorage`` at once and the status stays ``available`` (RDS shows ``storage-optimization`` for hours
while the instance stays usable; the local server needs no optimization). A ModifyDBInstance that changes the
storage starts the 6-hour clock too. What the data directory may really grow to is the host's disk.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections import deque
from typing import Any

from moto.rds import models as rds_models

from rentaliq.local import rds_events

AUTOSCALED = "RENTALIQ_STORAGE_AUTOSCALED"
EVENTS = {AUTOSCALED: {"Categories": ["notification"], "Message": "Applying autoscaling-initiated modification to allocated storage."}}
WINDOW_ENV = "RENTALIQ_LOCAL_STORAGE_AUTOSCALING_SECONDS"
COOLDOWN_ENV = "RENTALIQ_LOCAL_STORAGE_COOLDOWN_SECONDS"
_GIB = 1024**3
_HOUR = 3600.0
_PREDICT_S = 7 * _HOUR


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


def install() -> None:
    """RDS's event type, and the 6-hour clock started by a storage change made through ModifyDBInstance too."""
    rds_models.Event.EVENT_MAP.update(EVENTS)
    original = rds_models.RDSBackend.modify_db_instance
    if getattr(original, "_rentaliq_storage_clock", False):
        return

    @functools.wraps(original)
    def modify_db_instance(self: Any, db_instance_identifier: str, db_kwargs: dict[str, Any]) -> Any:
        before = {db.dbi_resource_id: db.allocated_storage for db in self.databases.values()}
        db = original(self, db_instance_identifier, db_kwargs)
        if before.get(db.dbi_resource_id) not in (None, db.allocated_storage):
            db._rentaliq_storage_modified_at = time.time()
        return db

    modify_db_instance._rentaliq_storage_clock = True  # type: ignore[attr-defined]
    rds_models.RDSBackend.modify_db_instance = modify_db_instance


def increment_gib(allocated_gib: int, used_history: list[tuple[float, int]]) -> int:
    """AWS's increment: max(10 GiB, 10 % of allocated, predicted 7-hour growth beyond the allocation)."""
    predicted = 0
    if len(used_history) >= 2:
        (t0, used0), (t1, used1) = used_history[0], used_history[-1]
        if t1 > t0 and used1 > used0:
            in_7h = used1 + (used1 - used0) / (t1 - t0) * _PREDICT_S
            predicted = math.ceil(max(0.0, in_7h - allocated_gib * _GIB) / _GIB)
    return max(10, math.ceil(allocated_gib * 0.1), predicted)


class StorageAutoscaler:
    """Per instance: since when free space has been low, and the past hour of used-space samples."""

    def __init__(self) -> None:
        self._low_since: dict[str, float] = {}
        self._used: dict[str, deque[tuple[float, int]]] = {}

    def observe(self, db: Any, free_bytes: float, now: float | None = None) -> bool:
        """Record one FreeStorageSpace measurement; grow the allocation when the rule says so (True then).

        Call it under ``rds_events.changing()``; the caller persists the RDS state when it returns True.
        """
        now = time.monotonic() if now is None else now
        key = str(db.dbi_resource_id)
        allocated = int(db.allocated_storage or 0)
        history = self._used.setdefault(key, deque())
        history.append((now, int(allocated * _GIB - free_bytes)))
        while history and history[0][0] < now - _HOUR:
            history.popleft()
        if allocated <= 0 or free_bytes > 0.1 * allocated * _GIB:
            self._low_since.pop(key, None)
            return False
        since = self._low_since.setdefault(key, now)
        maximum = db.max_allocated_storage  # moto: None unless above the allocation
        if now - since < _seconds(WINDOW_ENV, 300) or not maximum or int(maximum) <= allocated or db.status != "available":
            return False
        last = getattr(db, "_rentaliq_storage_modified_at", None)
        if last is not None and time.time() - last < _seconds(COOLDOWN_ENV, 6 * _HOUR):
            return False
        db.allocated_storage = min(int(maximum), allocated + increment_gib(allocated, list(history)))
        db._rentaliq_storage_modified_at = time.time()
        rds_events.record(db, AUTOSCALED)
        self._low_since.pop(key, None)
        return True
