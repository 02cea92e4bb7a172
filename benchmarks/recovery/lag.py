"""Replica lag under a pgbench write load: sampled 20 times a second, on the primary and on the replica.

Two views of the same lag: PostgreSQL's own ``replay_lag`` in ``pg_stat_replication`` on the primary
(time from a local flush to the replica's replay of it) and the engine's ``replica_lag_seconds`` (the
replica's own view: 0 when it has replayed all it received, else the age of its last replayed commit).
"""

from __future__ import annotations

import statistics
import threading
import time

from benchmarks.recovery.cloud import Bench, connect_port
from benchmarks.recovery.copies import SOURCE, Figure

REPLICA = "bench-replica"
INTERVAL_S = 0.05
_REPLICA_VIEW = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) END"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(b: Bench, seconds: int, clients: int = 4) -> list[Figure]:
    started = time.perf_counter()
    b.rds.create_db_instance_read_replica(DBInstanceIdentifier=REPLICA, SourceDBInstanceIdentifier=SOURCE)
    b.wait_available(REPLICA)
    created = time.perf_counter() - started
    primary_lag: list[float] = []
    replica_lag: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        with connect_port(b.port(SOURCE)) as primary, connect_port(b.port(REPLICA)) as replica:
            while not stop.is_set():
                row = primary.execute(
                    "SELECT EXTRACT(EPOCH FROM replay_lag) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = %s", (REPLICA,)
                ).fetchone()
                primary_lag.append(float(row[0]) if row and row[0] is not None else 0.0)
                replica_lag.append(max(0.0, float(replica.execute(_REPLICA_VIEW).fetchone()[0] or 0.0)))
                stop.wait(INTERVAL_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    bench = b.pgbench(SOURCE, "-c", str(clients), "-j", "2", "-T", str(seconds), "-n")
    stop.set()
    sampler.join()
    tps = next((line.split("=")[1].split()[0] for line in bench.stdout.splitlines() if line.startswith("tps")), "?")
    b.delete(REPLICA)
    figures = [Figure("read replica created (available)", created, detail="reported only")]
    for name, values in (("replay_lag on the primary", primary_lag), ("replica_lag_seconds on the replica", replica_lag)):
        figures.append(
            Figure(
                f"replica lag p99, {name}",
                percentile(values, 0.99),
                target=1.0,
                detail=f"p50 {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms, {len(values)} samples; "
                f"pgbench {clients} clients, {tps} tps",
            )
        )
    return figures
