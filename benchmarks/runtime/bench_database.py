"""10 000 small queries through the SDK's pool against one raw persistent psycopg connection.

Both sides run the same parameterised query over TLS (sslmode=require) on the same server, in
autocommit, and fetch the rows.  They alternate in blocks of 500 queries until each has run
``queries``; this is repeated ``rounds`` times and the median round counts.

Noise control: on a small VM the latency of a query depends mostly on whether the client and the
server backend happen to share a CPU (two raw connections running identical code measured
0.55x-1.02x of each other).  So, for this benchmark only, this process and every backend of the
benchmark user are pinned to the same CPU; both sides then run under identical conditions and
repeat within about 1 %.  Affinity is restored afterwards.

The connect-per-request figure (a GetSecretValue, a TLS connection, the query, a close, on every
request: what code without a cache or pool does) is reported as a speed-up, with no target.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import psycopg

from benchmarks.runtime.common import Result, median
from rentaliq import naming
from rentaliq.deploy.database import connect
from rentaliq.runtime import Database, RuntimeConfig, Secrets

QUERY = "SELECT %s::int + 1"
BLOCK = 500


@contextmanager
def same_cpu(conn: psycopg.Connection) -> Iterator[str]:
    """Pin this thread and the benchmark user's backends to one CPU; yields a note for the report."""
    if not hasattr(os, "sched_setaffinity"):
        yield "CPU pinning unavailable"
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE usename = current_user")]
    saved = {}
    try:
        for pid in pids:
            try:
                saved[pid] = os.sched_getaffinity(pid)
                os.sched_setaffinity(pid, {cpu})
            except OSError:
                pass
        os.sched_setaffinity(0, {cpu})
        yield f"client and {len(saved)} backends pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, before)
        for pid, cpus in saved.items():
            try:
                os.sched_setaffinity(pid, cpus)
            except OSError:
                pass


def run(env: str, *, queries: int = 10_000, rounds: int = 5, naive_requests: int = 200) -> list[Result]:
    db = Database(Secrets(RuntimeConfig(env=env)))
    creds = db.secrets.credentials()
    raw = psycopg.connect(
        host=creds.host,
        port=creds.port,
        dbname=creds.dbname,
        user=creds.username,
        password=creds.password,
        sslmode="require",
        autocommit=True,
    )
    try:
        for i in range(1000):  # warm both: prepared statements, the pool's connection, caches
            db.query(QUERY, (i,))
            raw.execute(QUERY, (i,)).fetchall()
        pool_runs, raw_runs = [], []
        with same_cpu(raw) as pinning:
            for r in range(rounds):
                pool_s = raw_s = 0.0
                for b in range(queries // BLOCK):
                    for side in (0, 1) if (r + b) % 2 == 0 else (1, 0):
                        started = time.perf_counter()
                        if side == 0:
                            query = db.query
                            for i in range(BLOCK):
                                query(QUERY, (i,))
                            pool_s += time.perf_counter() - started
                        else:
                            execute = raw.execute
                            for i in range(BLOCK):
                                execute(QUERY, (i,)).fetchall()
                            raw_s += time.perf_counter() - started
                pool_runs.append(pool_s)
                raw_runs.append(raw_s)
        n = (queries // BLOCK) * BLOCK
        ratios = sorted(r / p for p, r in zip(pool_runs, raw_runs, strict=True))
        pool_s, raw_s = median(pool_runs), median(raw_runs)
        pooled = Result(
            "database: 10k queries via pool",
            n / pool_s,
            n / raw_s,
            "queries/s",
            median(ratios),
            ">=",
            0.9,
            peer_name="raw connection",
            detail=f"{n:,} queries x {rounds} rounds in blocks of {BLOCK}; {pool_s / n * 1e6:.1f} vs {raw_s / n * 1e6:.1f} µs/query; "
            f"round ratios {', '.join(f'{x:.3f}' for x in ratios)}; {pinning}; throughput ratio (median round)",
        )

        client = boto3.session.Session().client("secretsmanager")
        secret_id = naming.secret_path(env, "db/credentials")
        started = time.perf_counter()
        for i in range(naive_requests):
            value = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
            with connect(value, autocommit=True) as conn:
                conn.execute(QUERY, (i,)).fetchall()
        naive_s = (time.perf_counter() - started) / naive_requests
        per_query = pool_s / n
        naive = Result(
            "database: pool vs connect-per-request",
            1 / per_query,
            1 / naive_s,
            "requests/s",
            naive_s / per_query,
            ">=",
            None,
            peer_name="secret+connect each request",
            detail=f"{naive_requests} naive requests at {naive_s * 1e3:.2f} ms each (not pinned); ratio = speed-up of the pool",
        )
        return [pooled, naive]
    finally:
        raw.close()
        db.close()
