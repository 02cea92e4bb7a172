"""Finding the PostgreSQL 15 server binaries (initdb, pg_ctl, postgres) on this machine.

RDS instances are pinned to major version 15 and a data directory made by another major version cannot
be started by 15, so this module is where "which PostgreSQL" is decided, once, with an install hint
in every refusal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from contextlib import suppress
from pathlib import Path

from rentaliq.local.postgres.model import PG_MAJOR, PostgresNotInstalled

PG_BIN_ENV = "RENTALIQ_PG_BIN"
_DEFAULT_PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    f"install the server with `apt-get install postgresql-{PG_MAJOR}` (Debian/Ubuntu) or set {PG_BIN_ENV} to the directory holding initdb, pg_ctl and postgres"
)


def find_pg_bin() -> Path:
    """Locate PostgreSQL 15 server binaries.

    Other major versions are refused rather than used.  An explicit RENTALIQ_PG_BIN is never
    second-guessed with a fallback: a wrong setting must be noticed.
    """
    explicit = os.environ.get(PG_BIN_ENV)
    if explicit:
        return _check_bin_dir(Path(explicit), f"{PG_BIN_ENV}={explicit}")

    candidates: list[Path] = [_DEFAULT_PG_BIN]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    problems: list[str] = []
    for candidate in dict.fromkeys(candidates):  # de-duplicate, keep order
        try:
            return _check_bin_dir(candidate, str(candidate))
        except PostgresNotInstalled as exc:
            problems.append(str(exc).split(";")[0])
    raise PostgresNotInstalled(f"PostgreSQL {PG_MAJOR} server binaries not found ({', '.join(problems)}); {INSTALL_HINT}")


def _check_bin_dir(bin_dir: Path, label: str) -> Path:
    missing = [name for name in _REQUIRED_BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise PostgresNotInstalled(f"{label}: no {', '.join(missing)}; {INSTALL_HINT}")
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PostgresNotInstalled(f"{label}: cannot run postgres --version ({exc}); {INSTALL_HINT}") from exc
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out.stdout)
    if not match:
        raise PostgresNotInstalled(f"{label}: unrecognised `postgres --version` output; {INSTALL_HINT}")
    if int(match.group(1)) != PG_MAJOR:
        raise PostgresNotInstalled(f"{label}: is PostgreSQL {match.group(1)}, RDS instances need {PG_MAJOR}; {INSTALL_HINT}")
    return bin_dir
