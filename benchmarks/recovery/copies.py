"""Snapshot, restore and point-in-time restore of the same database, through the RDS API and by hand.

One source instance with automated backups: its first base backup is taken at create (empty), and the
peer's hand-made base backup is taken right after it, so both point-in-time restores replay the same
WAL: the whole load of the data, about as large as the data itself.
"""

from __future__ import annotations

import datetime
import shutil
import time
from collections.abc import Callable, Iterable
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


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def _list(values: Iterable[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s"


def _restore_figure(
    name: str, peer_name: str, by_hand: Callable[[], tuple[float, float]], ours: Callable[[str], tuple[float, float, float]], prefix: str, what: str, step: str
) -> Figure:
    """A restore measured both ways, twice each, alternating (by hand, ours, ours, by hand): this machine's load
    changes from minute to minute. ``by_hand`` gives (total, ``step``'s part), ``ours`` (total, ., until available)."""
    peer_runs = [by_hand()]
    ours_runs = [ours(f"{prefix}-1"), ours(f"{prefix}-2")]
    peer_runs.append(by_hand())
    return Figure(
        name,
        _mean(r[0] for r in ours_runs),
        _mean(r[0] for r in peer_runs),
        peer_name,
        1.5,
        detail=f"{what}; mean of 2 each: ours {_list(r[0] for r in ours_runs)}, by hand {_list(r[0] for r in peer_runs)} "
        f"({step} {_list(r[1] for r in peer_runs)}); ours available after {_list(r[2] for r in ours_runs)}",
    )


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

        def by_hand() -> tuple[float, float]:
            data = self.work / "pitr-data"
            copy = _timed(lambda: hand.copy(self.work / "pitr-base", data))
            hand.prepare_pitr(data, archive_copy, target.isoformat())
            replay = self._hand_start(data, rows)
            shutil.rmtree(data)
            return copy + replay, replay

        def ours(name: str) -> tuple[float, float, float]:
            restore = lambda: b.rds.restore_db_instance_to_point_in_time(  # noqa: E731
                SourceDBInstanceIdentifier=SOURCE, TargetDBInstanceIdentifier=name, RestoreTime=target
            )
            return self._timed_restore(name, restore, rows, writable=True)

        what = f"{wal / 2**30:.2f} GiB of WAL replayed; until writable over TLS"
        peer_name = "base backup copy + recovery_target_time replay"
        self.figures.append(_restore_figure("point-in-time restore", peer_name, by_hand, ours, "bench-pitr", what, "start+replay"))

    def _timed_restore(self, name: str, restore: Callable[[], object], rows: int, *, writable: bool = False) -> tuple[float, float, float]:
        """(first TLS connection [out of recovery], API answer, available), then checks the rows and deletes."""
        b = self.b
        with FirstConnection(b.instances, name, writable=writable) as first:
            started = time.perf_counter()
            restore()
            api = time.perf_counter() - started
            b.wait_available(name)
            wait_tls(b.port(name))
            available = time.perf_counter() - started
        connected = (first.at or started + available) - started
        assert _count(b.port(name)) == rows, f"{name} does not hold the rows"
        b.delete(name)
        return connected, api, available

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
        snap_ours = [_timed(lambda: snapshot("bench-snap-1"))]
        snap_peer = [_timed(peer_backup), _timed(peer_backup)]
        b.rds.delete_db_snapshot(DBSnapshotIdentifier="bench-snap-1")
        snap_ours.append(_timed(lambda: snapshot("bench-snap")))
        ours, peer = _mean(snap_ours), _mean(snap_peer)
        self.figures.append(
            Figure(
                f"snapshot of {size / 2**30:.2f} GiB",
                ours,
                peer,
                "pg_basebackup",
                1.5,
                detail=f"mean of 2 each; ours {_list(snap_ours)}; by hand {_list(snap_peer)}",
            )
        )

        def by_hand() -> tuple[float, float]:
            data = self.work / "snap-data"
            copy = _timed(lambda: hand.copy(self.work / "snap-base", data))
            start = self._hand_start(data, rows)
            shutil.rmtree(data)
            return copy + start, copy

        def ours(name: str) -> tuple[float, float, float]:
            restore = lambda: b.rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier="bench-snap")  # noqa: E731
            return self._timed_restore(name, restore, rows)

        self.figures.append(_restore_figure("restore from snapshot", "cp -a + pg_ctl start", by_hand, ours, "bench-restored", "until a TLS connection", "copy"))
        shutil.rmtree(self.work / "snap-base")
        b.rds.delete_db_snapshot(DBSnapshotIdentifier="bench-snap")
