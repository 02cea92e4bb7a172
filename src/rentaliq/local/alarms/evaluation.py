"""The pure part of CloudWatch alarm evaluation: statistics per period, M-of-N, missing data, reason strings.

No moto, no clock, no I/O: the evaluator hands in the datapoints of the alarm's evaluation range and the alarm's
current state, and gets back the state to move to (or ``None``: stay) with the reason AWS would write.

Semantics (Amazon CloudWatch User Guide, "Evaluating an alarm" and "Configuring how CloudWatch alarms treat
missing data"):

- The evaluation range is longer than ``EvaluationPeriods``: CloudWatch retrieves more periods than it needs.
  AWS does not publish the exact length; the documented examples use 5 periods for 3 evaluation periods, so the
  local cloud uses ``EvaluationPeriods + 2``.
- If the range holds at least ``EvaluationPeriods`` real datapoints, the most recent ``EvaluationPeriods`` of them
  are evaluated and ``TreatMissingData`` plays no part.
- Otherwise ``breaching``/``notBreaching`` fill the shortfall with as few missing datapoints as possible (all real
  ones count); ``missing`` and ``ignore`` evaluate the real ones alone: ALARM when ``DatapointsToAlarm`` of them
  breach, OK when even breaching missing points could not make ALARM, else the state stays.
- All datapoints missing: ``missing`` -> INSUFFICIENT_DATA, ``ignore`` -> stay, ``breaching`` -> ALARM,
  ``notBreaching`` -> OK.
- A percentile alarm with ``EvaluateLowSampleCountPercentile=ignore`` keeps its state while an evaluated period
  has fewer than ``10 / (1 - percentile)`` samples (1,000 for p99), AWS's significance rule; ``evaluate`` (the
  default) evaluates them.

This reproduces every row of the documented table (3 of 3, range 5): ``0 - X - X`` OK in every mode,
``- - - - 0`` OK in every mode, ``- - - - -`` INSUFFICIENT_DATA/stay/ALARM/OK, ``0 X X - X`` ALARM in every mode,
``- - X - -`` stay/stay/ALARM/OK.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ALARM = "ALARM"
OK = "OK"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
EXTRA_PERIODS = 2  # evaluation range = EvaluationPeriods + EXTRA_PERIODS (see the module docstring)

OPERATORS: dict[str, tuple[str, Any]] = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


@dataclass(frozen=True)
class Rule:
    """What an alarm evaluates, as PutMetricAlarm set it."""

    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    threshold: float
    treat_missing: str = "missing"
    statistic: str = "Average"  # a standard statistic or an extended one such as ``p99``
    ignore_low_sample_count: bool = False  # EvaluateLowSampleCountPercentile=ignore

    @property
    def minimum_samples(self) -> float:
        """Samples a percentile period needs to count as significant: 10 / (1 - percentile), e.g. 1000 for p99."""
        if not self.statistic.startswith("p"):
            return 0.0
        fraction = float(self.statistic[1:]) / 100.0
        return math.inf if fraction >= 1.0 else 10.0 / (1.0 - fraction)

    @property
    def range_periods(self) -> int:
        return self.evaluation_periods + EXTRA_PERIODS

    def breaches(self, value: float) -> bool:
        return bool(OPERATORS[self.comparison][1](value, self.threshold))


@dataclass(frozen=True)
class Datapoint:
    """One period's statistic: ``start`` is the period's start (epoch seconds)."""

    start: float
    value: float
    samples: float


@dataclass(frozen=True)
class Outcome:
    """``state`` None means the alarm keeps its state (and its reason)."""

    state: str | None
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def statistic(name: str, samples: Sequence[tuple[float, float, float, float, float | None]]) -> float | None:
    """``name`` over one period's samples, each ``(sum, count, min, max, raw value or None)``.

    A raw value comes from ``Value``/``Values``; an aggregate from ``StatisticValues`` (no raw value, so it takes
    no part in a percentile, as on AWS where percentiles need raw values)."""
    if not samples:
        return None
    if name == "SampleCount":
        return sum(s[1] for s in samples)
    if name == "Sum":
        return sum(s[0] for s in samples)
    if name == "Minimum":
        return min(s[2] for s in samples)
    if name == "Maximum":
        return max(s[3] for s in samples)
    if name == "Average":
        count = sum(s[1] for s in samples)
        return sum(s[0] for s in samples) / count if count else None
    if name.startswith("p"):
        values = sorted(s[4] for s in samples if s[4] is not None)
        if not values:
            return None
        rank = max(1, math.ceil(float(name[1:]) / 100.0 * len(values)))  # nearest rank
        return values[min(rank, len(values)) - 1]
    raise ValueError(f"unsupported statistic {name!r}")


def evaluate(rule: Rule, points: Sequence[Datapoint | None], current: str, query_time: float) -> Outcome:
    """Evaluate ``points`` (the evaluation range, oldest first, None where a period has no data)."""
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    real = [p for p in points if p is not None]
    treat = rule.treat_missing if rule.treat_missing in TREATMENTS else "missing"
    if len(real) >= n:
        evaluated, filled = real[-n:], 0
    elif treat in ("breaching", "notBreaching"):
        evaluated, filled = real, n - len(real)
    else:
        evaluated, filled = real, 0
    if rule.ignore_low_sample_count and any(p.samples < rule.minimum_samples for p in evaluated):
        return Outcome(None)  # "ignore": the state does not change while the percentile is not significant
    breaching = [p for p in evaluated if rule.breaches(p.value)]
    missing_breach = treat == "breaching"
    hits = len(breaching) + (filled if missing_breach else 0)

    if not real and filled == 0:  # everything missing, treated as missing or ignored
        if treat == "ignore" or current == INSUFFICIENT_DATA:
            return Outcome(None)
        return Outcome(INSUFFICIENT_DATA, _insufficient(n), _data(rule, [], points, query_time))
    if len(evaluated) + filled >= n or len(real) >= n:
        state = ALARM if hits >= m else OK
    elif len(breaching) >= m:
        state = ALARM
    elif len(breaching) + (n - len(real)) < m:
        state = OK
    else:
        return Outcome(None)  # could still go either way: the documented "retain current state"
    if state == current:
        return Outcome(None)
    supporting = breaching if state == ALARM else [p for p in evaluated if not rule.breaches(p.value)]
    reason = _crossed(rule, state, supporting, len(evaluated), filled, missing_breach)
    return Outcome(state, reason, _data(rule, evaluated, points, query_time))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def number(value: float) -> str:
    """A number as AWS's reasons print it (Java's Double.toString: ``80.0``, ``0.25``)."""
    return repr(float(value))


def stamp(epoch: float) -> str:
    """A datapoint's time as AWS's reasons print it: ``29/11/26 10:00:00`` (UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%d/%m/%y %H:%M:%S")


def iso(epoch: float) -> str:
    """``2026-11-29T10:00:00.000+0000``, the timestamp format of reason data and alarm messages."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _crossed(rule: Rule, state: str, supporting: list[Datapoint], evaluated: int, filled: int, missing_breach: bool) -> str:
    words = OPERATORS[rule.comparison][0]
    relation = words if state == ALARM else f"not {words}"
    listed = ", ".join(f"{number(p.value)} ({stamp(p.start)})" for p in reversed(supporting))  # newest first
    treated = "Breaching" if missing_breach else "NonBreaching"
    if evaluated == 0:
        return (
            f"Threshold Crossed: no datapoints were received for {_plural(filled, 'period')} and "
            f"{_plural(filled, 'missing datapoint')} {'was' if filled == 1 else 'were'} treated as [{treated}]."
        )
    verb = "was" if len(supporting) == 1 else "were"
    if rule.evaluation_periods == 1 and filled == 0:
        return f"Threshold Crossed: 1 datapoint [{listed}] {verb} {relation} the threshold ({number(rule.threshold)})."
    minimum = rule.datapoints_to_alarm if state == ALARM else rule.evaluation_periods - rule.datapoints_to_alarm + 1
    transition = "OK -> ALARM" if state == ALARM else "ALARM -> OK"
    missing = ""
    if filled:
        missing = f" and {_plural(filled, 'missing datapoint')} {'was' if filled == 1 else 'were'} treated as [{treated}]"
    return (
        f"Threshold Crossed: {len(supporting)} out of the last {_plural(evaluated + filled, 'datapoint')} [{listed}] {verb} "
        f"{relation} the threshold ({number(rule.threshold)}){missing} "
        f"(minimum {_plural(minimum, 'datapoint')} for {transition} transition)."
    )


def _insufficient(n: int) -> str:
    return f"Insufficient Data: {_plural(n, 'datapoint')} {'was' if n == 1 else 'were'} unknown."


def _data(rule: Rule, evaluated: Sequence[Datapoint], points: Sequence[Datapoint | None], query_time: float) -> dict[str, Any]:
    """StateReasonData as CloudWatch writes it (version 1.0)."""
    start = query_time - rule.period * len(points) if points else query_time
    data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": iso(query_time),
        "startDate": iso(start - start % rule.period),
        "statistic" if not rule.statistic.startswith("p") else "extendedStatistic": rule.statistic,
        "period": rule.period,
        "recentDatapoints": [p.value for p in evaluated],
        "threshold": rule.threshold,
    }
    if evaluated:
        data["evaluatedDatapoints"] = [{"timestamp": iso(p.start), "sampleCount": p.samples, "value": p.value} for p in reversed(evaluated)]
    return data
