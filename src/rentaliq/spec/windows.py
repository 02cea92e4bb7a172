"""RDS maintenance and backup windows as minutes, so the rules can check their length and overlap.

A backup window is daily (``hh24:mi-hh24:mi``), a maintenance window weekly (``ddd:hh24:mi-ddd:hh24:mi``),
both in UTC, as RDS writes them. Windows may wrap past midnight or past Sunday, so spans and overlaps are
computed on a circle: a day of 1,440 minutes or a week of 10,080.
"""

from __future__ import annotations

import re

DAY = 24 * 60
WEEK = 7 * DAY
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DAILY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_WEEKLY = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$")


def daily_minutes(window: str) -> tuple[int, int] | None:
    """(start, end) in minutes after midnight, or None when ``window`` is not ``hh24:mi-hh24:mi``."""
    m = _DAILY.match(window)
    if not m:
        return None
    h1, m1, h2, m2 = map(int, m.groups())
    return h1 * 60 + m1, h2 * 60 + m2


def weekly_minutes(window: str) -> tuple[int, int] | None:
    """(start, end) in minutes after Monday 00:00, or None when ``window`` is not ``ddd:hh24:mi-ddd:hh24:mi``."""
    m = _WEEKLY.match(window)
    if not m:
        return None
    d1, h1, m1, d2, h2, m2 = m.groups()
    start = DAYS.index(d1) * DAY + int(h1) * 60 + int(m1)
    end = DAYS.index(d2) * DAY + int(h2) * 60 + int(m2)
    return start, end


def span(start: int, end: int, period: int) -> int:
    """Length in minutes of the window from ``start`` to ``end`` on a circle of ``period`` minutes."""
    return (end - start) % period


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Two half-open intervals on the week circle, each given as (start, end) in minutes."""
    a_len, b_len = span(*a, WEEK), span(*b, WEEK)
    return (b[0] - a[0]) % WEEK < a_len or (a[0] - b[0]) % WEEK < b_len


def daily_overlaps_weekly(daily: tuple[int, int], weekly: tuple[int, int]) -> bool:
    """Whether a window that repeats every day meets a weekly one on any day of the week."""
    length = span(*daily, DAY)
    return any(overlaps(((d * DAY + daily[0]) % WEEK, (d * DAY + daily[0] + length) % WEEK), weekly) for d in range(7))
