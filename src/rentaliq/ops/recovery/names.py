"""Identifiers: what RDS accepts, and the next free name by the spec's convention (pure; no API calls here).

RDS identifiers: 1-63 letters, digits and hyphens, starting with a letter, no two hyphens in a row, not
ending with a hyphen; RDS stores them lowercase (snapshots may be up to 255 characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime

from rentaliq import naming
from rentaliq.ops.recovery.errors import RecoveryError

_IDENTIFIER = re.compile(r"[a-z][a-z0-9-]*")
RULE = "1-63 letters, digits and hyphens, starting with a letter, no two hyphens in a row, not ending with a hyphen"
MAX_SUFFIX = 99  # a hundred manual snapshots of one day is a runaway script, not a backup plan


def instance_identifier(value: str, option: str) -> str:
    """The identifier RDS will store (lowercase), or RecoveryError naming the bad value and the rule."""
    lowered = value.strip().lower()
    if not _IDENTIFIER.fullmatch(lowered) or len(lowered) > 63 or "--" in lowered or lowered.endswith("-"):
        raise RecoveryError(f"{option} {value!r} is not a valid DB instance identifier; allowed: {RULE}")
    return lowered


def manual_snapshots(env: str, day: date) -> Iterator[str]:
    """``rentaliq-prod-manual-20251108``, then ``-2``, ``-3`` ... : the candidates, in the order to try them."""
    base = naming.manual_snapshot(env, f"{day:%Y%m%d}")
    yield base
    for n in range(2, MAX_SUFFIX + 1):
        yield f"{base}-{n}"


def replicas(env: str) -> Iterator[str]:
    """``rentaliq-prod-db-replica``, then ``-replica-2`` ...: the default replica names, in order."""
    for n in range(1, MAX_SUFFIX + 1):
        yield naming.db_replica(env, n)


def restored_instances(env: str, at: datetime) -> Iterator[str]:
    """Default names of a restored instance: the minute the restore was asked for (UTC), then ``-2``, ``-3`` ..."""
    base = naming.restored_db_instance(env, f"{at:%Y%m%d%H%M}")
    yield base
    for n in range(2, MAX_SUFFIX + 1):
        yield f"{base}-{n}"
