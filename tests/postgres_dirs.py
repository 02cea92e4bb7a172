"""Where the functional tests run their own PostgreSQL 15 servers, and the skip where there is none.

The directory is under /tmp and traversable (mkdtemp makes it 0700), because as root the servers run as the
``postgres`` user, which must reach its data directory; afterwards every server in it is stopped, whatever
failed, and the directory is removed.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rentaliq.local.postgres import PostgresEngine, PostgresNotInstalled, find_pg_bin


def require_postgres() -> None:
    """Skip (not fail) the test where the PostgreSQL 15 binaries are not installed."""
    try:
        find_pg_bin()
    except PostgresNotInstalled as exc:
        pytest.skip(str(exc))


@contextlib.contextmanager
def postgres_top(name: str) -> Iterator[Path]:
    """A fresh directory whose ``postgres`` subdirectory is the engine's root (beside it, room for archives and
    snapshots); skipped without PostgreSQL."""
    require_postgres()
    top = Path(tempfile.mkdtemp(prefix=f"rentaliq-{name}-", dir="/tmp"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        try:
            PostgresEngine(top / "postgres").stop_all()  # a fresh engine finds every server, whatever failed
        finally:
            shutil.rmtree(top, ignore_errors=True)
