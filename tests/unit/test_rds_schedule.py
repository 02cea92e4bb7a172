"""When the local cloud takes automated base backups and applies pending modifications (pure rules)."""

from __future__ import annotations

import datetime

import pytest

from rentaliq.local.rds_backup_schedule import base_backup_due
from rentaliq.local.rds_modifications import in_window

UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("newest", "now", "due"),
    [
        ("2026-11-30T03:10", "2026-11-30T03:40", False),  # already taken in today's window
        ("2026-11-29T03:10", "2026-11-30T02:59", False),  # today's window has not opened
        ("2026-11-29T03:10", "2026-11-30T03:00", True),  # it opened
        ("2026-11-28T03:10", "2026-11-30T02:00", True),  # yesterday's window passed while the cloud was off
        ("2026-11-30T01:00", "2026-11-30T05:00", True),  # created before the window: the window still takes one
    ],
)
def test_base_backups_are_daily_in_the_backup_window(newest: str, now: str, due: bool) -> None:
    assert base_backup_due("03:00-04:00", at(newest), at(now), None) is due


def test_an_interval_overrides_the_window() -> None:
    assert base_backup_due("03:00-04:00", at("2026-11-30T10:00"), at("2026-11-30T10:00:05"), datetime.timedelta(seconds=5))
    assert not base_backup_due("03:00-04:00", at("2026-11-30T10:00"), at("2026-11-30T10:00:04"), datetime.timedelta(seconds=5))


@pytest.mark.parametrize(
    ("window", "now", "inside"),
    [
        ("sun:05:00-sun:06:00", "2026-11-29T05:30", True),  # 2026-11-29 is a Sunday
        ("sun:05:00-sun:06:00", "2026-11-29T06:00", False),
        ("sun:05:00-sun:06:00", "2026-11-30T05:30", False),
        ("sun:23:30-mon:00:30", "2026-11-30T00:10", True),  # across midnight
        ("sat:23:00-mon:01:00", "2026-11-29T12:00", True),
        (None, "2026-11-29T05:30", False),
        ("garbage", "2026-11-29T05:30", False),
    ],
)
def test_pending_modifications_wait_for_the_weekly_maintenance_window(window: str | None, now: str, inside: bool) -> None:
    assert in_window(window, at(now)) is inside
