"""Automated backups of one instance: continuous WAL archiving, base backups, and point-in-time restore.

RDS keeps, while ``BackupRetentionPeriod`` > 0, daily snapshots plus the transaction logs in between, and
restores to any second of the window. Here that is PostgreSQL's own machinery: ``archive_command``
copies each finished WAL segment into the archive, base backups are ``pg_basebackup`` copies, and a
restore replays the archive from the newest base backup before the target up to ``recovery_target_time``.

A segment is archived only once it is finished, so :meth:`ArchiveOps.archive_tick` finishes it on a
schedule: when anything was written since the last tick it commits a tiny marker transaction and
switches to a new segment, then waits for the archiver. Everything committed before the tick is then in
the archive: that is the instance's ``LatestRestorableTime``. The marker matters for the restore: a
replay stops at the first commit *after* the target time, and the marker guarantees there is one for
every target before the last tick. For a target after the last marker nothing changed since it, so the
whole archive is replayed. An idle instance writes nothing, so it costs no disk.

Layout of an archive (the RDS layer chooses where it lives, one per instance)::

    <archive>/wal/                 archived segments, written by the server user
    <archive>/base/<stamp>/        base backups, each laid out as a snapshot (see ``copies``)
    <archive>/state.json           latest restorable time, last marker, and the tick's bookkeeping
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rentaliq.local.postgres.copies import CopyInfo, read_copy_info
from rentaliq.local.postgres.model import Endpoint, PostgresEngineError

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
_ARCHIVED_TIMEOUT_S = 30


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).astimezone(datetime.UTC)


@dataclass(frozen=True)
class ArchiveState:
    latest_restorable: str | None = None  # everything committed before this is archived
    last_marker: str | None = None  # time of the newest marker tick (a commit after it exists in the archive)
    next_xid: int | None = None  # first unassigned transaction id right after the last marker
    quiet: bool = False  # no transaction was in progress at the last marker, so an unchanged next_xid means idle


@dataclass(frozen=True)
class BaseBackup:
    path: Path
    info: CopyInfo

    @property
    def taken_at(self) -> datetime.datetime:
        return utc(self.info.taken_at)


def read_state(archive: Path) -> ArchiveState:
    try:
        raw = json.loads((archive / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return ArchiveState()
    return ArchiveState(**{k: v for k, v in raw.items() if k in ArchiveState.__dataclass_fields__})


def base_backups(archive: Path) -> list[BaseBackup]:
    """Complete base backups, oldest first."""
    base = archive / "base"
    if not base.is_dir():
        return []
    found = [BaseBackup(p, info) for p in base.iterdir() if (info := read_copy_info(p)) is not None]
    return sorted(found, key=lambda b: b.taken_at)


def restore_window(archive: Path) -> tuple[datetime.datetime, datetime.datetime] | None:
    """(earliest, latest) restorable times, or None before the first base backup and tick."""
    backups = base_backups(archive)
    state = read_state(archive)
    if not backups or state.latest_restorable is None:
        return None
    return backups[0].taken_at, max(backups[0].taken_at, utc(state.latest_restorable))


class ArchiveOps:
    """Mixed into ``PostgresEngine`` beside ``PhysicalCopies``."""

    def enable_archiving(self, instance_id: str, archive: Path) -> None:
        """Start archiving WAL into ``archive`` (takes effect at once: archive_command is reloadable)."""
        with self._lock(instance_id):
            meta = self._dirs.require(instance_id)
            self._new_private_dir(archive / "wal", instance_id, exist_ok=True)
            meta = replace(meta, archive=str(archive / "wal"))
            self._dirs.write(meta)
            self._dirs.write_config(meta)
            if self._dirs.pid(instance_id) is not None:
                self._reload(meta)

    def disable_archiving(self, instance_id: str) -> None:
        """Stop archiving (retention 0): finished segments are recycled instead."""
        with self._lock(instance_id):
            meta = replace(self._dirs.require(instance_id), archive=None)
            self._dirs.write(meta)
            self._dirs.write_config(meta)
            if self._dirs.pid(instance_id) is not None:
                self._reload(meta)

    def base_backup(self, instance_id: str, archive: Path) -> BaseBackup:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        dest = archive / "base" / stamp
        info = self.snapshot(instance_id, dest)
        return BaseBackup(dest, info)

    def archive_tick(self, instance_id: str, *, when_idle: bool = False, force: bool = False) -> datetime.datetime | None:
        """Make everything committed so far restorable; the new latest restorable time, None when not archiving.

        The instance lock is held for the SQL only, not while the archiver copies: a slow or failing
        archive must not hold up a stop, a snapshot or a delete of the instance. ``when_idle`` (the
        schedule's passes) skips an instance whose lock is taken, by a snapshot say, rather than wait.
        ``force`` writes the marker even when nothing happened (a point-in-time restore needs a commit after
        its target in the archive).
        """
        lock = self._lock(instance_id)
        if not lock.acquire(blocking=not when_idle):
            return None
        try:
            meta = self._dirs.require(instance_id)
            if meta.archive is None or self._dirs.pid(instance_id) is None:
                return None
            archive = Path(meta.archive).parent
            state = read_state(archive)
            with self._admin_connection(meta) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                    return None
                now, xmax = conn.execute("SELECT clock_timestamp(), pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()
                if state.quiet and state.next_xid == xmax and not force:
                    switched = None
                    state = replace(state, latest_restorable=now.isoformat())
                else:
                    conn.execute("SELECT txid_current()")  # the marker: a commit record after `now`
                    # Read before the switch: a transaction that commits after this snapshot either was running
                    # (not quiet) or takes a new xid (xmax moves), so an idle tick never claims an unarchived commit.
                    xmin, xmax = conn.execute(
                        "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint FROM pg_current_snapshot() AS s"
                    ).fetchone()
                    switched = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
                    state = ArchiveState(latest_restorable=now.isoformat(), last_marker=now.isoformat(), next_xid=xmax, quiet=xmin == xmax)
        finally:
            lock.release()
        if switched is not None:
            self._wait_archived(instance_id, Path(meta.archive) / switched)
        with self._lock(instance_id):
            written = read_state(archive).latest_restorable
            if written and state.latest_restorable and utc(written) > utc(state.latest_restorable):
                return utc(written)  # a later tick already wrote
            self._os.write(archive / STATE_FILE, json.dumps(asdict(state)) + "\n", 0o644, server_owned=False)
        return utc(state.latest_restorable) if state.latest_restorable else None

    def restore_to_time(
        self,
        instance_id: str,
        archive: Path,
        target: datetime.datetime | None,
        *,
        force_ssl: bool,
        max_connections: int | None = None,
        new_archive: Path | None = None,
        source: str | None = None,
    ) -> Endpoint:
        """A new instance with the data as of ``target`` (None: the latest restorable time) from ``source``'s archive."""
        window = restore_window(archive)
        if window is None:
            raise PostgresEngineError(f"archive {archive} has no base backup to restore from")
        earliest, latest = window
        target = target or latest
        if not earliest <= target <= latest:
            raise PostgresEngineError(f"{target.isoformat()} is outside the restore window {earliest.isoformat()} .. {latest.isoformat()}")
        base = [b for b in base_backups(archive) if b.taken_at <= target][-1]
        if source is not None and self.archive_tick(source, force=True) is not None:
            # The source runs and keeps archiving (a full segment is archived without a tick), so replay must
            # stop at the target, never at the archive's end; the forced marker is the commit after it.
            replay_to: str | None = target.isoformat()
        else:
            # The source is stopped or gone, so the archive no longer grows: past the last marker, the end of
            # the archive is the state as of the target (nothing was committed after the marker).
            state = read_state(archive)
            replay_to = target.isoformat() if state.last_marker and target < utc(state.last_marker) else None
        return self._instance_from_copy(
            instance_id,
            base.info,
            fill=lambda inst: self._fill_from(base.path, inst),
            force_ssl=force_ssl,
            max_connections=max_connections,
            archive=new_archive / "wal" if new_archive else None,
            recovery_archive=archive / "wal",
            target_time=replay_to,
        )

    def prune(self, archive: Path, keep_since: datetime.datetime) -> list[BaseBackup]:
        """Drop base backups (and the WAL only they need) older than the retention window; the dropped ones.

        The newest backup taken before ``keep_since`` stays: it is what restores to ``keep_since``.
        """
        backups = base_backups(archive)
        older = [b for b in backups if b.taken_at < keep_since]
        dropped = older[:-1]
        for backup in dropped:
            shutil.rmtree(backup.path, ignore_errors=True)
        kept = [b for b in backups if b not in dropped]
        if dropped and kept:
            oldest_needed = _start_segment(kept[0].path / "data")
            if oldest_needed:
                for segment in (archive / "wal").iterdir():
                    if len(segment.name) == 24 and segment.name[8:] < oldest_needed[8:]:  # any timeline
                        segment.unlink(missing_ok=True)
        return dropped

    def _wait_archived(self, instance_id: str, segment: Path) -> None:
        deadline = time.monotonic() + _ARCHIVED_TIMEOUT_S
        while not segment.exists():
            if time.monotonic() > deadline:
                raise PostgresEngineError(f"postgres instance {instance_id!r}: WAL segment {segment.name} not archived within {_ARCHIVED_TIMEOUT_S}s")
            time.sleep(0.02)


def _start_segment(data: Path) -> str | None:
    """The first WAL segment a base backup needs, from its backup_label."""
    try:
        for line in (data / "backup_label").read_text().splitlines():
            if line.startswith("START WAL LOCATION:") and "(file " in line:
                return line.split("(file ", 1)[1].rstrip(")").strip()
    except OSError:
        return None
    return None
