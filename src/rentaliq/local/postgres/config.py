"""The server's configuration files, rendered as text from an instance's metadata (pure functions).

``rentaliq.conf`` (included from postgresql.conf), ``pg_hba.conf`` and ``pg_ident.conf`` are rewritten
on every start and on every ``rds.force_ssl`` change, so what they say is decided here and nowhere
else: loopback only, TLS always on, scram-sha-256 over TCP, the ``rdsadmin`` superuser reachable by
peer authentication over the Unix socket only, and pg_stat_statements preloaded as on RDS.
Writing the files (ownership, atomic replace) is the engine's job.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from rentaliq.local.postgres.model import ADMIN_USER, HOST

CONF_FILE = "rentaliq.conf"
CONF_INCLUDE = f"\n# RentalIQ local cloud settings (rewritten on every start)\ninclude '{CONF_FILE}'\n"
"""Appended once to initdb's postgresql.conf, so our settings win over its defaults."""

HBA_MARKER = "# Managed by rentaliq.local.postgres"
SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


def conf_quote(value: str) -> str:
    """A postgresql.conf string literal: backslashes and single quotes escaped, then single-quoted."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def socket_dir(inst_dir: Path, port: int) -> Path | None:
    """``<inst_dir>/run``, or None when the socket path would exceed sun_path; TCP alone then serves everything."""
    run_dir = inst_dir / "run"
    if len(os.fsencode(str(run_dir / f".s.PGSQL.{port}"))) > SOCKET_PATH_MAX:
        return None
    return run_dir


def archive_command(archive_dir: Path | None) -> str:
    """Copy a finished WAL segment into the archive, atomically and never over a different file.

    With no archive (backup retention 0) segments are acknowledged and recycled, as RDS stops
    archiving then; an empty command would instead make the server keep every segment.
    """
    if archive_dir is None:
        return "/bin/true"
    final = shlex.quote(str(archive_dir)) + "/%f"
    partial = shlex.quote(str(archive_dir)) + "/.%f.partial"
    # A segment archived before a crash is offered again after it: identical is success, different is an error.
    return f"if test -f {final}; then cmp -s %p {final}; else cp %p {partial} && mv {partial} {final}; fi"


def restore_command(archive_dir: Path) -> str:
    """Fetch a WAL segment from an archive during recovery (a missing one ends archive recovery)."""
    return f"cp {shlex.quote(str(archive_dir))}/%f %p"


@dataclass(frozen=True)
class Recovery:
    """What a server replays at start: streaming from a primary and/or an archive, up to a target time."""

    primary_conninfo: str | None = None
    archive_dir: Path | None = None
    target_time: str | None = None  # ISO 8601 with offset; None replays everything available


def render_conf(
    port: int,
    run_dir: Path | None,
    *,
    archive_dir: Path | None = None,
    max_connections: int | None = None,
    recovery: Recovery | None = None,
) -> str:
    """``rentaliq.conf``: where the server listens, TLS files, password hashing, RDS defaults and replication."""
    lines = [
        "# Written by rentaliq.local.postgres from instance.json on every start; edits are lost.",
        f"listen_addresses = {conf_quote(HOST)}",
        f"port = {port}",
        f"unix_socket_directories = {conf_quote(str(run_dir) if run_dir else '')}",
        "ssl = on",
        "ssl_cert_file = 'server.crt'",
        "ssl_key_file = 'server.key'",
        "password_encryption = 'scram-sha-256'",
        "shared_preload_libraries = 'pg_stat_statements'",
        "timezone = 'UTC'",  # RDS default
        "log_timezone = 'UTC'",
        # Physical backups, point-in-time restore and replicas (archive_mode needs a restart, so it stays on).
        "wal_level = replica",
        "archive_mode = on",
        f"archive_command = {conf_quote(archive_command(archive_dir))}",
        "max_wal_senders = 10",
        "wal_keep_size = '256MB'",
        "hot_standby = on",
        "hot_standby_feedback = on",
    ]
    if max_connections is not None:
        lines.append(f"max_connections = {max_connections}")
    if recovery is not None:
        if recovery.primary_conninfo is not None:
            lines.append(f"primary_conninfo = {conf_quote(recovery.primary_conninfo)}")
        if recovery.archive_dir is not None:
            lines.append(f"restore_command = {conf_quote(restore_command(recovery.archive_dir))}")
        if recovery.target_time is not None:
            lines.append(f"recovery_target_time = {conf_quote(recovery.target_time)}")
            lines.append("recovery_target_inclusive = on")
            lines.append("recovery_target_action = 'promote'")
    return "\n".join(lines) + "\n"


def render_hba(force_ssl: bool) -> str:
    """``pg_hba.conf``: from TCP only password authentication, and only over TLS when ``force_ssl``."""
    local = [
        # Lets the server's OS user reach rdsadmin over the socket for debugging
        # (e.g. `runuser -u postgres -- psql -h <dir>/run -U rdsadmin postgres`).
        f"local   all  {ADMIN_USER}  peer  map=rentaliq_admin",
        "local   all  all       scram-sha-256",
    ]
    if force_ssl:
        tcp = [
            f"hostnossl  all  all  {HOST}/32  reject",
            f"hostssl    all  all  {HOST}/32  scram-sha-256",
        ]
    else:
        tcp = [f"host  all  all  {HOST}/32  scram-sha-256"]
    # Base backups and replicas stream as rdsadmin, always over TLS ("all" never matches replication).
    tcp.append(f"hostssl  replication  {ADMIN_USER}  {HOST}/32  scram-sha-256")
    return "\n".join([f"{HBA_MARKER} (force_ssl={force_ssl}); edits are lost.", *local, *tcp]) + "\n"


def render_ident(os_user: str) -> str:
    """``pg_ident.conf``: the map that lets the server's OS user log in as ``rdsadmin`` over the socket."""
    return f"{HBA_MARKER}\nrentaliq_admin  {os_user}  {ADMIN_USER}\n"
