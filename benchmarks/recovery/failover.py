"""Multi-AZ failover (RebootDBInstance --force-failover) under a runtime SDK workload.

Four threads issue idempotent requests through ``rentaliq.runtime.Database`` (half inserts, half
counts), configured from the ``db/credentials`` secret as a deployed service is; a probe opens a raw
TLS connection and writes one row every 20 ms. The figure is the time from the failover request to
the first write the endpoint accepts after its outage, and the failed SDK requests (retries are the
SDK's job; a request that still fails is counted).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from urllib.parse import quote

import psycopg

from benchmarks.recovery.cloud import DBNAME, MASTER, PASSWORD, Bench, Watcher, connect_port
from benchmarks.recovery.copies import Figure
from rentaliq import naming
from rentaliq.local.postgres.ca import local_cloud_ca
from rentaliq.runtime import Database, RuntimeConfig, Secrets

INSTANCE = "bench-maz"
ENV = "lab"


def _publish_secrets(b: Bench, port: int) -> None:
    creds = {"username": MASTER, "password": PASSWORD, "engine": "postgres", "host": "127.0.0.1", "port": port, "dbname": DBNAME}
    creds["dbInstanceIdentifier"] = INSTANCE
    url = f"postgresql://{MASTER}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/{DBNAME}?sslmode=require"
    values = {
        "db/credentials": creds,
        "db/connection-string": {"DATABASE_URL": url, "JDBC_URL": f"jdbc:postgresql://127.0.0.1:{port}/{DBNAME}?sslmode=require"},
        "api/keys": {"api_key": "ak_bench", "jwt_secret": "jw_bench", "encryption_key": "ek_bench"},
        "s3/config": {"bucket_name": "bench", "bucket_arn": "arn:aws:s3:::bench", "region": "us-east-1"},
    }
    client = b.cloud.client("secretsmanager")
    for name, value in values.items():
        client.create_secret(Name=naming.secret_path(ENV, name), SecretString=json.dumps(value))


class _Probe(Watcher):
    """A raw write every 20 ms: (monotonic time, accepted) for each attempt."""

    join_timeout = 30.0

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.samples: list[tuple[float, bool]] = []

    def _loop(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect_port(self.port, connect_timeout=1)
                conn.execute("INSERT INTO bench_probe DEFAULT VALUES")
                self.samples.append((time.monotonic(), True))
            except psycopg.Error:
                self.samples.append((time.monotonic(), False))
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(0.02)
        if conn is not None:
            conn.close()


def run(b: Bench, settle_s: float = 3.0) -> list[Figure]:
    b.create(INSTANCE, retention=1, multi_az=True)
    port = b.port(INSTANCE)
    _publish_secrets(b, port)
    with connect_port(port) as conn:
        conn.execute("CREATE TABLE bench_events (worker int, n int, PRIMARY KEY (worker, n))")
        conn.execute("CREATE TABLE bench_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
    for name, value in {**b.cloud.env(write_profile=False), "RENTALIQ_ENV": ENV}.items():
        os.environ[name] = value
    os.environ.pop("AWS_PROFILE", None)
    os.environ["PGSSLROOTCERT"] = str(local_cloud_ca(b.cloud.state_dir).path)  # the SDK verifies (verify-full)
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # one warning per refused connect otherwise
    retries = _RetryCounter()
    logging.getLogger("rentaliq.runtime.database").addHandler(retries)
    logging.getLogger("rentaliq.runtime.database").setLevel(logging.INFO)
    written: set[tuple[int, int]] = set()
    failures: list[BaseException] = []
    done = [0]
    stop = threading.Event()
    with Database(Secrets(RuntimeConfig(env=ENV))) as db:

        def worker(w: int) -> None:
            n = 0
            while not stop.is_set():
                try:
                    if n % 2:
                        db.query("SELECT count(*) FROM bench_events")
                    else:
                        db.execute("INSERT INTO bench_events VALUES (%s, %s) ON CONFLICT DO NOTHING", (w, n), idempotent=True)
                        written.add((w, n))
                    done[0] += 1
                except Exception as error:  # noqa: BLE001 - each one is a failed request
                    failures.append(error)
                n += 1

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(4)]
        with _Probe(port) as probe:
            for t in threads:
                t.start()
            time.sleep(2)
            before = done[0]
            asked = time.monotonic()
            b.rds.reboot_db_instance(DBInstanceIdentifier=INSTANCE, ForceFailover=True)
            answered = time.monotonic()
            time.sleep(settle_s)
            stop.set()
            for t in threads:
                t.join(timeout=60)
        stored = {tuple(r) for r in db.query("SELECT worker, n FROM bench_events")}
    assert b.port(INSTANCE) == port, "the endpoint moved"
    lost = len(written - stored)
    failed = [t for t, ok in probe.samples if not ok and t >= asked]
    back = next((t for t, ok in probe.samples if ok and t > (failed[-1] if failed else asked)), None)
    writable = (back - asked) if back is not None else float("inf")
    closed = (failed[-1] - failed[0]) if failed else 0.0
    b.delete(INSTANCE)
    return [
        Figure(
            "failover: endpoint accepts writes again",
            writable,
            target=10.0,
            detail=f"API call {answered - asked:.2f} s; probe writes refused for {closed:.2f} s ({len(failed)} attempts)",
        ),
        Figure(
            "failover: failed idempotent SDK requests",
            float(len(failures)),
            target=0.0,
            unit="requests",
            detail=f"{done[0] - before} requests during and after, {retries.count} SDK retries logged, {lost} acknowledged writes missing"
            + (f"; first failure: {failures[0]!r}"[:300] if failures else ""),
        ),
    ]


class _RetryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.count += 1
