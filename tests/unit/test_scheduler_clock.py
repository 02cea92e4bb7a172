"""Which fire of a schedule is due (the local executor's decision), and PROD's schedule refused by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from rentaliq.local.scheduler.clock import Decision, decide, grace

STOP = "cron(0 20 ? * MON,TUE,WED,THU,FRI *)"
NY = "America/New_York"
# Monday 2026-01-05, 20:00 in New York is 01:00 UTC on Tuesday (EST, UTC-5).
MONDAY_STOP = datetime(2026, 1, 6, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_nothing_is_due_before_the_time():
    assert decide(STOP, NY, MONDAY_STOP - 2 * HOUR, MONDAY_STOP - timedelta(seconds=1), HOUR) == Decision(None, [])


def test_the_fire_is_due_at_its_time_whatever_the_pass_period():
    # a pass 17 s after the fire (a 30 s period) invokes it, with its scheduled time
    assert decide(STOP, NY, MONDAY_STOP - timedelta(seconds=13), MONDAY_STOP + timedelta(seconds=17), HOUR) == Decision(MONDAY_STOP, [])


def test_a_decided_fire_is_not_due_again():
    assert decide(STOP, NY, MONDAY_STOP, MONDAY_STOP + timedelta(minutes=5), HOUR) == Decision(None, [])


def test_a_late_fire_within_its_grace_fires_once_and_older_ones_are_missed():
    # the local cloud was down from Monday 19:00 to Wednesday 20:30 New York time: Monday's and Tuesday's stops
    # are past their hour of grace, Wednesday's (01:00 UTC Thursday) is 30 minutes late: invoked once
    wednesday_stop = MONDAY_STOP + timedelta(days=2)
    decision = decide(STOP, NY, MONDAY_STOP - HOUR, wednesday_stop + timedelta(minutes=30), HOUR)
    assert decision == Decision(wednesday_stop, [MONDAY_STOP, MONDAY_STOP + timedelta(days=1)])


def test_a_fire_past_its_grace_is_missed_not_invoked():
    decision = decide(STOP, NY, MONDAY_STOP - HOUR, MONDAY_STOP + 2 * HOUR, HOUR)
    assert decision == Decision(None, [MONDAY_STOP])


def test_weekends_do_not_fire():
    friday_stop = datetime(2026, 1, 10, 1, 0, tzinfo=UTC)  # Friday 20:00 New York
    monday = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)
    assert decide(STOP, NY, friday_stop, monday, HOUR) == Decision(None, [])


def test_start_and_end_dates_bound_the_fires():
    assert decide(STOP, NY, MONDAY_STOP - HOUR, MONDAY_STOP + HOUR, 2 * HOUR, start_date=(MONDAY_STOP + timedelta(minutes=1)).timestamp()) == Decision(None, [])
    assert decide(STOP, NY, MONDAY_STOP - HOUR, MONDAY_STOP + HOUR, 2 * HOUR, end_date=(MONDAY_STOP - timedelta(minutes=1)).isoformat()) == Decision(None, [])


def test_one_time_and_rate_schedules():
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert decide("at(2026-03-01T10:00:00)", "Europe/Berlin", at - HOUR, at + timedelta(seconds=5), HOUR) == Decision(at, [])
    created = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    decision = decide("rate(10 minutes)", "UTC", created, created + timedelta(minutes=25), HOUR, created=created)
    assert decision == Decision(created + timedelta(minutes=20), [created + timedelta(minutes=10)])


def test_grace_is_the_flexible_window_plus_the_event_age():
    assert grace({"Mode": "OFF"}, {"RetryPolicy": {"MaximumEventAgeInSeconds": 3600}}) == HOUR
    assert grace({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}, {"RetryPolicy": {"MaximumEventAgeInSeconds": 60}}) == timedelta(minutes=16)
    assert grace({"Mode": "OFF"}, {}) == timedelta(hours=24)  # Scheduler's default event age


def test_prod_schedule_is_refused_in_one_line(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "prod.toml").write_text("[schedule]\nenabled = true\n")
    result = subprocess.run(
        [sys.executable, "-m", "rentaliq.cli", "synth", "prod"], capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"}, timeout=300
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "schedule.enabled" in errors[0] and "allow_unsafe_prod" in errors[0], result.stderr
    assert not (tmp_path / "cdk.out").exists()
