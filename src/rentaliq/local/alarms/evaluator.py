"""The alarm evaluator: a background pass every ``RENTALIQ_LOCAL_ALARM_SECONDS`` (default 60, CloudWatch's own
cadence) over every metric alarm of every account and region.

A pass has two halves. :meth:`Evaluator.plan` reads moto's state without the persistence lock: it brings each
region's series index up to date and evaluates every alarm on its last complete periods (period boundaries are
aligned to the epoch, as CloudWatch aligns them). :meth:`Evaluator.apply` then takes the lock, applies the state
changes that are still valid (an alarm replaced or deleted meanwhile is skipped), writes history, runs actions, and
commits outside the lock.

Alarms the local cloud does not evaluate keep their state: composite alarms, anomaly-detection operators, and
metric-math alarms other than a single MetricStat.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends

from rentaliq.local.alarms import actions, lifecycle
from rentaliq.local.alarms.evaluation import OPERATORS, STATISTICS, Outcome, Rule, evaluate
from rentaliq.local.alarms.series import RegionIndex, key_of
from rentaliq.local.periodic import PeriodicThread
from rentaliq.local.state.commit import CRASH_AT_ENV

log = logging.getLogger(__name__)

INTERVAL_ENV = "RENTALIQ_LOCAL_ALARM_SECONDS"
KEEP_SECONDS = 24 * 3600  # the index keeps at least a day of datapoints (more if an alarm's range is longer)


@dataclass(frozen=True)
class Target:
    """What an alarm watches: its rule, the metric's key and the unit filter."""

    rule: Rule
    key: tuple[Any, ...]
    unit: str | None


@dataclass
class Change:
    backend: Any
    alarm: Any
    outcome: Outcome


def target_of(alarm: Any) -> Target | None:
    """The alarm's evaluation target, or None when the local cloud does not evaluate this kind of alarm."""
    if alarm.rule is not None or alarm.comparison_operator not in OPERATORS:
        return None
    namespace, name, dimensions = alarm.namespace, alarm.metric_name, alarm.dimensions
    period, stat, unit = alarm.period, alarm.extended_statistic or alarm.statistic, alarm.unit
    if alarm.metric_data_queries:
        stats = [q for q in alarm.metric_data_queries if q.metric_stat is not None and not q.expression]
        if len(alarm.metric_data_queries) != 1 or len(stats) != 1:
            return None
        ms = stats[0].metric_stat
        namespace, name, dimensions = ms.metric.namespace, ms.metric.metric_name, ms.metric.dimensions
        period, stat, unit = ms.period, ms.stat, ms.unit
    if not (namespace and name and period and stat) or not (stat in STATISTICS or _percentile(stat)):
        return None
    n = int(alarm.evaluation_periods or 1)
    rule = Rule(
        period=int(period),
        evaluation_periods=n,
        datapoints_to_alarm=int(alarm.datapoints_to_alarm or n),
        comparison=alarm.comparison_operator,
        threshold=float(alarm.threshold),
        treat_missing=alarm.treat_missing_data or "missing",
        statistic=stat,
        ignore_low_sample_count=alarm.evaluate_low_sample_count_percentile == "ignore",
    )
    return Target(rule, key_of(namespace, name, dimensions), unit)


def _percentile(stat: str) -> bool:
    try:
        return stat.startswith("p") and 0 < float(stat[1:]) <= 100
    except ValueError:
        return False


class Evaluator(PeriodicThread):
    name = "alarm-evaluator"

    def __init__(self) -> None:
        super().__init__()
        self.indexes: dict[tuple[str, str], RegionIndex] = {}
        self.last_pass_seconds = 0.0

    def interval(self) -> float:
        try:
            return max(float(os.environ.get(INTERVAL_ENV, "60")), 0.05)
        except ValueError:  # a typo in the variable must not stop evaluation: CloudWatch's minute
            return 60.0

    def tick(self) -> None:
        started = time.perf_counter()
        self.deliver_owed()  # what a crash left owed: once, at the first pass after a restart
        changes = self.plan(time.time())
        if changes:
            self.apply(changes)
        self.last_pass_seconds = time.perf_counter() - started

    def plan(self, now: float) -> list[Change]:
        """Evaluate every metric alarm at ``now``; the state changes to make (nothing is changed here)."""
        changes: list[Change] = []
        for account, regions in list(cloudwatch_backends.items()):
            for region, backend in list(regions.items()):
                alarms = list(backend.alarms.values())
                targets = [(a, target_of(a)) for a in alarms]
                targets = [(a, t) for a, t in targets if t is not None]
                if not targets:
                    continue
                index = self.indexes.get((account, region))
                if index is None:
                    index = self.indexes[(account, region)] = RegionIndex()
                longest = max(t.rule.period * (t.rule.range_periods + 1) for _, t in targets)
                index.refresh(backend.metric_data, now - max(KEEP_SECONDS, longest))
                for alarm, target in targets:
                    outcome = self._evaluate(index, target, alarm.state_value, now)
                    if outcome.state is not None:
                        changes.append(Change(backend, alarm, outcome))
        return changes

    @staticmethod
    def _evaluate(index: RegionIndex, target: Target, current: str, now: float) -> Outcome:
        rule = target.rule
        boundary = math.floor(now / rule.period) * rule.period  # the end of the last complete period
        count = rule.range_periods
        starts = [boundary - rule.period * (count - i) for i in range(count)]
        series = index.get(target.key)
        points = series.periods(rule.statistic, rule.period, starts, target.unit) if series else [None] * count
        return evaluate(rule, points, current, now)

    def apply(self, changes: list[Change]) -> None:
        """Apply state changes (history, owed actions) under the persistence lock and commit them; only then run
        the actions and commit again. A crash in between runs them after the restart."""
        from rentaliq.local import state

        current = state.current()
        applied = 0
        with current.changing() if current is not None else _nothing():
            if getattr(current, "closed", False):
                return  # the server is stopping and its final snapshot is written: change nothing it would lose
            for change in changes:
                alarm, outcome = change.alarm, change.outcome
                if change.backend.alarms.get(alarm.name) is not alarm or outcome.state is None or alarm.state_value == outcome.state:
                    continue  # replaced, deleted or already moved while this pass was evaluating
                lifecycle.transition(change.backend, alarm, outcome.state, outcome.reason, outcome.data)
                applied += 1
        if applied and not self._commit(current, with_sns=False):
            return  # not durable: running the actions now could notify of a change a restart forgets
        if applied and os.environ.get(CRASH_AT_ENV) == "alarm-actions":  # test-only: die between commit and actions
            os.kill(os.getpid(), signal.SIGKILL)
        self.deliver_owed()

    def deliver_owed(self) -> None:
        """Run the actions every alarm owes (after a change, or left by a crash), then commit."""
        from rentaliq.local import state

        current = state.current()
        published = delivered = False
        with current.changing() if current is not None else _nothing():
            if getattr(current, "closed", False):
                return
            for regions in list(cloudwatch_backends.values()):
                for backend in list(regions.values()):
                    if actions.owed(backend):
                        published |= actions.deliver(backend)
                        delivered = True
        if delivered:
            self._commit(current, with_sns=published)

    @staticmethod
    def _commit(current: Any, *, with_sns: bool) -> bool:
        from moto.sns.models import sns_backends

        if current is None:
            return True
        if getattr(current, "closed", False):
            return False
        try:
            current.mark_dirty(cloudwatch_backends, *((sns_backends,) if with_sns else ()))
            current.commit()
        except Exception:
            log.exception("could not commit alarm state changes")
            return False
        return True


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
