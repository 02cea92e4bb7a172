"""Snapshot, restore and point-in-time restore of the same database, through the RDS API and by hand.

One source instance with automated backups: its first base backup is taken at create (empty), and the
peer's hand-made base backup is taken right after it, so both point-in-time restores replay the same
WAL: the whole load of the data, about as large as the data itself.
"""

from __future__ import annotations

import datetime
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.recovery import hand
from benchmarks.recovery.cloud import DBNAME, MASTER, PASSWORD, Bench, FirstConnection, connect_port, wait_tls
from tests.ports import free_port

SOURCE = "bench-src"


@dataclass
class Figure:
    name: str
    ours: float
    peer: float | None = None
    peer_name: str = ""
    target: float | None = None  # on ours/peer when there is a peer, on ours (in its unit) otherwise
    unit: str = "s"
    detail: str = ""
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return self.ours / self.peer if self.peer else None

    @property
    def ok(self) -> bool:
        if self.target is None:
            return True
        value = self.ratio if self.peer is not None else self.ours
        return value is not None and value <= self.target


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _count(port: int) -> int:
    with connect_port(port) as conn:
        return int(conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0])


def _lsn_bytes(conn, since: str) -> int:
    return int(conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (since,)).fetchone()[0])


class CopyBench:
    def __init__(self, bench: Bench, scale: int) -> None:
        self.b = bench
        self.scale = scale
        self.work = hand.server_dir(bench.home / "hand")
        self.running: list[Path] = []
        self.figures: list[Figure] = []

    def stop_hand_servers(self) -> None:
        for data in self.running:
            try:
                hand.stop(data)
            except Exception as error:  # noqa: BLE001 - cleanup goes on
                print(f"warning: could not stop hand-started server {data}: {error}")
        self.running.clear()

    def _hand_start(self, data: Path, check_rows: int) -> float:
        port = free_port()
        self.running.append(data)
        started = time.perf_counter()
        hand.start(data, port, self.work / f"{data.name}.log")
        hand.wait_writable(port, MASTER, PASSWORD, DBNAME)
        elapsed = time.perf_counter() - started
        assert _count(port) == check_rows, "the hand-started copy does not hold the rows"
        hand.stop(data)
        self.running.remove(data)
        return elapsed

    # ------------------------------------------------------------------ the scenario

    def run(self) -> list[Figure]:
        b = self.b
        b.create(SOURCE, retention=1)  # its first base backup, of the empty database, is taken now
        inst, port = b.instances / SOURCE, b.port(SOURCE)
        hand.base_backup(inst, port, self.work / "pitr-base")
        with connect_port(port) as conn:
            start_lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        load = _timed(lambda: b.pgbench(SOURCE, "-i", "-q", "-s", str(self.scale), "-I", "dtGvp"))
        with connect_port(port) as conn:
            wal = _lsn_bytes(conn, start_lsn)
            size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
            target = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        rows = self.scale * 100_000
        detail = f"database {size / 2**30:.2f} GiB, {wal / 2**30:.2f} GiB of WAL since the base backups"
        self.figures.append(Figure("load (pgbench -i), for scale", load, detail=detail))
        self._pitr(target, rows, wal)
        self._snapshot_and_restore(inst, port, rows, size)
        return self.figures

    def _pitr(self, target: datetime.datetime, rows: int, wal: int) -> None:
        b = self.b
        deadline = time.monotonic() + 600
        while (b.describe(SOURCE).get("LatestRestorableTime") or target) <= target + datetime.timedelta(seconds=0.5):
            if time.monotonic() > deadline:
                raise RuntimeError("LatestRestorableTime did not pass the restore time")
            time.sleep(0.2)
        archive_copy = self.work / "archive-copy"
        hand.server_dir(archive_copy)
        hand.run_as_server(["cp", "-a", f"{b.archive_wal(SOURCE)}/.", f"{archive_copy}/"])  # untimed: the peer's own archive

        data = self.work / "pitr-data"
        copy = _timed(lambda: hand.copy(self.work / "pitr-base", data))
        hand.prepare_pitr(data, archive_copy, target.isoformat())
        replay = self._hand_start(data, rows)
        peer = copy + replay
        shutil.rmtree(data)

        with FirstConnection(b.instances, "bench-pitr", writable=True) as first:
            started = time.perf_counter()
            b.rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=SOURCE, TargetDBInstanceIdentifier="bench-pitr", RestoreTime=target)
            api = time.perf_counter() - started
            b.wait_available("bench-pitr")
            wait_tls(b.port("bench-pitr"))
            available = time.perf_counter() - started
        ours = (first.at or started + available) - started
        assert _count(b.port("bench-pitr")) == rows, "the point-in-time restore does not hold the rows"
        b.delete("bench-pitr")
        self.figures.append(
            Figure(
                "point-in-time restore",
                ours,
                peer,
                "base backup copy + recovery_target_time replay",
                1.5,
                detail=f"{wal / 2**30:.2f} GiB of WAL replayed; until writable over TLS; by hand: copy {copy:.2f} s, "
                f"start+replay {replay:.2f} s; ours: API answered {api:.2f} s, available {available:.2f} s",
            )
        )

    def _snapshot_and_restore(self, inst: Path, port: int, rows: int, size: int) -> None:
        b = self.b

        def snapshot(name: str) -> None:
            b.rds.create_db_snapshot(DBInstanceIdentifier=SOURCE, DBSnapshotIdentifier=name)
            b.wait_snapshot(name)

        def peer_backup() -> None:
            shutil.rmtree(self.work / "snap-base", ignore_errors=True)
            hand.base_backup(inst, port, self.work / "snap-base")

        # The first backup after the load pays its checkpoint's writes: an untimed one goes first, then
        # the two alternate (ours, peer, peer, ours) so neither always runs on a warmer cache.
        peer_backup()
        ours_runs, peer_runs = [_timed(lambda: snapshot("bench-snap-1"))], []
        peer_runs += [_timed(peer_backup), _timed(peer_backup)]
        b.rds.delete_db_snapshot(DBSnapshotIdentifier="bench-snap-1")
        ours_runs.append(_timed(lambda: snapshot("bench-snap")))
        ours, peer = sum(ours_runs) / 2, sum(peer_runs) / 2
        self.figures.append(
            Figure(
                f"snapshot of {size / 2**30:.2f} GiB",
                ours,
                peer,
                "pg_basebackup",
                1.5,
                detail=f"mean of 2 each; ours {', '.join(f'{x:.2f}' for x in ours_runs)} s; peer {', '.join(f'{x:.2f}' for x in peer_runs)} s",
            )
        )

        data = self.work / "snap-data"
        copy = _timed(lambda: hand.copy(self.work / "snap-base", data))
        peer_restore = copy + self._hand_start(data, rows)
        shutil.rmtree(data)
        shutil.rmtree(self.work / "snap-base")

        with FirstConnection(b.instances, "bench-restored") as first:
            started = time.perf_counter()
            b.rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="bench-restored", DBSnapshotIdentifier="bench-snap")
            b.wait_available("bench-restored")
            wait_tls(b.port("bench-restored"))
            available = time.perf_counter() - started
        ours_restore = (first.at or started + available) - started
        assert _count(b.port("bench-restored")) == rows, "the restore does not hold the rows"
        b.delete("bench-restored")
        b.rds.delete_db_snapshot(DBSnapshotIdentifier="bench-snap")
        self.figures.append(
            Figure(
                "restore from snapshot",
                ours_restore,
                peer_restore,
                "cp -a + pg_ctl start",
                1.5,
                detail=f"until a TLS connection; by hand: copy {copy:.2f} s, start {peer_restore - copy:.2f} s; ours: available {available:.2f} s",
            )
        )
