"""Multi-AZ: a hidden streaming standby per instance, and a failover that promotes it behind the same endpoint.

RDS Multi-AZ keeps a synchronous standby in another zone; ``reboot-db-instance --force-failover`` (or a
host failure) promotes it and moves the endpoint's DNS name to it. Locally the standby is an engine
instance named ``<id>--standby`` (RDS identifiers never contain two hyphens in a row, so it cannot
clash with a real instance), streaming from the primary on its own port. A failover:

1. stops the primary cleanly, so its last WAL (up to the shutdown checkpoint) reaches the standby;
2. waits until the standby has replayed that checkpoint: every committed transaction is on it;
3. promotes the standby and swaps the two directories, so the promoted server restarts on the
   instance's port: the endpoint never changes, as the DNS name never changes on RDS;
4. rebuilds the old primary as the new standby, from a fresh base backup.

The endpoint is closed from step 1 to the restart in step 3, about a second; clients retry.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace

import psycopg

from rentaliq.local.postgres.copies import PG_DEFAULT_MAX_CONNECTIONS
from rentaliq.local.postgres.model import HOST, Endpoint, Meta, PostgresEngineError, read_meta
from rentaliq.local.postgres.process import one_line

logger = logging.getLogger(__name__)

_CATCH_UP_TIMEOUT_S = 60


def standby_id(instance_id: str) -> str:
    return f"{instance_id}--standby"


def _promoted(standby: Meta, instance_id: str, primary: Meta) -> Meta:
    """The standby's metadata once it has taken the place of ``instance_id`` (the primary): its identity, port and
    archive, following no one and meant to run (written by the failover, and again by the recovery of one a crash
    cut off)."""
    return replace(
        standby,
        instance_id=instance_id,
        port=primary.port,
        archive=primary.archive,
        primary_port=None,
        recovery_archive=None,
        recovery_target_time=None,
        desired="running",
    )


class MultiAZ:
    """Mixed into ``PostgresEngine``."""

    def add_standby(self, instance_id: str) -> Endpoint:
        meta = self._dirs.require_running(instance_id)
        return self.create_replica(standby_id(instance_id), instance_id, force_ssl=meta.force_ssl, max_connections=meta.max_connections)

    def max_connections(self, instance_id: str) -> int:
        """The connection slots the server is configured with (PostgreSQL's default when none was set)."""
        return self._dirs.require(instance_id).max_connections or PG_DEFAULT_MAX_CONNECTIONS

    def has_standby(self, instance_id: str) -> bool:
        return self.endpoint(standby_id(instance_id)) is not None

    def ensure_standby(self, instance_id: str) -> bool:
        """A Multi-AZ instance's standby exists and runs; rebuilt when missing or beyond a restart. True if repaired.

        RDS replaces a failed standby by itself; so does the backup schedule's pass, through this.
        """
        spare = standby_id(instance_id)
        with self._lock(instance_id), self._lock(spare):
            if self._dirs.pid(instance_id) is None:
                return False  # the primary is down: the supervisor's business first
            if self.endpoint(spare) is not None and self._dirs.pid(spare) is not None:
                return False
            if self.endpoint(spare) is not None:
                try:
                    self._start_locked(self._dirs.require(spare), remember=True)
                    return True
                except PostgresEngineError as error:
                    logger.warning("standby of %s did not start (%s); rebuilding it", instance_id, error)
            if self._dirs.path(spare).exists():
                self._destroy_locked(spare)
            self.add_standby(instance_id)
            return True

    def remove_standby(self, instance_id: str) -> None:
        self.delete(standby_id(instance_id))

    def failover(self, instance_id: str) -> Endpoint:
        """Promote the standby behind the instance's endpoint; committed data survives (see the module)."""
        spare = standby_id(instance_id)
        with self._lock(instance_id), self._lock(spare):
            primary = self._dirs.require_running(instance_id)
            standby = self._dirs.require_running(spare)
            started = time.monotonic()
            self._last_tick(primary)  # the old timeline's WAL into the archive first
            self._stop_locked(instance_id)
            self._wait_replayed(standby, self._checkpoint_lsn(instance_id))
            if primary.archive is not None:
                # Archive from the moment of promotion: the timeline history file and the first segments of the
                # new timeline are what a later point-in-time restore replays across the failover.
                standby = replace(standby, archive=primary.archive)
                self._dirs.write(standby)
                self._dirs.write_config(standby)
                self._reload(standby)
            try:
                self._promote_standby(standby)
            except (PostgresEngineError, psycopg.Error) as error:
                # Not promoted: the old primary comes back as it was (it stopped cleanly), and the call fails.
                self._start_locked(primary, remember=False)
                raise PostgresEngineError(f"postgres instance {instance_id!r}: failover aborted, primary restarted: {error}") from None
            self._stop_locked(spare)
            self._swap(instance_id, spare)
            promoted = _promoted(standby, instance_id, primary)
            self._dirs.write(promoted)
            self._start_locked(promoted, remember=False)
            downtime = time.monotonic() - started
            self._destroy_locked(spare)
        self.create_replica(spare, instance_id, force_ssl=primary.force_ssl, max_connections=primary.max_connections)
        logger.info("postgres instance %s failed over to its standby (endpoint closed %.2fs)", instance_id, downtime)
        return Endpoint(HOST, promoted.port)

    def _promote_standby(self, standby: Meta) -> None:
        """pg_promote, then wait until it left recovery; a connection lost meanwhile is not a failure by itself."""
        try:
            with self._admin_connection(standby) as conn:
                conn.execute("SELECT pg_promote(true, 60)")
        except psycopg.OperationalError as error:
            logger.warning("postgres instance %s: connection lost during pg_promote (%s); checking the promotion", standby.instance_id, error)
        self._wait_promoted(standby)

    def _checkpoint_lsn(self, instance_id: str) -> str:
        """The stopped server's last checkpoint (its shutdown checkpoint), from pg_controldata."""
        inst = self._dirs.path(instance_id)
        result = self._os.run(
            instance_id, "pg_controldata", [str(self._bin() / "pg_controldata"), "-D", str(inst / "data")], log=inst / "server.log", timeout=30
        )
        for line in result.stdout.splitlines():
            if line.startswith("Latest checkpoint location:"):
                return line.split(":", 1)[1].strip()
        raise PostgresEngineError(f"postgres instance {instance_id!r}: no checkpoint location in pg_controldata output: {one_line(result.stdout)[:200]}")

    def _wait_replayed(self, standby: Meta, lsn: str) -> None:
        deadline = time.monotonic() + _CATCH_UP_TIMEOUT_S
        while True:
            try:
                with self._admin_connection(standby) as conn:
                    row = conn.execute("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s::pg_lsn) > 0", (lsn,)).fetchone()
                if row == (True,):
                    return
            except (PostgresEngineError, psycopg.Error):
                pass
            if time.monotonic() > deadline:
                raise PostgresEngineError(f"postgres instance {standby.instance_id!r}: WAL up to {lsn} not replayed within {_CATCH_UP_TIMEOUT_S}s")
            time.sleep(0.02)

    def repair_failovers(self) -> None:
        """Finish or undo a failover a crash cut off mid-swap (at start-up, before any server starts).

        Before the promoted standby took the instance's directory, the old primary goes back (it stopped
        cleanly, and the endpoint took no write since). After, the promotion is completed: the promoted
        server gets the instance's identity, port and archive. Either way the standby is rebuilt later
        (``ensure_standby``).
        """
        for parked in sorted(self.root_dir.glob(".failover-*")) if self.root_dir.is_dir() else []:
            instance_id = parked.name.removeprefix(".failover-")
            old = read_meta(parked, instance_id)
            spare = self._dirs.path(standby_id(instance_id))
            if not self._dirs.path(instance_id).exists():
                parked.rename(self._dirs.path(instance_id))
                if spare.exists():
                    shutil.rmtree(spare)
                logger.warning("postgres instance %s: a failover cut off before the swap was undone", instance_id)
                continue
            promoted = self._dirs.read(instance_id)
            if old is not None and promoted is not None and promoted.instance_id != instance_id:
                self._dirs.write(_promoted(promoted, instance_id, old))
            shutil.rmtree(parked)
            if spare.exists() and (meta := self._dirs.read(standby_id(instance_id))) is not None and meta.instance_id != standby_id(instance_id):
                shutil.rmtree(spare)
            logger.warning("postgres instance %s: a failover cut off during the swap was completed", instance_id)

    def _swap(self, instance_id: str, spare: str) -> None:
        primary_dir, standby_dir = self._dirs.path(instance_id), self._dirs.path(spare)
        parked = self.root_dir / f".failover-{instance_id}"
        primary_dir.rename(parked)
        standby_dir.rename(primary_dir)
        parked.rename(standby_dir)
