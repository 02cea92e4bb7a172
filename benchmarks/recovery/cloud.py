"""The benchmark's own local cloud and the RDS calls a runbook makes, each waited out as a user would."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import boto3
import psycopg
from botocore.config import Config

from rentaliq.local.cloud import DEFAULT_REGION, LocalCloud
from rentaliq.local.postgres import find_pg_bin
from tests.ports import free_port

MASTER = "master"
PASSWORD = "bench-recovery-password"
DBNAME = "app"


@dataclass
class Bench:
    cloud: LocalCloud
    home: Path
    rds: Any

    @property
    def instances(self) -> Path:
        return self.cloud.state_dir / "postgres"

    def archive_wal(self, name: str) -> Path:
        dbi = self.describe(name)["DbiResourceId"]
        return self.cloud.state_dir / "rds-backups" / "archives" / dbi / "wal"

    def describe(self, name: str) -> dict:
        return self.rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]

    def port(self, name: str) -> int:
        return int(self.describe(name)["Endpoint"]["Port"])

    def create(self, name: str, *, retention: int, multi_az: bool = False) -> None:
        self.rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.medium",
            Engine="postgres",
            MasterUsername=MASTER,
            MasterUserPassword=PASSWORD,
            DBName=DBNAME,
            AllocatedStorage=20,
            BackupRetentionPeriod=retention,
            MultiAZ=multi_az,
        )
        self.wait_available(name)

    def wait_available(self, name: str, timeout: float = 3600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            db = self.describe(name)
            if db["DBInstanceStatus"] == "available":
                return db
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} still {db['DBInstanceStatus']} after {timeout}s")
            time.sleep(0.05)

    def wait_snapshot(self, snapshot_id: str, timeout: float = 3600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]["Status"]
            if status == "available":
                return
            if status != "creating" or time.monotonic() > deadline:
                raise RuntimeError(f"snapshot {snapshot_id} is {status}")
            time.sleep(0.05)

    def delete(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)

    def connect(self, name: str) -> psycopg.Connection:
        return connect_port(self.port(name))

    def pgbench(self, name: str, *args: str, timeout: float = 7200) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PGPASSWORD": PASSWORD, "PGSSLMODE": "require", "PGHOST": "127.0.0.1", "PGPORT": str(self.port(name)), "PGUSER": MASTER}
        result = subprocess.run([str(find_pg_bin() / "pgbench"), *args, DBNAME], env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pgbench {' '.join(args)} failed: {result.stderr.strip()[-1500:]}")
        return result


def connect_port(port: int, **kwargs: Any) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user=MASTER, password=PASSWORD, dbname=DBNAME, sslmode="require", autocommit=True, **kwargs)


def wait_tls(port: int, timeout: float = 3600) -> None:
    """Until the instance accepts a TLS connection as its master user."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect_port(port, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def private_bench(archive_seconds: float, keep: bool = False) -> Iterator[Bench]:
    """A local cloud of our own (temp dir, free port), archiving WAL every ``archive_seconds``."""
    home = Path(tempfile.mkdtemp(prefix="rentaliq-bench-recovery-", dir="/tmp"))
    home.chmod(0o755)  # the servers run as 'postgres' when we are root
    os.environ["RENTALIQ_LOCAL_ARCHIVE_SECONDS"] = str(archive_seconds)
    cloud = LocalCloud(state_dir=home / "state", port=free_port())
    cloud.start(timeout=60)
    # One attempt per call and a long read timeout: a restore answers when its server is up, and a
    # retried create would be a second create.
    rds = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=DEFAULT_REGION).client(
        "rds", endpoint_url=cloud.endpoint_url, config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=3600, connect_timeout=5)
    )
    try:
        yield Bench(cloud, home, rds)
    finally:
        cloud.stop()
        if keep:
            print(f"state kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
            if home.exists():  # a late write of the stopping server; once more
                time.sleep(1)
                shutil.rmtree(home, ignore_errors=True)


class Watcher:
    """A daemon thread running ``_loop`` for the length of a ``with`` block, so a measurement can watch from outside
    while the call it measures runs; ``_loop`` ends when ``_stop`` is set."""

    join_timeout = 10.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.join_timeout)


class FirstConnection(Watcher):
    """Watches a new instance's directory from outside and notes when its server first accepts a TLS
    connection (and, with ``writable``, is out of recovery), while the RDS call that makes it is still running.

    The restore calls answer only after the instance's first automated backup, as RDS shows the
    instance ``backing-up`` before ``available``; a client can connect before that.
    """

    def __init__(self, instances: Path, name: str, *, writable: bool = False) -> None:
        super().__init__()
        self.meta = instances / name / "instance.json"
        self.writable = writable
        self.at: float | None = None

    def _loop(self) -> None:
        while not self._stop.is_set() and self.at is None:
            try:
                port = int(json.loads(self.meta.read_text())["port"])
                with connect_port(port, connect_timeout=1) as conn:
                    if not self.writable or conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                        self.at = time.perf_counter()
                        return
            except (OSError, ValueError, KeyError, psycopg.Error):
                pass
            time.sleep(0.02)
