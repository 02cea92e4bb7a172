"""The snapshot of an environment's monitoring: series of datapoints, alarms and alarm history, all frozen.

Frozen so a frame of `rentaliq top` or a report can be handed around (rendered, serialised) without anyone
changing what was read; ``to_dict`` is the `--json` form scripts rely on, so its keys are part of the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class MetricKey:
    """One CloudWatch series: namespace, metric name, dimensions, and the statistic and unit we read it with."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    unit: str
    """The unit AWS documents for the metric (``Percent``, ``Bytes``, ``Seconds``, ``Count/Second`` ...)."""

    @property
    def resource(self) -> str:
        """The resource the series is about: the DB instance or the bucket (its first dimension's value)."""
        return self.dimensions[0][1] if self.dimensions else ""

    @property
    def label(self) -> str:
        """``rentaliq-lab-db CPUUtilization``, plus any dimension beyond the resource (``StorageType=StandardStorage``)."""
        extra = " ".join(f"{k}={v}" for k, v in self.dimensions[1:])
        return f"{self.resource} {self.name}" + (f" ({extra})" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "metric": self.name, "dimensions": dict(self.dimensions), "stat": self.stat, "unit": self.unit}


@dataclass(frozen=True)
class Series:
    """The datapoints of one metric over the window, oldest first."""

    key: MetricKey
    timestamps: tuple[datetime, ...]
    values: tuple[float, ...]
    period_s: int = 60
    """Seconds per datapoint: the snapshot's period, or a day for S3's daily storage metrics."""
    since: datetime | None = None
    """Where the series' time range starts (daily metrics reach back further than the window); None: the window's."""

    @property
    def current(self) -> float | None:
        """The newest datapoint's value; None when the window holds none."""
        return self.values[-1] if self.values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.key.to_dict(),
            "label": self.key.label,
            "current": self.current,
            "period_s": self.period_s,
            "points": [{"timestamp": t.isoformat(), "value": v} for t, v in zip(self.timestamps, self.values, strict=True)],
        }


@dataclass(frozen=True)
class AlarmView:
    """One alarm as DescribeAlarms reports it."""

    name: str
    state: str
    """``OK``, ``ALARM`` or ``INSUFFICIENT_DATA``."""
    reason: str
    updated: datetime | None
    metric: str
    """``AWS/RDS CPUUtilization`` (empty for a composite alarm)."""
    comparison: str
    threshold: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "updated": self.updated.isoformat() if self.updated else None,
            "metric": self.metric,
            "comparison": self.comparison,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class HistoryEntry:
    """One DescribeAlarmHistory item (a state change, a configuration update or an action)."""

    timestamp: datetime
    alarm: str
    kind: str
    """``StateUpdate``, ``ConfigurationUpdate``, ``Action``."""
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp.isoformat(), "alarm": self.alarm, "type": self.kind, "summary": self.summary}


@dataclass(frozen=True)
class Snapshot:
    """Everything one frame of `top` or one report shows."""

    env: str
    start: datetime
    end: datetime
    period_s: int
    instances: tuple[str, ...]
    """The env's DB instance, then its read replicas."""
    buckets: tuple[str, ...]
    series: tuple[Series, ...]
    alarms: tuple[AlarmView, ...]
    history: tuple[HistoryEntry, ...]
    notes: tuple[str, ...]
    """What could not be read, in one line each (e.g. ``alarm history unavailable: ...``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "period_s": self.period_s,
            "instances": list(self.instances),
            "buckets": list(self.buckets),
            "metrics": [s.to_dict() for s in self.series],
            "alarms": [a.to_dict() for a in self.alarms],
            "history": [h.to_dict() for h in self.history],
            "notes": list(self.notes),
        }
