"""Physical copies of a server's data: snapshots, instances restored from them, and streaming replicas.

A snapshot is what RDS promises: a crash-consistent copy of the whole data directory (``pg_basebackup``
of a running server with the WAL it needs, or a plain copy of a stopped one), so a restore brings back
every database, role and password exactly as they were. Every instance made from a copy gets its own
port, certificate and configuration; what it replays at start (nothing, an archive up to a time, or a
primary's stream) is written in its ``instance.json`` and rendered by ``config``.

Layout of a snapshot directory (the caller, the RDS layer, chooses where it lives)::

    <snapshot>/data/           the copied PGDATA (present only once complete)
    <snapshot>/admin.secret    the copied server's rdsadmin password (it is inside the data too)
    <snapshot>/snapshot.json   what the copy is of: master user, database, size; written last
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from rentaliq.local.postgres.model import (
    ADMIN_SECRET_FILE,
    HOST,
    Endpoint,
    Meta,
    PostgresEngineError,
    check_instance_id,
)
from rentaliq.local.postgres.process import choose_port, copy_tree, log_tail, pg_basebackup

logger = logging.getLogger(__name__)

SNAPSHOT_FILE = "snapshot.json"
PG_DEFAULT_MAX_CONNECTIONS = 100
_SIGNALS = ("postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal", "backup_label.old")
_PROMOTE_TIMEOUT_S = 3600  # a long replay is slow, not stuck; the server's death is noticed at once


@dataclass(frozen=True)
class CopyInfo:
    """What ``snapshot.json`` records about a copy."""

    source_instance: str
    master_username: str
    dbname: str | None
    size_bytes: int
    taken_at: str


def read_copy_info(directory: Path) -> CopyInfo | None:
    """The copy's record, or None when the copy is incomplete (its record is written last)."""
    try:
        raw = json.loads((directory / SNAPSHOT_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return CopyInfo(**{k: v for k, v in raw.items() if k in CopyInfo.__dataclass_fields__})


def tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


class PhysicalCopies:
    """Mixed into ``PostgresEngine``: uses its lock, directories, OS user and start/stop."""

    # ------------------------------------------------------------------ snapshots

    def snapshot(self, instance_id: str, dest: Path) -> CopyInfo:
        """Copy the instance's data into ``dest`` (a new directory); running or stopped, as RDS allows."""
        with self._lock(instance_id):
            meta = self._dirs.require(instance_id)
            self._new_private_dir(dest, instance_id)
            partial = dest / "data.partial"
            self._new_private_dir(partial, instance_id)
            inst = self._dirs.path(instance_id)
            started = time.monotonic()
            if self._dirs.pid(instance_id) is not None:
                pg_basebackup(self._os, self._bin(), instance_id, inst, meta.port, partial)
            else:
                copy_tree(self._os, instance_id, inst / "data", partial, inst / "server.log")
            partial.rename(dest / "data")
            shutil.copy2(inst / ADMIN_SECRET_FILE, dest / ADMIN_SECRET_FILE)
            info = CopyInfo(
                source_instance=instance_id,
                master_username=meta.master_username,
                dbname=meta.dbname,
                size_bytes=tree_size(dest / "data"),
                taken_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds"),
            )
            self._os.write(dest / SNAPSHOT_FILE, json.dumps(info.__dict__, indent=2) + "\n", 0o644, server_owned=False)
        logger.info("postgres instance %s: copied %d bytes to %s in %.2fs", instance_id, info.size_bytes, dest, time.monotonic() - started)
        return info

    def copy_snapshot(self, source: Path, dest: Path) -> None:
        """CopyDBSnapshot: an independent copy, so deleting either leaves the other whole."""
        info = read_copy_info(source)
        if info is None:
            raise PostgresEngineError(f"snapshot directory {source} is incomplete")
        self._new_private_dir(dest, info.source_instance)
        self._new_private_dir(dest / "data", info.source_instance)
        copy_tree(self._os, info.source_instance, source / "data", dest / "data", dest / "copy.log")
        shutil.copy2(source / ADMIN_SECRET_FILE, dest / ADMIN_SECRET_FILE)
        shutil.copy2(source / SNAPSHOT_FILE, dest / SNAPSHOT_FILE)

    def restore_snapshot(self, instance_id: str, source: Path, *, force_ssl: bool, max_connections: int | None = None, archive: Path | None = None) -> Endpoint:
        """A new instance whose data is exactly the copy's (RestoreDBInstanceFromDBSnapshot)."""
        info = read_copy_info(source)
        if info is None:
            raise PostgresEngineError(f"snapshot directory {source} is incomplete")
        return self._instance_from_copy(
            instance_id,
            info,
            fill=lambda inst: self._fill_from(source, inst),
            force_ssl=force_ssl,
            max_connections=max_connections,
            archive=archive,
        )

    # ------------------------------------------------------------------ replicas

    def create_replica(self, instance_id: str, primary_id: str, *, force_ssl: bool, max_connections: int | None = None) -> Endpoint:
        """A hot standby streaming from the primary, read-only, on its own port."""
        with self._lock(primary_id):
            primary = self._dirs.require_running(primary_id)
        primary_inst = self._dirs.path(primary_id)
        # A hot standby refuses to run with fewer connection slots than its primary (PostgreSQL's rule).
        max_connections = max(max_connections or PG_DEFAULT_MAX_CONNECTIONS, primary.max_connections or PG_DEFAULT_MAX_CONNECTIONS)
        info = CopyInfo(primary_id, primary.master_username, primary.dbname, 0, "")

        def fill(inst: Path) -> None:
            pg_basebackup(self._os, self._bin(), primary_id, primary_inst, primary.port, inst / "data")
            shutil.copy2(primary_inst / ADMIN_SECRET_FILE, inst / ADMIN_SECRET_FILE)
            self._os.write(inst / "data" / "standby.signal", b"", 0o600, server_owned=True)

        return self._instance_from_copy(
            instance_id,
            info,
            fill=fill,
            force_ssl=force_ssl,
            max_connections=max_connections,
            primary_port=primary.port,
            recovery_archive=Path(primary.archive) if primary.archive else None,
        )

    def promote(self, instance_id: str) -> None:
        """End a replica's recovery: it becomes an independent, writable primary (PromoteReadReplica)."""
        with self._lock(instance_id):
            meta = self._dirs.require_running(instance_id)
            with self._admin_connection(meta) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                    conn.execute("SELECT pg_promote(true, 60)")
            self._wait_promoted(meta)
            meta = replace(meta, primary_port=None, recovery_archive=None, recovery_target_time=None)
            self._dirs.write(meta)
            self._dirs.write_config(meta)
            self._reload(meta)
        logger.info("postgres instance %s promoted", instance_id)

    def replica_lag_seconds(self, instance_id: str) -> float | None:
        """Seconds the replica's replay is behind (0 when it has replayed all it received); None on a primary."""
        meta = self._dirs.require_running(instance_id)
        with self._admin_connection(meta) as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                " ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) END"
            ).fetchone()
        if row is None or not row[0]:
            return None
        return max(0.0, float(row[1] or 0.0))

    # ------------------------------------------------------------------ shared

    def _instance_from_copy(
        self,
        instance_id: str,
        info: CopyInfo,
        *,
        fill: Callable[[Path], None],
        force_ssl: bool,
        max_connections: int | None,
        archive: Path | None = None,
        primary_port: int | None = None,
        recovery_archive: Path | None = None,
        target_time: str | None = None,
    ) -> Endpoint:
        """Create ``instance_id`` from data ``fill`` puts in its directory, start it, wait out its recovery.

        Nothing half-created survives a failure: the directory goes, as after a failed create.
        """
        check_instance_id(instance_id)
        with self._lock(instance_id):
            if self._dirs.path(instance_id).exists():
                meta = self._dirs.read(instance_id)
                if meta is not None and meta.ready:
                    raise PostgresEngineError(f"postgres instance {instance_id!r} already exists under {self.root_dir}")
                self._destroy_locked(instance_id)
            started = time.monotonic()
            try:
                meta = self._copy_locked(instance_id, info, fill, force_ssl, max_connections, archive, primary_port, recovery_archive, target_time)
            except BaseException:
                with suppress(Exception):
                    self._destroy_locked(instance_id)
                raise
        logger.info("postgres instance %s made from a copy of %s in %.2fs", instance_id, info.source_instance, time.monotonic() - started)
        return Endpoint(HOST, meta.port)

    def _copy_locked(self, instance_id, info, fill, force_ssl, max_connections, archive, primary_port, recovery_archive, target_time) -> Meta:
        self._os.ensure_root_dir(self.root_dir, instance_id)
        inst = self._dirs.path(instance_id)
        inst.mkdir(mode=0o700)
        if self._os.user.switch:
            os.chmod(inst, 0o755)
        with self._port_guard:
            meta = Meta(
                instance_id=instance_id,
                port=choose_port(instance_id, None, self._dirs.claimed_ports(instance_id)),
                force_ssl=force_ssl,
                master_username=info.master_username,
                dbname=info.dbname,
                created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                archive=str(archive) if archive else None,
                max_connections=max_connections,
                primary_port=primary_port,
                recovery_archive=str(recovery_archive) if recovery_archive else None,
                recovery_target_time=target_time,
            )
            self._dirs.write(meta)
        self._os.write(inst / "server.log", b"", 0o600, server_owned=True)
        self._new_private_dir(inst / "data", instance_id)
        fill(inst)
        data = inst / "data"
        for leftover in _SIGNALS:
            if leftover == "standby.signal" and primary_port is not None:
                continue
            (data / leftover).unlink(missing_ok=True)
        if recovery_archive is not None and primary_port is None:
            self._os.write(data / "recovery.signal", b"", 0o600, server_owned=True)
        if archive is not None:
            self._new_private_dir(archive, instance_id, exist_ok=True)
        self._dirs.install_certificate(instance_id)
        self._start_locked(meta, remember=False)
        if primary_port is None:
            self._wait_promoted(meta)
            if meta.recovery_archive is not None:  # replay done: later restarts must not replay again
                meta = replace(meta, recovery_archive=None, recovery_target_time=None)
                self._dirs.write(meta)
                self._dirs.write_config(meta)
                self._reload(meta)
        meta = replace(meta, ready=True)
        self._dirs.write(meta)
        return meta

    def _fill_from(self, source: Path, inst: Path) -> None:
        copy_tree(self._os, inst.name, source / "data", inst / "data", inst / "server.log")
        shutil.copy2(source / ADMIN_SECRET_FILE, inst / ADMIN_SECRET_FILE)
        os.chmod(inst / ADMIN_SECRET_FILE, 0o600)

    def _wait_promoted(self, meta: Meta) -> None:
        """Until the server left recovery; fails at once, with its log, when the server died replaying."""
        deadline = time.monotonic() + _PROMOTE_TIMEOUT_S
        inst = self._dirs.path(meta.instance_id)
        while True:
            if self._dirs.pid(meta.instance_id) is None:
                tail = log_tail(inst / "server.log")
                raise PostgresEngineError(f"postgres instance {meta.instance_id!r}: server stopped during recovery; server log tail: {tail}")
            try:
                with self._admin_connection(meta) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row == (False,):
                    return
            except (PostgresEngineError, psycopg.Error):
                pass  # starting up or shutting down: look again
            if time.monotonic() > deadline:
                raise PostgresEngineError(f"postgres instance {meta.instance_id!r}: still recovering after {_PROMOTE_TIMEOUT_S}s")
            time.sleep(0.05)

    def _new_private_dir(self, path: Path, instance_id: str, *, exist_ok: bool = False) -> None:
        """A directory the server user owns, under parents it can traverse (created 0755 when missing)."""
        self._os.ensure_root_dir(path.parent, instance_id)
        if path.exists() and not exist_ok:
            shutil.rmtree(path)  # leftovers of an interrupted copy
        path.mkdir(mode=0o700, exist_ok=exist_ok)
        self._os.chown(path)
