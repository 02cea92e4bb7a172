"""Is the database up? Connect over TLS with the credentials Secrets Manager holds, as a service would.

``wait_until_ready`` is what `up` ends with. It must never hang silently: on the local cloud a server
that cannot come up is known within seconds (the supervisor marks the instance ``failed``), so it gives up
after 60 s at most, at once when RDS reports a state the instance cannot leave by itself, always with the
server's last log lines. On AWS an instance can take many minutes to become available, so it waits longer
and reports progress instead.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg

from rentaliq import naming
from rentaliq.deploy.commands import command
from rentaliq.deploy.db_tls import libpq_tls
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec

LOCAL_TIMEOUT = 60.0
AWS_TIMEOUT = 1800.0
PROGRESS_EVERY = 30.0
LOG_LINES = 8
# RDS states an instance does not leave without someone acting (RDS User Guide, "Viewing DB instance status").
STUCK_STATES = {
    "failed",
    "stopped",
    "stopping",
    "storage-full",
    "inaccessible-encryption-credentials",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
}
_HEALTH_PATH = "/_rentaliq/health"  # rentaliq.local.server.HEALTH_PATH, without importing the server


def _next_step(target: Target, status: str | None, instance_id: str) -> str:
    """What brings a stuck instance back: the caller needs a way out, not only a diagnosis."""
    from rentaliq.deploy.commands import command

    if status == "failed":
        if target.is_local:
            return (
                f"; fix the cause shown in the log, then restart the local cloud (`{command('local', 'stop')}` and "
                f"`{command('local', 'start')}`), which starts the server again"
            )
        return "; RDS cannot recover a failed instance: restore it from a backup (point-in-time or snapshot)"
    if status == "stopped":
        return f"; start it: `{target.aws_cli} rds start-db-instance --db-instance-identifier {instance_id}`"
    return ""


class DatabaseNotReady(TimeoutError):
    """The database did not take TLS connections; the message names why and shows the server's last log lines."""


def credentials(target: Target, spec: EnvironmentSpec) -> dict[str, Any]:
    secret = target.client("secretsmanager").get_secret_value(SecretId=naming.secret_path(spec.name, "db/credentials"))
    creds: dict[str, Any] = json.loads(secret["SecretString"])
    return creds


def connect(creds: Mapping[str, Any], **overrides: Any) -> psycopg.Connection[Any]:
    """A TLS connection with the ``db/credentials`` secret's fields (sslmode=require unless ``overrides`` say
    better: pass ``**db_tls.libpq_tls(target)`` to verify the server); ``overrides`` replace or add psycopg
    parameters: another host and port, a timeout, autocommit."""
    params = {"host": creds["host"], "port": creds["port"], "user": creds["username"], "password": creds["password"], "dbname": creds["dbname"]}
    return psycopg.connect(**{**params, "sslmode": "require", **overrides})


def check_connection(target: Target, spec: EnvironmentSpec, timeout: float = 5) -> tuple[bool, str]:
    """(accepts TLS connections, detail). The detail never contains the password."""
    try:
        creds = credentials(target, spec)
        with connect(creds, **libpq_tls(target), connect_timeout=max(1, int(timeout))) as conn:
            row = conn.execute("SELECT current_setting('server_version'), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        if row is None:  # pg_stat_ssl always has a row for the session's own backend
            return False, "pg_stat_ssl has no row for this session"
        version, ssl = row
        return bool(ssl), f"PostgreSQL {version} at {creds['host']}:{creds['port']}, TLS {'on' if ssl else 'off'}"
    except psycopg.OperationalError as error:
        return False, " ".join(str(error).split())[:200]
    except Exception as error:  # noqa: BLE001 - status must not crash on a half-built environment
        return False, f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"


def instance_status(target: Target, instance_id: str) -> str | None:
    """RDS's status of the instance, None when it does not exist or cannot be read."""
    try:
        status: str = target.client("rds").describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["DBInstanceStatus"]
        return status
    except Exception:  # noqa: BLE001 - only a hint for the message
        return None


# States someone chose (StopDBInstance, by hand or by the off-hours schedule): `up` reports them instead of failing,
# since a LAB deployed at night is stopped by design. A stopped instance left by a failed start still shows "stopped";
# `rentaliq wake` says so if it cannot start.
DELIBERATELY_STOPPED = ("stopped", "stopping")


def wait_until_ready(target: Target, spec: EnvironmentSpec, timeout: float | None = None, progress: Callable[[str], None] | None = None) -> str:
    """Wait until the environment's database takes TLS connections; the detail of the first good connection.

    Raises DatabaseNotReady when RDS shows a state the instance cannot leave by itself, or at the deadline
    (60 s locally, 30 min on AWS), with the RDS status, the last connection error and the server's log tail.
    """
    timeout = timeout if timeout is not None else (LOCAL_TIMEOUT if target.is_local else AWS_TIMEOUT)
    instance_id = naming.db_instance_id(spec.name)
    parked = instance_status(target, instance_id)
    if parked in DELIBERATELY_STOPPED:  # an off-hours schedule or an operator stopped it: a deploy does not start it
        return f"{instance_id} is {parked}, so not waiting for it: `{command('wake', spec.name.value)}` starts it now"
    started = time.monotonic()
    deadline = started + timeout
    next_report = started + PROGRESS_EVERY
    while True:
        ok, detail = check_connection(target, spec, timeout=min(5.0, max(1.0, deadline - time.monotonic())))
        if ok:
            return detail
        status = instance_status(target, instance_id)
        now = time.monotonic()
        if status in STUCK_STATES or now >= deadline:
            why = f"is {status}" if status in STUCK_STATES else f"did not accept TLS connections within {timeout:.0f}s"
            raise DatabaseNotReady(
                f"{instance_id} {why} (RDS status: {status or 'unknown'}; last error: {detail}); "
                f"last server log lines: {server_log_tail(target, instance_id)}{_next_step(target, status, instance_id)}"
            )
        if progress is not None and now >= next_report:
            progress(f"still waiting for {instance_id} ({status or 'unknown'}, {now - started:.0f}s of {timeout:.0f}s): {detail}")
            next_report = now + PROGRESS_EVERY
        time.sleep(min(0.5 if target.is_local else 10.0, max(0.0, deadline - now)))


def server_log_tail(target: Target, instance_id: str, lines: int = LOG_LINES) -> str:
    """The server's last log lines, one string; lines that could carry a password are withheld."""
    try:
        raw = _local_log(target, instance_id) if target.is_local else _aws_log(target, instance_id)
    except Exception as error:  # noqa: BLE001 - the log is a help, never the reason to fail differently
        return f"(server log unavailable: {type(error).__name__})"
    kept = [
        ("(line withheld: may contain a password)" if "password" in line.lower() and "authentication" not in line.lower() else line.strip())
        for line in raw.splitlines()
        if line.strip()
    ][-lines:]
    return " | ".join(kept) if kept else "(server log is empty)"


def _local_log(target: Target, instance_id: str) -> str:
    """The local cloud keeps each server's log at <state dir>/postgres/<instance>/server.log."""
    with urllib.request.urlopen(f"{target.endpoint_url}{_HEALTH_PATH}", timeout=5) as response:
        state_dir = Path(json.load(response)["state_dir"])
    log = state_dir / "postgres" / instance_id / "server.log"
    if not log.exists():
        return f"(no server log: {log} does not exist)"
    return log.read_text(errors="replace")[-20_000:]


def _aws_log(target: Target, instance_id: str) -> str:
    """RDS for PostgreSQL writes error/postgresql.log.<hour>; read the end of the newest one."""
    rds = target.client("rds")
    files = rds.describe_db_log_files(DBInstanceIdentifier=instance_id).get("DescribeDBLogFiles", [])
    if not files:
        return ""
    newest = max(files, key=lambda f: f.get("LastWritten", 0))["LogFileName"]
    portion = rds.download_db_log_file_portion(DBInstanceIdentifier=instance_id, LogFileName=newest, NumberOfLines=LOG_LINES)
    return portion.get("LogFileData") or ""
