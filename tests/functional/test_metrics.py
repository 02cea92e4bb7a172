"""AWS/RDS and AWS/S3 metrics on the local cloud, measured from real PostgreSQL servers and real S3 requests.

Every metric is read back through CloudWatch's API (boto3), as a dashboard or an alarm would read it, after a
real load: pgbench connections and transactions, rows inserted, objects put, requests that fail.
"""

from __future__ import annotations

import datetime
import subprocess
import threading
import time

import boto3
import psycopg
import pytest
from botocore.config import Config

from tests.functional.test_rds_recovery import PASSWORD, connect, make, wait_for

pytestmark = pytest.mark.functional

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


def aws(cloud, service: str):
    return boto3.client(
        service,
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def series(cw, namespace: str, name: str, dimensions: dict[str, str], since: datetime.datetime, stat: str = "Maximum") -> list[dict]:
    """Datapoints (1 s periods) of one metric since ``since``, oldest first."""
    answer = cw.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=since,
        EndTime=now() + datetime.timedelta(seconds=5),
        Period=1,
        Statistics=[stat],
    )
    return sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])


def wait_value(cw, namespace, name, dimensions, since, accept, stat="Maximum", timeout=30.0) -> dict:
    """The first datapoint since ``since`` whose statistic ``accept`` accepts (the cloud collects every second)."""
    deadline = time.monotonic() + timeout
    seen: list[float] = []
    while time.monotonic() < deadline:
        points = series(cw, namespace, name, dimensions, since, stat)
        seen = [p[stat] for p in points]
        for point in points:
            if accept(point[stat]):
                return point
        time.sleep(0.5)
    raise AssertionError(f"{namespace} {name} {dimensions}: no accepted datapoint; saw {seen[-20:]}")


def pgbench(rds, name: str, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    endpoint = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["Endpoint"]
    env = {"PGPASSWORD": PASSWORD, "PGSSLMODE": "require", "PATH": "/usr/bin:/bin"}
    base = [PGBENCH, "-h", endpoint["Address"], "-p", str(endpoint["Port"]), "-U", "master"]
    return subprocess.run([*base, *args, "app"], env=env, capture_output=True, text=True, timeout=180, check=True)


@pytest.fixture
def cw(cloud):
    return aws(cloud, "cloudwatch")


def test_pgbench_load_shows_in_connections_cpu_iops_and_network(rds, cw):
    make(rds, "metrics-load", retention=0)
    wait_for(rds, "metrics-load")
    dims = {"DBInstanceIdentifier": "metrics-load"}
    pgbench(rds, "metrics-load", "-i", "-s", "2", "-q")
    idle = series(cw, "AWS/RDS", "DatabaseConnections", dims, now() - datetime.timedelta(minutes=5))
    assert idle, "no DatabaseConnections datapoint at all"
    assert max(p["Maximum"] for p in idle) < 5
    started = now()
    pgbench(rds, "metrics-load", "-c", "20", "-j", "2", "-T", "6", "-S")
    connections = wait_value(cw, "AWS/RDS", "DatabaseConnections", dims, started, lambda v: v >= 20)
    assert connections["Unit"] == "Count"
    cpu = wait_value(cw, "AWS/RDS", "CPUUtilization", dims, started, lambda v: v > 5)
    assert cpu["Unit"] == "Percent" and cpu["Maximum"] <= 100
    received = wait_value(cw, "AWS/RDS", "NetworkReceiveThroughput", dims, started, lambda v: v > 1000)
    assert received["Unit"] == "Bytes/Second"
    wait_value(cw, "AWS/RDS", "NetworkTransmitThroughput", dims, started, lambda v: v > 1000)
    # Every metric the spec names is listed once for the instance.
    listed = cw.list_metrics(Namespace="AWS/RDS", Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "metrics-load"}])["Metrics"]
    names = sorted(m["MetricName"] for m in listed)
    expected = {"CPUUtilization", "DatabaseConnections", "FreeStorageSpace", "ReadIOPS", "WriteIOPS", "NetworkReceiveThroughput", "NetworkTransmitThroughput"}
    assert expected <= set(names) and len(names) == len(set(names)), names
    # The load is over: connections fall back.
    wait_value(cw, "AWS/RDS", "DatabaseConnections", dims, now(), lambda v: v < 5)


def test_rows_inserted_lower_free_storage_and_write_iops(rds, cw):
    make(rds, "metrics-storage", retention=0)
    wait_for(rds, "metrics-storage")
    dims = {"DBInstanceIdentifier": "metrics-storage"}
    before = wait_value(cw, "AWS/RDS", "FreeStorageSpace", dims, now(), lambda v: v > 0, stat="Minimum")
    assert before["Unit"] == "Bytes"
    assert 19 * 1024**3 < before["Minimum"] < 20 * 1024**3  # 20 GiB allocated, a fresh cluster uses some MB
    started = now()
    with connect(rds, "metrics-storage") as conn:
        conn.execute("CREATE TABLE filler AS SELECT g AS id, repeat('x', 1000) AS pad FROM generate_series(1, 60000) g")
        conn.execute("CHECKPOINT")
    after = wait_value(cw, "AWS/RDS", "FreeStorageSpace", dims, started, lambda v: v < before["Minimum"] - 50 * 1024**2, stat="Minimum")
    assert after["Minimum"] < before["Minimum"]
    wait_value(cw, "AWS/RDS", "WriteIOPS", dims, started, lambda v: v > 0)
    latency = series(cw, "AWS/RDS", "WriteLatency", dims, started)
    assert latency and all(p["Unit"] == "Seconds" and p["Maximum"] >= 0 for p in latency)


def test_replica_has_replica_lag_and_a_stopped_instance_publishes_nothing(rds, cw):
    make(rds, "metrics-src", retention=1)
    wait_for(rds, "metrics-src")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="metrics-replica", SourceDBInstanceIdentifier="metrics-src")
    rds.made.insert(0, "metrics-replica")
    wait_for(rds, "metrics-replica")
    lag = wait_value(cw, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": "metrics-replica"}, now(), lambda v: v >= 0)
    assert lag["Unit"] == "Seconds" and lag["Maximum"] < 60
    assert not series(cw, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": "metrics-src"}, now() - datetime.timedelta(minutes=5))

    rds.delete_db_instance(DBInstanceIdentifier="metrics-replica", SkipFinalSnapshot=True)
    rds.stop_db_instance(DBInstanceIdentifier="metrics-src")
    wait_for(rds, "metrics-src", "stopped")
    time.sleep(2)  # a pass that started before the stop may still publish
    stopped_at = now()
    time.sleep(4)
    assert not series(cw, "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": "metrics-src"}, stopped_at)
    rds.start_db_instance(DBInstanceIdentifier="metrics-src")
    wait_for(rds, "metrics-src")
    wait_value(cw, "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": "metrics-src"}, now(), lambda v: v >= 0)
