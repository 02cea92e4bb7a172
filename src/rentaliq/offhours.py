"""Off-hours schedules: the two Scheduler expressions a ScheduleSpec becomes, and what they mean over time.

Everything here reads the expressions, not the spec, so a deployed schedule (as Scheduler returns it) and a
synthesized template are judged the same way: the local cloud's executor, ``rentaliq status``, the runtime SDK's
``DatabaseStopped`` and the cost of the schedule all ask this module. AWS's own rule is part of the arithmetic: an
instance stopped for 7 days starts again by itself (RDS: "Stopping an Amazon RDS DB instance temporarily").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from rentaliq.cron import next_fire, parse
from rentaliq.spec.models import ScheduleSpec

AUTO_START_AFTER = timedelta(days=7)
STOP_TARGET = "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance"
START_TARGET = "arn:aws:scheduler:::aws-sdk:rds:startDBInstance"
# A month as AWS bills one (730 hours), measured over whole weeks so every weekday counts equally.
HOURS_PER_MONTH = 730
_REFERENCE = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday in January: no daylight-saving change in the weeks after it
_WEEKS = 4

Action = Literal["stop", "start"]


@dataclass(frozen=True)
class OffHours:
    """A stop expression and a start expression in one time zone."""

    stop: str
    start: str
    timezone: str

    @classmethod
    def from_spec(cls, schedule: ScheduleSpec) -> OffHours:
        days = ",".join(schedule.days)
        return cls(_cron(schedule.stop_at, days), _cron(schedule.start_at, days), schedule.timezone)

    def next_transition(self, now: datetime) -> tuple[Action, datetime]:
        """The next scheduled stop or start after ``now``, whichever comes first."""
        stop = next_fire(self.stop, self.timezone, now)
        start = next_fire(self.start, self.timezone, now)
        if stop is None and start is None:
            raise ValueError("the schedule never fires again")
        if start is None or (stop is not None and stop < start):
            return "stop", stop  # type: ignore[return-value]  # stop is not None on this branch
        return "start", start

    def next_start(self, now: datetime, *, stopped_since: datetime | None = None) -> datetime:
        """When a database stopped now starts again: the next scheduled start, or AWS's 7-day automatic start if
        that comes first (``stopped_since`` defaults to now)."""
        automatic = (stopped_since or now) + AUTO_START_AFTER
        scheduled = next_fire(self.start, self.timezone, now)
        return automatic if scheduled is None else min(scheduled, automatic)

    def running_fraction(self) -> float:
        """The share of the time the instance runs, over whole reference weeks, counting the 7-day automatic start."""
        running, stopped_since, state = timedelta(), None, self._state_at(_REFERENCE)
        clock, end = _REFERENCE, _REFERENCE + timedelta(weeks=_WEEKS)
        if state == "stop":
            stopped_since = _REFERENCE
        while clock < end:
            action, when = self.next_transition(clock)
            if state == "stop" and stopped_since is not None and stopped_since + AUTO_START_AFTER < when:
                action, when = "start", stopped_since + AUTO_START_AFTER
            when = min(when, end)
            if state == "start":
                running += when - clock
            if action != state:
                state, stopped_since = action, (when if action == "stop" else None)
            clock = when
        return running / (end - _REFERENCE)

    def runs_throughout(self, start: datetime, end: datetime) -> bool:
        """Whether the schedule has the instance running from ``start`` to ``end`` (no stop in between)."""
        if self._state_at(start) != "start":
            return False
        stop = next_fire(self.stop, self.timezone, start)
        return stop is None or stop >= end

    def running_hours_per_month(self) -> float:
        return HOURS_PER_MONTH * self.running_fraction()

    def _state_at(self, moment: datetime) -> Action:
        """Whether the schedule has the instance running ("start") or stopped ("stop") at ``moment``: the most
        recent transition in the week before it decides (running when neither fired)."""
        week_before = moment - timedelta(weeks=1)
        last: tuple[datetime, Action] | None = None
        for action, expression in (("stop", self.stop), ("start", self.start)):
            when = week_before
            while (fire := next_fire(expression, self.timezone, when)) is not None and fire <= moment:
                if last is None or fire > last[0]:
                    last = (fire, action)  # type: ignore[assignment]  # action is a Literal
                when = fire
        return "start" if last is None else last[1]


def _cron(hhmm: str, days: str) -> str:
    hour, minute = (int(part) for part in hhmm.split(":"))
    expression = f"cron({minute} {hour} ? * {days} *)"
    parse(expression)  # a spec that passed its rules always makes a valid expression; fail loudly if not
    return expression
