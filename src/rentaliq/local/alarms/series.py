"""An index of moto's CloudWatch datapoints by metric, kept up to date incrementally, once per evaluation pass.

moto keeps every datapoint of a region in one list (``CloudWatchBackend.metric_data``), appended to by
PutMetricData (and by the local cloud's own metric publishing). Scanning that list once per alarm would make a pass
cost alarms x datapoints; instead each pass indexes only what was appended since the previous one, into sorted
series keyed by (namespace, metric name, dimensions), and an alarm then reads its periods with two bisections each.
Datapoints older than what any alarm can look at are dropped from the index (never from moto).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rentaliq.local.alarms.evaluation import Datapoint, statistic

Key = tuple[str, str, tuple[tuple[str, str], ...]]
Sample = tuple[float, float, float, float, float | None]  # sum, count, min, max, raw value


_EPOCH = datetime(1970, 1, 1)


def epoch(moment: Any) -> float:
    """moto stores naive UTC datetimes (utcnow) or aware ones parsed from a request; both become epoch seconds."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            return (moment - _EPOCH).total_seconds()
        return moment.timestamp()
    if isinstance(moment, (int, float)):
        return float(moment)
    text = str(moment).replace("Z", "+00:00")
    return epoch(datetime.fromisoformat(text))


def key_of(namespace: str, name: str, dimensions: Sequence[Any]) -> Key:
    """A metric's identity: namespace, name and the exact set of dimensions (moto ``Dimension`` objects)."""
    if len(dimensions) == 1:  # the common case (DBInstanceIdentifier, BucketName): no sort
        only = dimensions[0]
        return namespace, name, ((str(only.name), str(only.value)),)
    return namespace, name, tuple(sorted((str(d.name), str(d.value)) for d in dimensions))


def sample_of(datum: Any) -> Sample:
    if hasattr(datum, "sample_count"):  # MetricAggregatedDatum (StatisticValues)
        return float(datum.sum), float(datum.sample_count), float(datum.min), float(datum.max), None
    value = float(datum.value)
    return value, 1.0, value, value, value


class Series:
    """One metric's datapoints, sorted by time (out-of-order PutMetricData timestamps are inserted in place)."""

    __slots__ = ("samples", "times", "units")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.samples: list[Sample] = []
        self.units: list[str | None] = []

    def add(self, at: float, sample: Sample, unit: str | None) -> None:
        if not self.times or at >= self.times[-1]:
            self.times.append(at)
            self.samples.append(sample)
            self.units.append(unit)
            return
        i = bisect.bisect_right(self.times, at)
        self.times.insert(i, at)
        self.samples.insert(i, sample)
        self.units.insert(i, unit)

    def prune(self, before: float) -> None:
        i = bisect.bisect_left(self.times, before)
        if i:
            del self.times[:i], self.samples[:i], self.units[:i]

    def periods(self, stat: str, period: int, starts: Sequence[float], unit: str | None) -> list[Datapoint | None]:
        """The statistic of each period ``[start, start + period)``; None where the period has no datapoint."""
        out: list[Datapoint | None] = []
        times = self.times
        for start in starts:
            lo = bisect.bisect_left(times, start)
            hi = bisect.bisect_left(times, start + period, lo)
            if lo == hi:
                out.append(None)
                continue
            chosen = self.samples[lo:hi]
            if unit is not None:
                chosen = [s for s, u in zip(chosen, self.units[lo:hi], strict=True) if u == unit]
            value = statistic(stat, chosen)
            out.append(None if value is None else Datapoint(start, value, sum(s[1] for s in chosen)))
        return out


class RegionIndex:
    """The series of one CloudWatch backend (account and region), fed from ``metric_data`` since the last pass."""

    def __init__(self) -> None:
        self.series: dict[Key, Series] = {}
        self._source: int | None = None
        self._cursor = 0

    def refresh(self, metric_data: list[Any], keep_after: float) -> int:
        """Index what was appended to ``metric_data``; returns how many datapoints were added."""
        if id(metric_data) != self._source or len(metric_data) < self._cursor:  # a restore replaced the list
            self.series.clear()
            self._source, self._cursor = id(metric_data), 0
        end = len(metric_data)
        added = 0
        for datum in metric_data[self._cursor : end]:
            at = epoch(datum.timestamp)
            if at < keep_after:
                continue
            key = key_of(datum.namespace, datum.name, datum.dimensions)
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = Series()
            series.add(at, sample_of(datum), getattr(datum, "unit", None))
            added += 1
        self._cursor = end
        for series in self.series.values():
            series.prune(keep_after)
        return added

    def get(self, key: Key) -> Series | None:
        return self.series.get(key)
