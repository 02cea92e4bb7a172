"""The whole monitoring chain on real servers: PostgreSQL -> AWS/RDS metrics -> evaluated alarm -> SNS -> a real
HTTP subscriber, as the issue's user saw it fail (pgbench with more connections than the threshold, and nothing
happened). One private cloud for the module: the test spec's thresholds and subscriber are its own, and the
redeploys here must not change the shared session environments other test files use."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rentaliq.deploy.lifecycle import up
from rentaliq.deploy.target import Target
from rentaliq.environments import build_spec
from rentaliq.ops.verify import summary, verify
from tests.clouds import private_cloud
from tests.functional.sns_subscriber import Subscriber, signature_verifies, subscriber

pytestmark = pytest.mark.slow

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
MIB = 1024**2
GIB = 1024**3
CONNECTIONS = "rentaliq-lab-db-high-connections"
STORAGE = "rentaliq-lab-db-low-free-storage"
CPU = "rentaliq-lab-db-high-cpu"


def overrides(endpoint: str, **monitoring: float) -> dict:
    """LAB with 10 s alarm periods, a connections threshold pgbench can cross, and the test's subscriber."""
    return {
        "monitoring": {"period_s": 10, "cpu_period_s": 10, "connections_threshold": 5, **monitoring},
        "alerts": {"https_endpoints": [endpoint]},
    }


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Subscriber]:
    with subscriber() as sub:
        yield sub


@pytest.fixture(scope="module")
def lab(endpoint: Subscriber, tmp_path_factory) -> Iterator[tuple[Target, Path]]:
    os.environ.setdefault("RENTALIQ_LOCAL_METRICS_SECONDS", "1")
    os.environ.setdefault("RENTALIQ_LOCAL_ALARM_SECONDS", "1")
    with private_cloud("monitoring") as cloud:
        target, outdir = Target.local(cloud.endpoint_url), tmp_path_factory.mktemp("cdk.out")
        up(target, [build_spec("lab", overrides(endpoint.url))], outdir)
        yield target, outdir


def creds(target: Target) -> dict:
    return json.loads(target.client("secretsmanager").get_secret_value(SecretId="rentaliq/lab/db/credentials")["SecretString"])


def alarm_state(target: Target, name: str) -> str:
    return str(target.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


def wait_state(target: Target, name: str, state: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while (now := alarm_state(target, name)) != state:
        assert time.monotonic() < deadline, f"{name} is {now}, not {state}, after {timeout:g} s"
        time.sleep(0.5)


def notified(sub: Subscriber, alarm: str, state: str, old: str | None = None) -> dict:
    """The alarm's notification of its change to ``state`` (from ``old``, if given), checked as a subscriber would."""

    def wanted(message: dict) -> bool:
        body = json.loads(message["Message"])
        return body.get("AlarmName") == alarm and body["NewStateValue"] == state and old in (None, body["OldStateValue"])

    message = sub.wait_for(wanted)
    assert message["Subject"] == f'{state}: "{alarm}" in US East (N. Virginia)'
    assert message["TopicArn"].endswith(":rentaliq-lab-alerts") and message["UnsubscribeURL"]
    assert signature_verifies(message), "the notification's signature does not verify against SigningCertURL"
    return json.loads(message["Message"])


def pgbench(target: Target, *args: str) -> subprocess.Popen[bytes]:
    c = creds(target)
    env = {**os.environ, "PGPASSWORD": c["password"], "PGSSLMODE": "require"}  # never on a command line
    command = [PGBENCH, "-h", c["host"], "-p", str(c["port"]), "-U", c["username"], *args, c["dbname"]]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_the_subscription_is_confirmed_by_its_endpoint_and_verify_checks_it(lab, endpoint):
    target, _ = lab
    [confirmation] = endpoint.messages("SubscriptionConfirmation")
    assert signature_verifies(confirmation) and confirmation["TopicArn"].endswith(":rentaliq-lab-alerts")
    sns = target.client("sns")
    deadline = time.monotonic() + 20
    while (subs := sns.list_subscriptions_by_topic(TopicArn=confirmation["TopicArn"])["Subscriptions"])[0]["SubscriptionArn"] == "PendingConfirmation":
        assert time.monotonic() < deadline, "the subscription stayed PendingConfirmation after the endpoint fetched its SubscribeURL"
        time.sleep(0.2)
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("http", endpoint.url)]
    checks = verify(target, build_spec("lab", overrides(endpoint.url)))
    assert summary(checks)["failed"] == 0, [c for c in checks if c.status == "fail"]


def test_pgbench_above_the_threshold_raises_the_connections_alarm_and_it_clears_when_the_load_stops(lab, endpoint):
    target, _ = lab
    init = pgbench(target, "-i", "-s", "1", "-q")
    assert init.wait(timeout=120) == 0, init.stderr.read() if init.stderr else ""
    wait_state(target, CONNECTIONS, "OK")  # at rest: under the threshold, with data
    history_start = time.time()
    load = pgbench(target, "-c", "12", "-j", "2", "-T", "120", "-n")
    try:
        wait_state(target, CONNECTIONS, "ALARM")
        message = notified(endpoint, CONNECTIONS, "ALARM")
        assert message["Trigger"]["MetricName"] == "DatabaseConnections" and message["Trigger"]["Threshold"] == 5
        assert "greater than the threshold (5.0)" in message["NewStateReason"]
    finally:
        load.terminate()
        load.wait(timeout=30)
    wait_state(target, CONNECTIONS, "OK")
    assert "not greater than the threshold (5.0)" in notified(endpoint, CONNECTIONS, "OK", old="ALARM")["NewStateReason"]
    history = target.client("cloudwatch").describe_alarm_history(AlarmName=CONNECTIONS, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    summaries = [h["HistorySummary"] for h in history if h["Timestamp"].timestamp() >= history_start - 1]
    assert "Alarm updated from OK to ALARM" in summaries and "Alarm updated from ALARM to OK" in summaries


def test_real_rows_inserted_raise_the_storage_alarm(lab, endpoint):
    target, outdir = lab
    cloudwatch = target.client("cloudwatch")
    now = time.time()
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="FreeStorageSpace",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "rentaliq-lab-db"}],
        StartTime=now - 30,
        EndTime=now + 5,
        Period=10,
        Statistics=["Minimum"],
    )["Datapoints"]
    free = min(p["Minimum"] for p in points)
    assert 19 * GIB < free < 20 * GIB  # 20 GiB allocated, a little used
    threshold_gib = (free - 24 * MIB) / GIB  # 24 MiB more data crosses it
    up(target, [build_spec("lab", overrides(endpoint.url, free_storage_threshold_gib=threshold_gib))], outdir)
    wait_state(target, STORAGE, "OK")
    c = creds(target)
    with psycopg.connect(
        host=c["host"], port=c["port"], user=c["username"], password=c["password"], dbname=c["dbname"], sslmode="require", autocommit=True
    ) as conn:
        conn.execute("CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 32) AS pad FROM generate_series(1, 64000) AS g")  # ~70 MiB
        conn.execute("CHECKPOINT")
        assert conn.execute("SELECT pg_total_relation_size('filler')").fetchone()[0] > 48 * MIB  # type: ignore[index]
    wait_state(target, STORAGE, "ALARM")
    assert notified(endpoint, STORAGE, "ALARM")["Trigger"]["MetricName"] == "FreeStorageSpace"


def test_a_stopped_database_gives_no_false_cpu_alarm(lab):
    target, _ = lab
    rds = target.client("rds")
    rds.stop_db_instance(DBInstanceIdentifier="rentaliq-lab-db")
    deadline = time.monotonic() + 60
    while rds.describe_db_instances(DBInstanceIdentifier="rentaliq-lab-db")["DBInstances"][0]["DBInstanceStatus"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    wait_state(target, CPU, "INSUFFICIENT_DATA")  # no datapoints: missing, never a breach
    cpu = target.client("cloudwatch").describe_alarms(AlarmNames=[CPU])["MetricAlarms"][0]
    assert "ALARM" not in [
        h["HistorySummary"].rsplit(" ", 1)[-1] for h in target.client("cloudwatch").describe_alarm_history(AlarmName=CPU)["AlarmHistoryItems"]
    ]
    assert cpu["StateValue"] == "INSUFFICIENT_DATA"
