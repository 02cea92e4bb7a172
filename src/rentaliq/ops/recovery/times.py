"""Point-in-time arguments: parse --to-time, and check it against the restorable window (pure).

A time without an offset is UTC (RDS's own clock and every time this tool prints); the plan prints the
time it understood, in UTC, before anything is restored.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rentaliq.ops.recovery.errors import RecoveryError

EXAMPLE = "2025-11-08T14:30:00Z"


def parse_time(value: str, option: str = "--to-time") -> datetime:
    """An aware UTC datetime, or RecoveryError naming the bad value and the accepted format."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise RecoveryError(f"{option} {value!r} is not a time; use ISO 8601, e.g. {EXAMPLE} (UTC when no offset is given)") from None
    if "T" not in text.upper() and " " not in text:
        raise RecoveryError(f"{option} {value!r} has no time of day; use ISO 8601, e.g. {EXAMPLE}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def utc(value: datetime) -> str:
    """``2025-11-08T14:30:00Z``: how every time is shown."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_in_window(at: datetime, earliest: datetime | None, latest: datetime | None, instance: str) -> None:
    """Refuse a time RDS would refuse (InvalidRestoreTime), with the window in the message."""
    if latest is not None and at > latest:
        raise RecoveryError(
            f"--to-time {utc(at)} is after the latest restorable time of {instance} ({utc(latest)}); "
            f"use --latest, or a time from {utc(earliest) if earliest else 'the window start'} to {utc(latest)}"
        )
    if earliest is not None and at < earliest:
        raise RecoveryError(
            f"--to-time {utc(at)} is before the earliest restorable time of {instance} ({utc(earliest)}); "
            f"allowed: {utc(earliest)} to {utc(latest) if latest else 'now'}, or restore a snapshot with --snapshot"
        )
