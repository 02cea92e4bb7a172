"""The engine: one real PostgreSQL 15 server per local RDS DB instance, and its lifecycle.

This module owns the instance directories and the order of things (create, start, stop, reboot,
rename, recover, delete); the pieces it puts together live beside it: ``binaries`` (which
PostgreSQL), ``process`` (the OS user, files and pg_ctl), ``ca`` (the server certificates), ``config``
(the rendered configuration files), ``instances`` (the
instance directories and their metadata) and ``admin`` (the SQL run as ``rdsadmin``).

The on-disk layout of an instance is described in ``instances``.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, suppress
from dataclasses import replace
from pathlib import Path

import psycopg

from rentaliq.local.postgres import admin
from rentaliq.local.postgres.archive import ArchiveOps
from rentaliq.local.postgres.binaries import find_pg_bin
from rentaliq.local.postgres.ca import ensure_ca
from rentaliq.local.postgres.copies import PhysicalCopies
from rentaliq.local.postgres.instances import InstanceDirs
from rentaliq.local.postgres.model import (
    HOST,
    Endpoint,
    Meta,
    PostgresEngineError,
    Status,
    check_db_name,
    check_instance_id,
    check_password,
    check_port,
    check_role_name,
    is_instance_id,
)
from rentaliq.local.postgres.process import (
    ServerOS,
    choose_port,
    initdb,
    pg_ctl_start,
    pg_ctl_stop,
)
from rentaliq.local.postgres.standby import MultiAZ

logger = logging.getLogger(__name__)


class PostgresEngine(PhysicalCopies, ArchiveOps, MultiAZ):
    """One real PostgreSQL server per RDS instance, all under root_dir (e.g. <state>/postgres/<instance-id>/).

    Thread-safe within one process (moto serves requests from threads); two
    processes must not manage the same root_dir at the same time.
    """

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = Path(root_dir).absolute()
        # Resolved lazily so that a local cloud without RDS instances works
        # on machines without PostgreSQL.
        self._pg_bin: Path | None = None
        self._os = ServerOS()
        self._dirs = InstanceDirs(self.root_dir, self._os)
        self._guard = threading.Lock()
        self._port_guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}

    # ------------------------------------------------------------------ public API

    def create(
        self,
        instance_id: str,
        *,
        master_username: str,
        master_password: str,
        dbname: str | None,
        force_ssl: bool = True,
        port: int | None = None,
        max_connections: int | None = None,
    ) -> Endpoint:
        """Create and start a server; on an existing instance only make sure it runs.

        Idempotent because the local cloud replays its state after a restart.
        A half-created instance (crash mid-create) is wiped and created again.
        """
        check_instance_id(instance_id)
        check_role_name(master_username)
        check_password(instance_id, master_password)
        if dbname is not None:
            check_db_name(dbname)
        check_port(instance_id, port)
        with self._lock(instance_id):
            meta = self._dirs.read(instance_id)
            if meta is not None and meta.ready:
                logger.info("postgres instance %s already exists; ensuring it runs", instance_id)
                return self._start_locked(meta, remember=True)
            if self._dirs.path(instance_id).exists():
                logger.warning("postgres instance %s: removing leftovers of an unfinished create", instance_id)
                self._destroy_locked(instance_id)
            started = time.monotonic()
            try:
                endpoint = self._create_locked(instance_id, master_username, master_password, dbname, force_ssl, port, max_connections)
            except BaseException:
                with suppress(Exception):
                    self._destroy_locked(instance_id)
                raise
            logger.info(
                "created postgres instance %s on %s:%d in %.2fs",
                instance_id,
                endpoint.host,
                endpoint.port,
                time.monotonic() - started,
            )
            return endpoint

    def start(self, instance_id: str) -> Endpoint:
        """Start the server (no-op when running) and wait until it accepts connections."""
        with self._lock(instance_id):
            return self._start_locked(self._dirs.require(instance_id), remember=True)

    def stop(self, instance_id: str) -> None:
        """Fast shutdown (like RDS StopDBInstance); start_all() will then leave it stopped."""
        with self._lock(instance_id):
            meta = self._dirs.require(instance_id)
            self._last_tick(meta)
            self._stop_locked(instance_id)
            if meta.desired != "stopped":
                self._dirs.write(replace(meta, desired="stopped"))

    def reboot(self, instance_id: str, *, max_connections: int | None = None) -> Endpoint:
        """Stop and start, so settings that need a restart take effect (RDS RebootDBInstance).

        ``max_connections`` changes with the instance class, which RDS applies by restarting.
        """
        with self._lock(instance_id):
            meta = self._dirs.require(instance_id)
            if max_connections is not None and max_connections != meta.max_connections:
                meta = replace(meta, max_connections=max_connections)
                self._dirs.write(meta)
            self._stop_locked(instance_id)
            return self._start_locked(meta, remember=True)

    def _last_tick(self, meta: Meta) -> None:
        """Archive what was committed before a stop, so the restore window reaches the stop."""
        if meta.archive is not None and self._dirs.pid(meta.instance_id) is not None:
            try:
                self.archive_tick(meta.instance_id)
            except (PostgresEngineError, psycopg.Error) as error:
                logger.warning("postgres instance %s: last WAL archive before stopping failed: %s", meta.instance_id, error)

    def delete(self, instance_id: str) -> None:
        """Stop the server and remove everything of the instance; no-op when absent."""
        check_instance_id(instance_id)
        with self._lock(instance_id):
            if not self._dirs.path(instance_id).exists():
                return
            self._destroy_locked(instance_id)
            logger.info("deleted postgres instance %s", instance_id)
        with self._guard:
            self._locks.pop(instance_id, None)

    def set_aside(self, instance_id: str) -> Path | None:
        """Move an instance nobody owns out of the way (stopped, renamed ``.orphaned-<id>-<time>``); where it went.

        A crash between creating a server and recording its RDS instance leaves such a server; a new
        instance of the same name must get a server of its own, never adopt it, and its data is kept.
        """
        with self._lock(instance_id):
            if not self._dirs.path(instance_id).exists():
                return None
            with suppress(PostgresEngineError):
                self._stop_locked(instance_id, mode="immediate")
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
            aside = self.root_dir / f".orphaned-{instance_id}-{stamp}"
            self._dirs.path(instance_id).rename(aside)
        logger.warning("postgres instance %s had no RDS instance (a crash cut off its creation); moved to %s", instance_id, aside)
        return aside

    def rename(self, instance_id: str, new_id: str) -> Endpoint:
        """Move an instance to a new identifier (RDS ModifyDBInstance NewDBInstanceIdentifier).

        The server is stopped, its directory renamed and, if it was meant to run, started again under the
        new name on the same port, so no server is ever left running under the old identifier.
        """
        check_instance_id(new_id)
        with self._lock(instance_id), self._lock(new_id):
            meta = self._dirs.require(instance_id)
            if self._dirs.path(new_id).exists():
                raise PostgresEngineError(f"postgres instance {new_id!r} already exists under {self.root_dir}")
            self._stop_locked(instance_id)
            self._dirs.path(instance_id).rename(self._dirs.path(new_id))
            meta = replace(meta, instance_id=new_id)
            self._dirs.write(meta)
            if meta.desired == "running":
                self._start_locked(meta, remember=False)
        with self._guard:
            self._locks.pop(instance_id, None)
        logger.info("renamed postgres instance %s to %s", instance_id, new_id)
        return Endpoint(HOST, meta.port)

    def recover(self, instance_id: str, on_down: Callable[[], None], attempts: int = 3) -> bool:
        """Restart a server that should run but died (crash, kill -9); False when nothing was to do.

        Checked under the instance lock, so a stop, reboot or delete in progress is never mistaken
        for a crash. ``on_down`` runs before the restart (the caller shows the recovery). A start
        right after a kill -9 can meet the dead postmaster's children still leaving, hence retries.
        """
        with self._lock(instance_id):
            meta = self._dirs.require(instance_id)
            if meta.desired != "running" or self._dirs.pid(instance_id) is not None:
                return False
            on_down()
            for attempt in range(1, attempts + 1):
                try:
                    self._start_locked(meta, remember=False)
                    return True
                except (PostgresEngineError, OSError) as exc:  # OSError: e.g. its data directory is gone
                    if attempt == attempts:
                        raise PostgresEngineError(f"postgres instance {instance_id!r} did not come back: {exc}") from None
                    time.sleep(1)
        return False

    def set_master_password(self, instance_id: str, username: str, password: str) -> None:
        """Change a role's password (RDS ModifyDBInstance MasterUserPassword).

        The password is hashed client-side into a SCRAM verifier, so the
        plaintext never reaches the server's statement text, logs or
        pg_stat_statements, and never appears on any command line.
        """
        check_role_name(username)
        check_password(instance_id, password)
        with self._lock(instance_id):
            meta = self._dirs.require_running(instance_id)
            with self._admin_connection(meta) as conn:
                admin.set_password(conn, instance_id, username, password)
        logger.info("postgres instance %s: password of role %s changed", instance_id, username)

    def set_force_ssl(self, instance_id: str, force_ssl: bool) -> None:
        """Rewrite pg_hba (the rds.force_ssl parameter) and wait until new connections obey it."""
        with self._lock(instance_id):
            meta = replace(self._dirs.require(instance_id), force_ssl=force_ssl)
            self._dirs.write(meta)
            self._dirs.write_hba(meta)
            if self._dirs.pid(instance_id) is not None:
                self._reload(meta)
        logger.info("postgres instance %s: force_ssl=%s", instance_id, force_ssl)

    def endpoint(self, instance_id: str) -> Endpoint | None:
        """The endpoint of an existing instance, running or not (it never changes)."""
        meta = self._dirs.read(instance_id) if is_instance_id(instance_id) else None
        if meta is None or not meta.ready:
            return None
        return Endpoint(HOST, meta.port)

    def status(self, instance_id: str) -> Status:
        """Cheap (no subprocess): reads postmaster.pid and probes the pid."""
        if self.endpoint(instance_id) is None:
            return "absent"
        return "running" if self._dirs.pid(instance_id) is not None else "stopped"

    def instances(self) -> list[str]:
        """Completely created instances, sorted."""
        if not self.root_dir.is_dir():
            return []
        return sorted(p.name for p in self.root_dir.iterdir() if self.endpoint(p.name) is not None)

    def tls_cert_path(self, instance_id: str) -> Path:
        """The server's certificate followed by the local CA, usable as sslrootcert with sslmode=verify-full."""
        self._dirs.require(instance_id)
        return self._dirs.path(instance_id) / "server.crt"

    @property
    def ca_bundle_path(self) -> Path:
        """The local CA that signs every server certificate here (the RDS CA bundle's part); created on first use."""
        return ensure_ca(self.root_dir).path

    def start_all(self) -> dict[str, Endpoint]:
        """Start every instance not stopped via stop(), in parallel (local cloud start-up).

        Instances stopped on purpose stay stopped, as on RDS; errors are
        collected so one broken instance does not keep the others down.
        """
        self.repair_failovers()
        wanted = [i for i in self.instances() if self._dirs.desired(i) == "running"]
        results = self._for_each(wanted, self.start)
        return {i: ep for i, ep in results.items() if isinstance(ep, Endpoint)}

    def stop_all(self) -> None:
        """Stop every running server (local cloud shutdown) without marking them as stopped."""

        def stop_keep_desired(instance_id: str) -> None:
            with self._lock(instance_id):
                self._stop_locked(instance_id)

        self._for_each([i for i in self.instances() if self.status(i) == "running"], stop_keep_desired)

    # ------------------------------------------------------------------ create

    def _create_locked(
        self,
        instance_id: str,
        master_username: str,
        master_password: str,
        dbname: str | None,
        force_ssl: bool,
        port: int | None,
        max_connections: int | None,
    ) -> Endpoint:
        pg_bin = self._bin()
        user = self._os.user
        self._os.ensure_root_dir(self.root_dir, instance_id)
        inst = self._dirs.path(instance_id)
        inst.mkdir(mode=0o700)
        if user.switch:
            os.chmod(inst, 0o755)  # postgres must reach data/, run/ and server.log

        with self._port_guard:  # claim the port in instance.json before another create can pick it
            meta = Meta(
                instance_id=instance_id,
                port=choose_port(instance_id, port, self._dirs.claimed_ports(instance_id)),
                force_ssl=force_ssl,
                master_username=master_username,
                dbname=dbname,
                created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                max_connections=max_connections,
            )
            self._dirs.write(meta)

        data = inst / "data"
        data.mkdir(mode=0o700)
        self._os.chown(data)
        self._os.write(inst / "server.log", b"", 0o600, server_owned=True)
        admin_password = secrets.token_urlsafe(32)
        self._os.write(inst / admin.ADMIN_SECRET_FILE, admin_password.encode(), 0o600, server_owned=False)
        initdb(self._os, pg_bin, instance_id, inst, admin_password)

        self._dirs.install_certificate(instance_id)
        self._dirs.include_config(instance_id)

        self._start_locked(meta, remember=False)
        try:
            with self._admin_connection(meta, dbname="template1") as conn:
                admin.preload_extensions(conn)
            with self._admin_connection(meta) as conn:
                admin.bootstrap(conn, master_username, master_password, dbname)
        except psycopg.Error as exc:
            raise PostgresEngineError(f"postgres instance {instance_id!r}: cannot create master user/database: {admin.pg_error(exc)}") from None
        self._dirs.write(replace(meta, ready=True))
        return Endpoint(HOST, meta.port)

    # ------------------------------------------------------------------ start / stop

    def _start_locked(self, meta: Meta, *, remember: bool) -> Endpoint:
        instance_id = meta.instance_id
        if remember and meta.desired != "running":
            meta = replace(meta, desired="running")
            self._dirs.write(meta)
        endpoint = Endpoint(HOST, meta.port)
        if not self._dirs.certificate_is_current(instance_id):  # an older state dir's self-signed one, or a renamed server's
            self._stop_locked(instance_id)
            self._dirs.install_certificate(instance_id)
            logger.info("postgres instance %s: new server certificate from the local CA", instance_id)
        if self._dirs.pid(instance_id) is not None:
            return endpoint
        inst = self._dirs.path(instance_id)
        self._os.check_traversable(inst, instance_id)
        # Re-derived on every start, so a moved root_dir or edited metadata still yields a working server.
        self._dirs.write_config(meta)
        log = inst / "server.log"
        if not log.exists():
            self._os.write(log, b"", 0o600, server_owned=True)
        started = time.monotonic()
        pg_ctl_start(self._os, self._bin(), instance_id, inst, meta.port)
        logger.info(
            "started postgres instance %s on %s:%d in %.2fs",
            instance_id,
            HOST,
            meta.port,
            time.monotonic() - started,
        )
        return endpoint

    def _stop_locked(self, instance_id: str, mode: str = "fast") -> None:
        if self._dirs.pid(instance_id) is None:
            return
        pg_ctl_stop(self._os, self._bin(), instance_id, self._dirs.path(instance_id), mode)
        logger.info("stopped postgres instance %s", instance_id)

    def _destroy_locked(self, instance_id: str) -> None:
        try:
            self._stop_locked(instance_id)
        except PostgresEngineError:
            self._stop_locked(instance_id, mode="immediate")
        shutil.rmtree(self._dirs.path(instance_id))

    def _reload(self, meta: Meta) -> None:
        admin.reload(self._dirs.path(meta.instance_id), meta.instance_id, meta.port)

    def _admin_connection(self, meta: Meta, dbname: str = "postgres") -> AbstractContextManager[psycopg.Connection]:
        return admin.admin_connection(self._dirs.path(meta.instance_id), meta.instance_id, meta.port, dbname)

    # ------------------------------------------------------------------ state

    def _bin(self) -> Path:
        if self._pg_bin is None:
            self._pg_bin = find_pg_bin()
        return self._pg_bin

    def _lock(self, instance_id: str) -> threading.RLock:
        check_instance_id(instance_id)
        with self._guard:
            return self._locks.setdefault(instance_id, threading.RLock())

    def _for_each(self, instance_ids: list[str], action: Callable[[str], object]) -> dict[str, object]:
        if not instance_ids:
            return {}
        results: dict[str, object] = {}
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=min(8, len(instance_ids))) as pool:
            futures = {i: pool.submit(action, i) for i in instance_ids}
            for instance_id, future in futures.items():
                try:
                    results[instance_id] = future.result()
                except Exception as exc:  # noqa: BLE001 - reported together below
                    errors.append(str(exc))
        if errors:
            raise PostgresEngineError(f"{len(errors)} of {len(instance_ids)} instance(s) failed: " + "; ".join(errors))
        return results
