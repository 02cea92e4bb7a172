"""The peer of every recovery figure: the raw PostgreSQL tools, run by hand on the same server and data.

What an operator without the local cloud would type: ``pg_basebackup`` into a directory, ``cp -a`` of
that backup, ``pg_ctl start``, and for point-in-time recovery a ``recovery.signal`` plus
``restore_command``/``recovery_target_time``. The tools run as the server's OS user (``postgres`` when
we are root), with the same ``pg_basebackup`` flags the engine uses, so a ratio measures what the RDS
layer adds, not a different way of copying.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import psycopg

from rentaliq.local.postgres import find_pg_bin
from rentaliq.local.postgres.model import ADMIN_USER, HOST, PASSFILE
from rentaliq.local.postgres.process import resolve_server_user, server_locale

USER = resolve_server_user()


def run_as_server(argv: list[str], *, extra_env: dict[str, str] | None = None, timeout: float = 3600) -> None:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": USER.home, "USER": USER.name, "LC_ALL": server_locale(), "TZ": "UTC", **(extra_env or {})}
    ids = {"user": USER.uid, "group": USER.gid, "extra_groups": list(USER.groups)} if USER.switch else {}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, **ids)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}")


def server_dir(path: Path) -> Path:
    """A new directory the server user owns (0700, as PGDATA must be)."""
    path.mkdir(mode=0o700)
    if USER.switch:
        os.chown(path, USER.uid, USER.gid)
    return path


def base_backup(instance_dir: Path, port: int, dest: Path) -> None:
    """``pg_basebackup`` of the running instance into ``dest`` (new), as the engine's snapshot does it."""
    run_as_server(
        [
            str(find_pg_bin() / "pg_basebackup"),
            "-d",
            f"host={HOST} port={port} user={ADMIN_USER} sslmode=require application_name=hand-backup",
            "-D",
            str(dest),
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
            "--no-manifest",
        ],
        extra_env={"PGPASSFILE": str(instance_dir / PASSFILE)},
    )


def copy(source: Path, dest: Path) -> None:
    """``cp -a`` of a backup into a new data directory."""
    server_dir(dest)
    run_as_server(["cp", "-a", "--reflink=auto", f"{source}/.", f"{dest}/"])


def prepare_pitr(data: Path, archive: Path, target_time: str) -> None:
    """recovery.signal and the three recovery settings, appended to postgresql.auto.conf."""
    settings = (
        f"\nrestore_command = 'cp {shlex.quote(str(archive))}/%f %p'\n"
        f"recovery_target_time = '{target_time}'\n"
        "recovery_target_inclusive = on\n"
        "recovery_target_action = 'promote'\n"
    )
    with open(data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
        conf.write(settings)
    (data / "recovery.signal").touch(mode=0o600)
    if USER.switch:
        os.chown(data / "recovery.signal", USER.uid, USER.gid)


def start(data: Path, port: int, log: Path) -> None:
    """``pg_ctl start`` on another port, archiving off (the copy must not write into the source's archive)."""
    options = f"-p {port} -c unix_socket_directories='' -c archive_command=/bin/true"
    run_as_server([str(find_pg_bin() / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-t", "3600", "-w", "start"])


def stop(data: Path) -> None:
    if (data / "postmaster.pid").exists():
        run_as_server([str(find_pg_bin() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], timeout=60)


def wait_writable(port: int, user: str, password: str, dbname: str, timeout: float = 3600) -> None:
    """Until a TLS connection succeeds and the server is out of recovery (accepts writes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(host=HOST, port=port, user=user, password=password, dbname=dbname, sslmode="require", connect_timeout=2) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                    return
        except psycopg.Error:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} not writable within {timeout}s")
        time.sleep(0.02)
