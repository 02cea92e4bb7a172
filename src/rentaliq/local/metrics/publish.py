"""Write datapoints into moto's CloudWatch store, bounded by a retention, and commit them durably.

Datapoints go straight into ``cloudwatch_backends[account][region].metric_data`` (what PutMetricData fills,
and what ListMetrics, GetMetricStatistics, GetMetricData and alarms read), under the persistence shared lock,
then are committed outside it (the ``rds_events.changing()``/``persist()`` pattern), so they survive a restart
and ``kill -9``.

Retention: CloudWatch keeps 1-minute datapoints for 15 days. The local cloud keeps the datapoints of the
metrics it collects itself (``AWS/RDS``, S3 request metrics) for 1440 collection periods (a day at the default
60 s, 24 minutes at 1 s), at most 15 days (``RENTALIQ_LOCAL_METRICS_RETENTION_SECONDS`` overrides it), and
daily S3 storage metrics for 15 days: the CloudWatch backend is pickled on every commit, so it must stay small
for a tick to stay cheap. Datapoints put through the API by users are left alone.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterable
from typing import Any

from moto.cloudwatch.models import Dimension, MetricDatum, cloudwatch_backends
from moto.core.utils import utcnow

log = logging.getLogger(__name__)

RETENTION_ENV = "RENTALIQ_LOCAL_METRICS_RETENTION_SECONDS"
MAX_RETENTION = datetime.timedelta(days=15)
COLLECTED = {
    "AWS/RDS": None,  # None: every metric
    "AWS/S3": frozenset({"AllRequests", "4xxErrors", "5xxErrors"}),
    "AWS/EC2": frozenset({"StatusCheckFailed", "StatusCheckFailed_Instance", "StatusCheckFailed_System"}),
}


class Datapoint:
    """One value for one metric stream, before it becomes moto's ``MetricDatum``."""

    __slots__ = ("account", "region", "namespace", "name", "value", "unit", "dimensions")

    def __init__(self, account: str, region: str, namespace: str, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        self.account, self.region, self.namespace, self.name = account, region, namespace, name
        self.value, self.unit, self.dimensions = value, unit, dimensions


def retention(period_seconds: float) -> datetime.timedelta:
    configured = os.environ.get(RETENTION_ENV)
    if configured:
        try:
            return datetime.timedelta(seconds=max(1.0, float(configured)))
        except ValueError:
            log.warning("%s=%r is not a number of seconds; using the default", RETENTION_ENV, configured)
    return min(MAX_RETENTION, datetime.timedelta(seconds=1440 * period_seconds))


_dimension_cache: dict[tuple[tuple[str, str], ...], list[Dimension]] = {}


def _dimensions(dimensions: dict[str, str]) -> list[Dimension]:
    """One shared list per dimension set: the pickle of the backend then stores it once, not per datapoint."""
    key = tuple(sorted(dimensions.items()))
    found = _dimension_cache.get(key)
    if found is None:
        found = _dimension_cache[key] = [Dimension(name, value) for name, value in key]
    return found


def _datum(point: Datapoint, at: datetime.datetime) -> MetricDatum:
    datum = MetricDatum(point.namespace, point.name, float(point.value), [], at, point.unit)
    datum.dimensions = _dimensions(point.dimensions)
    return datum


def store(points: Iterable[Datapoint], keep: datetime.timedelta | None, at: datetime.datetime | None = None) -> bool:
    """Append ``points`` (and prune what fell out of ``keep``); True when anything changed. Caller holds the lock."""
    at = at or utcnow().replace(microsecond=0)
    by_backend: dict[tuple[str, str], list[MetricDatum]] = {}
    for point in points:
        by_backend.setdefault((point.account, point.region), []).append(_datum(point, at))
    for (account, region), data in by_backend.items():
        cloudwatch_backends[account][region].metric_data.extend(data)
    pruned = prune(at - keep, at - MAX_RETENTION) if keep is not None else False
    return bool(by_backend) or pruned


def _collected(datum: Any) -> bool:
    names = COLLECTED.get(datum.namespace, False)
    return names is None or (bool(names) and datum.name in names)


def prune(before: datetime.datetime, storage_before: datetime.datetime) -> bool:
    """Drop collected datapoints older than ``before`` and S3 storage metrics older than ``storage_before``."""
    changed = False
    for account in list(dict.values(cloudwatch_backends)):
        for backend in list(dict.values(account)):
            data = backend.metric_data
            if not data:
                continue
            kept = [d for d in data if not (d.timestamp < before and _collected(d)) and not (d.namespace == "AWS/S3" and d.timestamp < storage_before)]
            if len(kept) != len(data):
                backend.metric_data = kept
                changed = True
    return changed


def commit_changes() -> None:
    """Commit the CloudWatch backends changed outside a request; a no-op without persistence."""
    from rentaliq.local import state

    current = state.current()
    if current is None or getattr(current, "closed", False):  # the final snapshot was taken: nothing more is written
        return
    try:
        current.mark_dirty(cloudwatch_backends)
        current.commit()
    except Exception:
        log.exception("could not commit the metrics collected")
