"""The schedule arithmetic everyone shares: when a Scheduler expression fires, and what an off-hours schedule saves.

Expected times are worked out by hand from a calendar (2026-11-30 is a Monday; New York is UTC-5 in winter and
UTC-4 in summer; its 2026 changes are 8 March and 1 November), never by calling the code under test twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rentaliq.cron import ScheduleExpressionError, next_fire, parse
from rentaliq.offhours import OffHours
from rentaliq.spec.models import ScheduleSpec

NEW_YORK = "America/New_York"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_weekday_stop_fires_at_local_time_on_both_sides_of_daylight_saving():
    stop = "cron(0 20 ? * MON-FRI *)"
    assert next_fire(stop, NEW_YORK, utc(2026, 11, 30, 12)) == utc(2026, 12, 1, 1)  # Mon 20:00 EST = Tue 01:00 UTC
    assert next_fire(stop, NEW_YORK, utc(2026, 7, 3, 12)) == utc(2026, 7, 4, 0)  # Fri 20:00 EDT = Sat 00:00 UTC
    assert next_fire(stop, NEW_YORK, utc(2026, 12, 5, 2)) == utc(2026, 12, 8, 1)  # Friday's passed: next is Monday's


def test_time_skipped_by_spring_forward_runs_an_hour_later_and_a_repeated_time_runs_once():
    assert next_fire("cron(30 2 ? * SUN *)", NEW_YORK, utc(2026, 3, 7, 12)) == utc(2026, 3, 8, 7, 30)  # 03:30 EDT
    first = next_fire("cron(30 1 ? * SUN *)", NEW_YORK, utc(2026, 10, 31, 12))
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, the first of the two
    assert next_fire("cron(30 1 ? * SUN *)", NEW_YORK, first) == utc(2026, 11, 8, 6, 30)  # not 01:30 EST the same night


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0/15 * * * ? *)", utc(2026, 11, 30, 6, 7), utc(2026, 11, 30, 6, 15)),
        ("cron(0 9 1 JAN,JUL ? *)", utc(2026, 2, 1), utc(2026, 7, 1, 9)),
        ("cron(0 12 ? * 1 *)", utc(2026, 11, 30), utc(2026, 12, 6, 12)),  # cron's 1 is Sunday
        ("cron(0 0 29 2 ? *)", utc(2026, 3, 1), utc(2028, 2, 29)),
        ("at(2026-12-24T18:00:00)", utc(2026, 11, 30), utc(2026, 12, 24, 18)),
    ],
)
def test_next_fire_in_utc(expression: str, after: datetime, expected: datetime):
    assert next_fire(expression, "UTC", after) == expected


def test_schedules_that_never_fire_again_say_so():
    assert next_fire("at(2020-01-01T00:00:00)", "UTC", utc(2026, 1, 1)) is None
    assert next_fire("cron(0 0 1 1 ? 2020)", "UTC", utc(2026, 1, 1)) is None


def test_rate_counts_from_its_start():
    assert next_fire("rate(5 minutes)", "UTC", utc(2026, 11, 30, 6, 7), rate_start=utc(2026, 11, 30, 6, 1)) == utc(2026, 11, 30, 6, 11)


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("cron(0 20 * * * *)", "'?' in exactly one"),
        ("cron(0 24 ? * MON *)", "'24'; allowed: 0-23"),
        ("cron(0 1 ? * MON-FUN *)", "'FUN'"),
        ("cron(0 1 L * ? *)", "L, W or #"),
        ("cron(0 1 ? * 2#1 *)", "L, W or #"),
        ("cron(0 1 * *)", "six fields"),
        ("rate(1 hours)", "singular unit"),
        ("at(2026-12-24 18:00)", "at(yyyy-mm-ddThh:mm:ss)"),
        ("daily", "cron(...), rate(...) or at(...)"),
    ],
)
def test_bad_expressions_are_one_line_errors_naming_the_problem(expression: str, names: str):
    with pytest.raises(ScheduleExpressionError) as caught:
        parse(expression)
    assert names in str(caught.value) and "\n" not in str(caught.value)


def test_default_schedule_runs_65_of_168_weekly_hours():
    offhours = OffHours.from_spec(ScheduleSpec())
    assert offhours.stop == "cron(0 20 ? * MON,TUE,WED,THU,FRI *)"
    assert offhours.start == "cron(0 7 ? * MON,TUE,WED,THU,FRI *)"
    # 07:00-20:00 is 13 h a day, 5 days: 65 of the week's 168 h; so 730 * 65 / 168 = 282.44 h a month.
    assert offhours.running_fraction() == pytest.approx(65 / 168)
    assert offhours.running_hours_per_month() == pytest.approx(282.44, abs=0.01)


def test_a_stop_without_a_start_still_runs_again_after_seven_days():
    # Stopped Friday 20:00 and never started by the schedule: AWS starts it 7 days later, at the very time the next
    # Friday's stop is due; a stop fires only after the instant it is due, so it then runs a week. Over the 4 reference
    # weeks from Monday 5 January: runs Mon 00:00-Fri 20:00 (116 h), stopped 168 h, runs 168 h, stopped from
    # Fri 30 Jan 20:00 to the end, Mon 2 Feb 00:00. Running: 284 of 672 h.
    offhours = OffHours("cron(0 20 ? * FRI *)", "cron(0 7 1 1 ? 2020)", "UTC")
    assert offhours.running_fraction() == pytest.approx(284 / 672)


def test_next_start_names_the_scheduled_start_or_the_automatic_one():
    offhours = OffHours.from_spec(ScheduleSpec())
    friday_night = utc(2026, 12, 5, 2)  # Fri 4 Dec 21:00 EST
    assert offhours.next_transition(friday_night) == ("start", utc(2026, 12, 7, 12))  # Mon 07:00 EST
    assert offhours.next_start(friday_night) == utc(2026, 12, 7, 12)
    # Stopped since Sunday 29 Nov 10:00 UTC (by hand): AWS starts it on Sunday 6 Dec 10:00, before Monday's schedule.
    assert offhours.next_start(friday_night, stopped_since=utc(2026, 11, 29, 10)) == utc(2026, 12, 6, 10)
