"""Each schedule's clock: which of its fires have been decided, which one is due now, and what each invocation did.

The state lives on moto's ``Schedule`` object itself (attributes ``_rentaliq_*``), so it is pickled with the
Scheduler backend by the local cloud's persistence: a restart, even after ``kill -9``, neither fires a schedule
again for a fire it already decided nor forgets one. It goes with the schedule: a deleted schedule's record is
gone, and a create or an update restarts the clock at that moment (Scheduler evaluates a changed schedule from
the change on).

Due fires are computed from wall-clock time: a pass looks at every fire in ``(evaluated_at, now]``, so the
executor's period only bounds the latency. A fire the local cloud was not running for is invoked once, late,
when it is still within its grace (the flexible window plus the retry policy's maximum event age, the time
Scheduler itself keeps trying to deliver an event); older ones are recorded as missed, never invoked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rentaliq.cron import At, Rate, next_fire, parse

EVALUATED = "_rentaliq_evaluated_at"
INVOCATIONS = "_rentaliq_invocations"
KEEP_INVOCATIONS = 20
_MAX_FIRES_PER_PASS = 5000  # a rate(1 minute) schedule after a long outage: the rest count as missed
DEFAULT_EVENT_AGE_S = 86400  # Scheduler's default RetryPolicy.MaximumEventAgeInSeconds


def restart(schedule: Any, now: float | None = None) -> None:
    """Fires at or before ``now`` are not this schedule's to make (called on create and update)."""
    setattr(schedule, EVALUATED, time.time() if now is None else now)


def evaluated_at(schedule: Any) -> datetime:
    value = getattr(schedule, EVALUATED, None)
    if value is None:
        value = float(getattr(schedule, "last_modified_date", None) or getattr(schedule, "creation_date", None) or time.time())
    return datetime.fromtimestamp(value, UTC)


def mark_evaluated(schedule: Any, until: datetime) -> None:
    setattr(schedule, EVALUATED, max(until.timestamp(), evaluated_at(schedule).timestamp()))


def record(schedule: Any, invocation: dict[str, Any]) -> None:
    """Keep an invocation's outcome (newest last, the last ``KEEP_INVOCATIONS``)."""
    kept = list(getattr(schedule, INVOCATIONS, None) or [])
    kept.append(invocation)
    setattr(schedule, INVOCATIONS, kept[-KEEP_INVOCATIONS:])


def invocations(schedule: Any) -> list[dict[str, Any]]:
    return list(getattr(schedule, INVOCATIONS, None) or [])


def grace(flexible_time_window: dict[str, Any] | None, target: dict[str, Any] | None) -> timedelta:
    """How late a fire may still be invoked: the flexible window plus the target's maximum event age."""
    window = flexible_time_window or {}
    minutes = int(window.get("MaximumWindowInMinutes") or 0) if window.get("Mode") == "FLEXIBLE" else 0
    retry = (target or {}).get("RetryPolicy") or {}
    return timedelta(minutes=minutes, seconds=int(retry.get("MaximumEventAgeInSeconds") or DEFAULT_EVENT_AGE_S))


def _instant(value: Any) -> datetime | None:
    """StartDate/EndDate as moto keeps them (epoch seconds, or an ISO string) as an aware datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Decision:
    """What one pass does with one schedule: invoke ``fire_at`` (or nothing), and the fires it skips as missed."""

    fire_at: datetime | None
    missed: list[datetime] = field(default_factory=list)


def decide(
    expression: str,
    timezone: str,
    evaluated_from: datetime,
    now: datetime,
    late_allowed: timedelta,
    *,
    start_date: Any = None,
    end_date: Any = None,
    created: datetime | None = None,
) -> Decision:
    """The fires in ``(evaluated_from, now]`` inside the schedule's start and end dates: the latest one is invoked if
    it is at most ``late_allowed`` old; every other one is missed (Scheduler fires each event once, on time)."""
    parsed = parse(expression)
    start, end = _instant(start_date), _instant(end_date)
    rate_start = start or created or evaluated_from
    after = max(evaluated_from, start - timedelta(microseconds=1)) if start and not isinstance(parsed, At) else evaluated_from
    fires: list[datetime] = []
    while len(fires) < _MAX_FIRES_PER_PASS:
        when = next_fire(parsed, timezone, after, rate_start=rate_start if isinstance(parsed, Rate) else None)
        if when is None or when > now or (end is not None and when > end):
            break
        fires.append(when)
        after = when
    if not fires:
        return Decision(None)
    latest = fires[-1]
    if now - latest <= late_allowed:
        return Decision(latest, fires[:-1])
    return Decision(None, fires)
