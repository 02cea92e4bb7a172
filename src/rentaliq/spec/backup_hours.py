"""Does the daily backup window fall in the hours an off-hours schedule keeps the database running?

RDS takes no automated backup of a stopped instance ("Automated backups aren't created while a DB instance is
stopped", RDS User Guide). The spec's window, 03:00-04:00 UTC, is 22:00 in New York: inside the default
schedule's off-hours every day, so a scheduled LAB or QA would never get a daily backup. The window is in UTC and
the schedule in local time, so both sides of a daylight-saving change are checked: a week in January and one in July.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rentaliq.offhours import OffHours
from rentaliq.spec import windows
from rentaliq.spec.models import WEEKDAYS, ScheduleSpec

STARTUP_MARGIN = timedelta(minutes=30)  # an instance takes minutes to start: the window must not open with the start
_REFERENCE_WEEKS = (datetime.fromisoformat("2026-01-05T00:00:00+00:00"), datetime.fromisoformat("2026-07-06T00:00:00+00:00"))


def covered_days(offhours: OffHours, window: tuple[int, int]) -> set[str]:
    """The local weekdays (MON..SUN) on which a backup window, in UTC minutes, falls wholly in running hours (and
    opens at least STARTUP_MARGIN after a start), in both reference weeks."""
    start_minute, end_minute = window
    length = timedelta(minutes=windows.span(start_minute, end_minute, windows.DAY))
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(offhours.timezone)
    per_week = []
    for monday in _REFERENCE_WEEKS:
        days = set()
        for offset in range(8):  # a window late on Sunday UTC may be Monday's in local time... and the reverse
            begin = monday + timedelta(days=offset, minutes=start_minute)
            if offhours.runs_throughout(begin - STARTUP_MARGIN, begin + length):
                days.add(WEEKDAYS[begin.astimezone(zone).weekday()])
        per_week.append(days)
    return per_week[0] & per_week[1]


def backup_window_problem(schedule: ScheduleSpec, backup_window: str) -> str | None:
    """What is allowed instead, or None when every scheduled day gets its backup."""
    window = windows.daily_minutes(backup_window)
    assert window is not None  # checked by the caller
    offhours = OffHours.from_spec(schedule)
    if set(schedule.days) <= covered_days(offhours, window):
        return None
    length = windows.span(*window, windows.DAY)
    suggestion = next(
        (
            f"{start // 60:02d}:{start % 60:02d}-{(start + length) // 60 % 24:02d}:{(start + length) % 60:02d}"
            for start in range(0, windows.DAY, 30)
            if set(schedule.days) <= covered_days(offhours, (start, (start + length) % windows.DAY))
        ),
        None,
    )
    hours = f"{schedule.start_at}-{schedule.stop_at} {schedule.timezone} on {' '.join(schedule.days)}"
    example = f", e.g. {suggestion}" if suggestion else ""
    return f"a window (UTC) inside the hours the off-hours schedule runs the database ({hours}){example}: RDS takes no automated backup of a stopped instance"
