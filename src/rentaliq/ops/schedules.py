"""The environment's deployed off-hours schedules, as Scheduler returns them, and what they mean now.

``rentaliq status`` and ``rentaliq wake`` read the two schedules the stack deploys (``rentaliq-{env}-db-stop`` and
``-db-start`` in the default group) through GetSchedule, not the spec: what runs is what is deployed. The
arithmetic (next fire, local time beside UTC) is the runtime SDK's and :mod:`rentaliq.cron`'s, so the SDK's
``DatabaseStopped``, ``status`` and ``wake`` name the same times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rentaliq import naming
from rentaliq.deploy.target import Target
from rentaliq.runtime.instance_state import LiveSchedule, at_local, read_schedule

wake_stop_schedule = naming.db_wake_stop_schedule


@dataclass(frozen=True)
class OffHoursState:
    """The stop and start schedules (None: not deployed), the one-time stop a ``wake --for`` left pending (None:
    none), and the instance's RDS status (None: no instance)."""

    env: str
    stop: LiveSchedule | None
    start: LiveSchedule | None
    instance_status: str | None
    wake_stop: LiveSchedule | None = None

    @property
    def scheduled(self) -> bool:
        return self.stop is not None and self.start is not None and self.stop.enabled and self.start.enabled

    def next_stop(self, now: datetime) -> datetime | None:
        """The earlier of the regular stop and a pending wake-stop: whichever fires first stops the database."""
        fires = [s.next_fire(now) for s in (self.stop, self.wake_stop) if s is not None and s.enabled]
        return min((when for when in fires if when is not None), default=None)

    def stopped_by_wake_stop(self, now: datetime) -> bool:
        """Whether the next stop is the one-time wake-stop rather than the regular schedule."""
        if self.wake_stop is None or not self.wake_stop.enabled:
            return False
        return self.wake_stop.next_fire(now) == self.next_stop(now)

    def next_start(self, now: datetime) -> datetime | None:
        return self.start.next_fire(now) if self.start is not None else None

    def next_transition(self, now: datetime) -> tuple[str, datetime] | None:
        """("stops" | "starts", when): the next one that changes the instance (a stopped one can only start, a running
        one only stop), None when none fires again."""
        candidates = [("stops", self.next_stop(now)), ("starts", self.next_start(now))]
        if self.instance_status in ("stopped", "stopping"):
            candidates = candidates[1:]
        elif self.instance_status in ("available", "starting"):
            candidates = candidates[:1]
        found = [(when, verb) for verb, when in candidates if when is not None]
        if not found:
            return None
        when, verb = min(found)
        return verb, when

    def describe_next(self, now: datetime) -> str:
        """``stops Mon 2026-11-30 20:00 America/New_York (01:00 UTC on Tue 2026-12-01)``, or why nothing is scheduled."""
        if self.stop is None and self.start is None and self.wake_stop is None:
            return "no off-hours schedule: it runs around the clock"
        upcoming = self.next_transition(now)
        if upcoming is None:
            return "the schedules are disabled or will not fire again"
        verb, when = upcoming
        schedule = self.stop if verb == "stops" else self.start
        zone = schedule.timezone if schedule is not None else "UTC"
        if verb == "stops" and self.stopped_by_wake_stop(now):
            return f"{verb} {at_local(when, zone, now)} ({wake_stop_schedule(self.env)}, left by `rentaliq wake --for`)"
        return f"{verb} {at_local(when, zone, now)}"

    def lines(self, now: datetime) -> list[str]:
        """What `rentaliq status` prints: the schedule, the instance's state and the next transition."""
        if self.stop is None and self.start is None:
            return ["schedule: none (the database runs around the clock)"]
        parts = [f"{verb} {_when(s)}" for verb, s in (("stop", self.stop), ("start", self.start)) if s is not None]
        zone = (self.stop or self.start).timezone  # type: ignore[union-attr]  # one of them is set (checked above)
        disabled = [s.name for s in (self.stop, self.start) if s is not None and not s.enabled]
        lines = [f"schedule: {', '.join(parts)} ({zone})" + (f"; disabled: {', '.join(disabled)}" if disabled else "")]
        held = self.stop.start_date if self.stop is not None and self.stop.start_date and self.stop.start_date > now else None
        if held is not None:
            lines.append(f"  stop held by `rentaliq wake --for` until {at_local(held, zone, now)}")
        pending = self.wake_stop.next_fire(now) if self.wake_stop is not None and self.wake_stop.enabled else None
        if pending is not None:
            lines.append(f"  {wake_stop_schedule(self.env)} (from `rentaliq wake --for`) stops it {at_local(pending, zone, now)}")
        lines.append(f"  {naming.db_instance_id(self.env)} is {self.instance_status or 'not found'}; {self.describe_next(now)}")
        return lines

    def to_dict(self, now: datetime) -> dict[str, Any]:
        upcoming = self.next_transition(now)

        def one(schedule: LiveSchedule | None) -> dict[str, Any] | None:
            if schedule is None:
                return None
            return {"name": schedule.name, "expression": schedule.expression, "timezone": schedule.timezone, "enabled": schedule.enabled}

        return {
            "stop": one(self.stop),
            "start": one(self.start),
            "instance_status": self.instance_status,
            "stop_held_until": self.stop.start_date.isoformat() if self.stop and self.stop.start_date and self.stop.start_date > now else None,
            "wake_stop": one(self.wake_stop),
            "next_transition": {"action": upcoming[0].removesuffix("s"), "at_utc": upcoming[1].isoformat(), "text": self.describe_next(now)}
            if upcoming
            else None,
        }


def _when(schedule: LiveSchedule) -> str:
    """``20:00 MON-FRI`` for the cron our stacks make, else the expression itself."""
    fields = schedule.expression.removeprefix("cron(").removesuffix(")").split()
    if schedule.expression.startswith("cron(") and len(fields) == 6 and fields[0].isdigit() and fields[1].isdigit() and fields[2] == "?":
        days = "MON-FRI" if fields[4] in ("MON-FRI", "MON,TUE,WED,THU,FRI") else fields[4]
        return f"{int(fields[1]):02d}:{int(fields[0]):02d} {days}"
    return schedule.expression


def read_state(target: Target, env: str) -> OffHoursState:
    """Both schedules and the instance's status, read live (GetSchedule, DescribeDBInstances)."""
    from rentaliq.ops.recovery.instances import describe

    scheduler = target.client("scheduler")
    stop = read_schedule(scheduler, naming.db_stop_schedule(env))
    start = read_schedule(scheduler, naming.db_start_schedule(env))
    wake_stop = read_schedule(scheduler, wake_stop_schedule(env))
    instance = describe(target, naming.db_instance_id(env))
    return OffHoursState(env, stop, start, instance.status if instance else None, wake_stop)


def status_view(target: Target, env: str) -> tuple[dict[str, Any] | None, list[str], str | None]:
    """For `rentaliq status`: the schedule as JSON and as lines, and RDS's status of the instance. A schedule this
    caller may not read (Scheduler denied) is one line, never a failed status."""
    from botocore.exceptions import BotoCoreError, ClientError

    from rentaliq.ops.recovery.errors import RecoveryError

    now = datetime.now(UTC)
    try:
        state = read_state(target, env)
    except (ClientError, BotoCoreError, RecoveryError) as error:
        return None, [f"schedule: cannot be read ({' '.join(str(error).split())[:200]})"], None
    return state.to_dict(now), state.lines(now), state.instance_status
