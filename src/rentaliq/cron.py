"""EventBridge Scheduler's schedule expressions: ``cron(...)``, ``rate(...)`` and ``at(...)``, and when they fire next.

One parser serves everyone who must agree on when a schedule fires: the local cloud that executes schedules, the
runtime SDK naming a stopped database's next start, ``rentaliq status`` and the cost of an off-hours schedule.
The grammar is the one the Scheduler User Guide documents ("Schedule types"): six cron fields, minutes hours
day-of-month month day-of-week year, with ``*``, ``?``, lists, ranges, increments and names; exactly one of the two
day fields is ``?``; day-of-week counts 1 = SUN to 7 = SAT. Times are wall-clock times in the schedule's time zone,
so a 20:00 schedule fires at 20:00 local time on both sides of a daylight-saving change. The ``L``, ``W`` and ``#``
day operators are refused with a clear error: nothing here emits them, and a half-supported form would fire wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
CRON_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # cron's 1..7
_HORIZON_DAYS = 366 * 5  # the furthest a next fire is searched (a Feb-29-only schedule fires within 4 years)


class ScheduleExpressionError(ValueError):
    """A schedule expression Scheduler would refuse (or one this parser does not support); the message is one line."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: '?' (the day-of-week field decides)
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # ISO weekdays 1 = Monday .. 7 = Sunday; None: '?'
    years: frozenset[int] | None  # None: every year

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months or (self.years is not None and day.year not in self.years):
            return False
        if self.days_of_month is not None:
            return day.day in self.days_of_month
        return self.days_of_week is None or day.isoweekday() in self.days_of_week


@dataclass(frozen=True)
class Rate:
    every: timedelta


@dataclass(frozen=True)
class At:
    when: datetime  # naive: a wall-clock time in the schedule's time zone


Expression = Cron | Rate | At

_WRAPPED = re.compile(r"^(cron|rate|at)\((.*)\)$")


def parse(expression: str) -> Expression:
    """The parsed expression; ScheduleExpressionError naming the bad part and what is allowed."""
    m = _WRAPPED.match(expression.strip())
    if not m:
        raise ScheduleExpressionError(f"schedule expression {expression!r} is invalid; allowed: cron(...), rate(...) or at(...)")
    kind, body = m.groups()
    if kind == "rate":
        return _rate(expression, body)
    if kind == "at":
        try:
            return At(datetime.strptime(body, "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            raise ScheduleExpressionError(f"at() expression {expression!r} is invalid; allowed: at(yyyy-mm-ddThh:mm:ss)") from None
    return _cron(expression, body)


def next_fire(expression: str | Expression, timezone: str, after: datetime, *, rate_start: datetime | None = None) -> datetime | None:
    """The first time strictly after ``after`` (aware) that the expression fires, as an aware UTC datetime.

    None when it never fires again (an ``at()`` in the past, a cron whose years have passed). A ``rate()`` counts
    from ``rate_start`` (the schedule's start date or creation time; required for rates).
    """
    expr = parse(expression) if isinstance(expression, str) else expression
    zone = ZoneInfo(timezone)
    after = after.astimezone(UTC)
    if isinstance(expr, At):
        when = _aware(expr.when, zone)
        return when if when > after else None
    if isinstance(expr, Rate):
        if rate_start is None:
            raise ValueError("a rate() schedule needs rate_start")
        start = rate_start.astimezone(UTC)
        if after < start:
            return start
        periods = (after - start) // expr.every + 1
        return start + periods * expr.every
    return _next_cron(expr, zone, after)


def fires_between(expression: str | Expression, timezone: str, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every fire time in ``(start, end]``, in order (cron and at expressions)."""
    when: datetime | None = start
    while when is not None:
        when = next_fire(expression, timezone, when)
        if when is None or when > end:
            return
        yield when


def _next_cron(expr: Cron, zone: ZoneInfo, after: datetime) -> datetime | None:
    local_after = after.astimezone(zone)
    day = local_after.date()
    for _ in range(_HORIZON_DAYS):
        if expr.matches_day(day):
            for hour in sorted(expr.hours):
                for minute in sorted(expr.minutes):
                    when = _aware(datetime.combine(day, time(hour, minute)), zone)
                    if when > after:
                        return when
        if expr.years is not None and day.year > max(expr.years):
            return None
        day += timedelta(days=1)
    return None


def _aware(local: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone`` as UTC. A time the spring-forward change skips is taken with the offset before
    the change, which lands it the gap's length later (02:30 becomes 03:30); a time the fall-back change repeats
    is its first occurrence, so it fires once."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


_RATE = re.compile(r"^(\d+) (minute|minutes|hour|hours|day|days)$")


def _rate(expression: str, body: str) -> Rate:
    m = _RATE.match(body.strip())
    if not m or int(m.group(1)) < 1:
        raise ScheduleExpressionError(f"rate() expression {expression!r} is invalid; allowed: rate(N minute[s]|hour[s]|day[s]) with N >= 1")
    value, unit = int(m.group(1)), m.group(2).rstrip("s")
    if (value == 1) != (m.group(2) == unit):
        raise ScheduleExpressionError(f"rate() expression {expression!r} is invalid; allowed: a singular unit for 1 (rate(1 hour)), plural otherwise")
    return Rate(timedelta(**{f"{unit}s": value}))


def _cron(expression: str, body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(f"cron() expression {expression!r} is invalid; allowed: six fields: minutes hours day-of-month month day-of-week year")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(f"cron() expression {expression!r} is invalid; allowed: '?' in exactly one of day-of-month and day-of-week")
    dom_operator = re.search(r"[LW]", dom.upper())
    dow_operator = "#" in dow or any(token.upper().endswith("L") for token in dow.split(","))
    if dom_operator or dow_operator:
        raise ScheduleExpressionError(f"cron() expression {expression!r} uses L, W or #; allowed here: *, ?, lists, ranges and increments")
    days_of_week = None if dow == "?" else frozenset(_iso_weekday(d) for d in _values(expression, dow, 1, 7, CRON_DAYS))
    return Cron(
        minutes=_values(expression, minutes, 0, 59),
        hours=_values(expression, hours, 0, 23),
        days_of_month=None if dom == "?" else _values(expression, dom, 1, 31),
        months=_values(expression, month, 1, 12, MONTHS),
        days_of_week=days_of_week,
        years=None if year == "*" else _values(expression, year, 1970, 2199),
    )


def _iso_weekday(cron_day: int) -> int:
    """cron's 1 = SUN .. 7 = SAT as ISO's 1 = Monday .. 7 = Sunday."""
    return 7 if cron_day == 1 else cron_day - 1


def _values(expression: str, field: str, low: int, high: int, names: tuple[str, ...] = ()) -> frozenset[int]:
    """The numbers a cron field selects: ``*``, ``a``, ``a-b``, ``*/n``, ``a/n``, ``a-b/n`` and lists of those."""

    def number(token: str) -> int:
        upper = token.upper()
        if upper in names:
            return names.index(upper) + low
        if not token.isdigit() or not low <= int(token) <= high:
            allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
            raise ScheduleExpressionError(f"cron() expression {expression!r} has {token!r}; allowed: {allowed}")
        return int(token)

    selected: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 1
        if step_text and (not step_text.isdigit() or step < 1):
            raise ScheduleExpressionError(f"cron() expression {expression!r} has step {step_text!r}; allowed: 1 or more")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, last_text = base.split("-", 1)
            first, last = number(first_text), number(last_text)
        else:
            first = number(base)
            last = high if step_text else first
        if first > last:
            raise ScheduleExpressionError(f"cron() expression {expression!r} has the range {base!r}; allowed: a low-high range")
        selected.update(range(first, last + 1, step))
    return frozenset(selected)
