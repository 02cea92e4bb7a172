"""AWS/RDS and AWS/S3 metrics on the local cloud, measured from real PostgreSQL servers and real S3 requests.

Every metric is read back through CloudWatch's API (boto3), as a dashboard or an alarm would read it, after a
real load: pgbench connections and transactions, rows inserted, objects put, requests that fail.
"""

from __future__ import annotations

import datetime
import subprocess
import time

import pytest

from tests.aws_clients import one_try_client as aws
from tests.functional.test_rds_recovery import PASSWORD, connect, make, wait_for

pytestmark = pytest.mark.functional

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


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
    # At rest (the collector's first pass may still be due): a datapoint comes, and it is under 5 connections.
    wait_value(cw, "AWS/RDS", "DatabaseConnections", dims, now() - datetime.timedelta(minutes=5), lambda v: True)
    idle = series(cw, "AWS/RDS", "DatabaseConnections", dims, now() - datetime.timedelta(minutes=5))
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


@pytest.mark.slow
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


def test_s3_storage_metrics_count_the_bytes_and_objects_put(monkeypatch: pytest.MonkeyPatch):
    """On a cloud of its own that measures bucket storage every second (daily by default, as on AWS)."""
    from tests.clouds import private_cloud

    monkeypatch.setenv("RENTALIQ_LOCAL_METRICS_SECONDS", "1")
    monkeypatch.setenv("RENTALIQ_LOCAL_S3_METRICS_SECONDS", "1")
    with private_cloud("s3-metrics") as cloud:
        _s3_storage_metrics(aws(cloud, "s3"), aws(cloud, "cloudwatch"))


def _s3_storage_metrics(s3, cw) -> None:
    s3.create_bucket(Bucket="metrics-sizes")
    s3.put_bucket_versioning(Bucket="metrics-sizes", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="metrics-sizes", Key="a.bin", Body=b"a" * 1000)
    s3.put_object(Bucket="metrics-sizes", Key="a.bin", Body=b"b" * 500)  # a second version, stored and billed too
    s3.put_object(Bucket="metrics-sizes", Key="cold.bin", Body=b"c" * 2048, StorageClass="STANDARD_IA")
    started = now() - datetime.timedelta(seconds=1)
    standard = {"BucketName": "metrics-sizes", "StorageType": "StandardStorage"}
    size = wait_value(cw, "AWS/S3", "BucketSizeBytes", standard, started, lambda v: v == 1500)
    assert size["Unit"] == "Bytes"
    wait_value(cw, "AWS/S3", "BucketSizeBytes", {"BucketName": "metrics-sizes", "StorageType": "StandardIAStorage"}, started, lambda v: v == 2048)
    count = wait_value(cw, "AWS/S3", "NumberOfObjects", {"BucketName": "metrics-sizes", "StorageType": "AllStorageTypes"}, started, lambda v: v == 3)
    assert count["Unit"] == "Count"
    # CloudWatch matches the exact dimension set: the bucket name alone names no metric.
    assert not series(cw, "AWS/S3", "BucketSizeBytes", {"BucketName": "metrics-sizes"}, started)
    with pytest.raises(cw.exceptions.ClientError) as too_many:  # 1,441 one-second periods: over CloudWatch's limit
        cw.get_metric_statistics(
            Namespace="AWS/S3",
            MetricName="BucketSizeBytes",
            StartTime=started,
            EndTime=started + datetime.timedelta(seconds=1441),
            Period=1,
            Statistics=["Sum"],
        )
    assert too_many.value.response["Error"]["Code"] == "InvalidParameterCombination"
    listed = cw.list_metrics(Namespace="AWS/S3", Dimensions=[{"Name": "BucketName", "Value": "metrics-sizes"}])["Metrics"]
    assert sorted((m["MetricName"], {d["Name"]: d["Value"] for d in m["Dimensions"]}["StorageType"]) for m in listed) == [
        ("BucketSizeBytes", "StandardIAStorage"),
        ("BucketSizeBytes", "StandardStorage"),
        ("NumberOfObjects", "AllStorageTypes"),
    ]


def test_s3_request_metrics_count_real_requests_and_errors(cloud, cw):
    s3 = aws(cloud, "s3")
    s3.create_bucket(Bucket="metrics-requests")
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.put_bucket_metrics_configuration(Bucket="metrics-no-such-bucket", Id="All", MetricsConfiguration={"Id": "All"})
    with pytest.raises(s3.exceptions.ClientError) as mismatch:
        s3.put_bucket_metrics_configuration(Bucket="metrics-requests", Id="All", MetricsConfiguration={"Id": "Other"})
    assert mismatch.value.response["Error"]["Code"] == "InvalidArgument" and "'Other'" in mismatch.value.response["Error"]["Message"]
    with pytest.raises(s3.exceptions.ClientError) as missing:
        s3.get_bucket_metrics_configuration(Bucket="metrics-requests", Id="EntireBucket")
    assert missing.value.response["Error"]["Code"] == "NoSuchConfiguration"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.put_bucket_metrics_configuration(Bucket="metrics-requests", Id="EntireBucket", MetricsConfiguration={"Id": "EntireBucket"})
    s3.put_bucket_metrics_configuration(Bucket="metrics-requests", Id="Docs", MetricsConfiguration={"Id": "Docs", "Filter": {"Prefix": "docs/"}})
    assert s3.get_bucket_metrics_configuration(Bucket="metrics-requests", Id="Docs")["MetricsConfiguration"] == {"Id": "Docs", "Filter": {"Prefix": "docs/"}}
    listed = s3.list_bucket_metrics_configurations(Bucket="metrics-requests")["MetricsConfigurationList"]
    assert [c["Id"] for c in listed] == ["Docs", "EntireBucket"]

    time.sleep(2.5)  # the configuration requests above count too (AllRequests is every request): let them be published
    started = now()
    for n in range(5):
        s3.put_object(Bucket="metrics-requests", Key=f"docs/{n}.txt", Body=b"x")
    s3.get_object(Bucket="metrics-requests", Key="docs/0.txt")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="metrics-requests", Key="docs/missing.txt")
    s3.put_object(Bucket="metrics-requests", Key="other.txt", Body=b"y")

    def total(name: str, filter_id: str) -> float:
        dims = {"BucketName": "metrics-requests", "FilterId": filter_id}
        return sum(p["Sum"] for p in series(cw, "AWS/S3", name, dims, started, stat="Sum"))

    deadline = time.monotonic() + 20
    while total("AllRequests", "Docs") < 7 and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.5)  # one more pass: nothing else arrives
    assert total("AllRequests", "Docs") == 7  # 5 puts, 1 get, 1 failed get, all under docs/
    assert total("4xxErrors", "Docs") == 1
    assert total("5xxErrors", "Docs") == 0
    assert total("AllRequests", "EntireBucket") == 8  # and the put outside docs/
    assert total("4xxErrors", "EntireBucket") == 1

    s3.delete_bucket_metrics_configuration(Bucket="metrics-requests", Id="Docs")
    with pytest.raises(s3.exceptions.ClientError) as deleted:
        s3.delete_bucket_metrics_configuration(Bucket="metrics-requests", Id="Docs")
    assert deleted.value.response["Error"]["Code"] == "NoSuchConfiguration"


@pytest.mark.slow
def test_metrics_survive_kill_9_and_a_restart(monkeypatch: pytest.MonkeyPatch):
    """Every datapoint read before a kill -9 (or a clean stop) is read back after the restart, and collection goes on."""
    from tests.clouds import private_cloud
    from tests.functional.test_rds_recovery import create
    from tests.functional.test_rds_recovery_crash import client, kill_and_restart

    monkeypatch.setenv("RENTALIQ_LOCAL_METRICS_SECONDS", "1")
    with private_cloud("metrics-crash") as cloud:
        rds, cw = client(cloud), aws(cloud, "cloudwatch")
        create(rds, "durable-metrics", retention=0)
        wait_for(rds, "durable-metrics")
        dims = {"DBInstanceIdentifier": "durable-metrics"}
        since = now() - datetime.timedelta(minutes=5)
        wait_value(cw, "AWS/RDS", "CPUUtilization", dims, since, lambda v: v >= 0)
        before = series(cw, "AWS/RDS", "FreeStorageSpace", dims, since)
        assert before
        time.sleep(0.5)  # a datapoint is readable once stored and durable once its pass commits, milliseconds later

        kill_and_restart(cloud)
        after_kill = series(cw, "AWS/RDS", "FreeStorageSpace", dims, since)
        assert [p["Timestamp"] for p in before] == [p["Timestamp"] for p in after_kill[: len(before)]]
        assert [p["Maximum"] for p in before] == [p["Maximum"] for p in after_kill[: len(before)]]
        restarted = now()
        wait_value(cw, "AWS/RDS", "FreeStorageSpace", dims, restarted, lambda v: v > 0)

        cloud.stop()
        cloud.start(timeout=90)
        after_stop = series(cw, "AWS/RDS", "FreeStorageSpace", dims, since)
        assert [p["Timestamp"] for p in after_kill] == [p["Timestamp"] for p in after_stop[: len(after_kill)]]
        assert len(after_stop) > len(before)
        wait_value(cw, "AWS/RDS", "DatabaseConnections", dims, now(), lambda v: v >= 0)


def test_cloudformation_bucket_metrics_configurations_are_created_updated_and_removed(cloud):
    import json

    from tests.functional.test_cfn_guarantees import _wait_settled

    cfn, s3 = aws(cloud, "cloudformation"), aws(cloud, "s3")

    def template(*configs: dict) -> str:
        bucket = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "metrics-cfn-bucket", "MetricsConfigurations": list(configs)}}
        return json.dumps({"Resources": {"Files": bucket}})

    stack_id = cfn.create_stack(
        StackName="metrics-cfn", TemplateBody=template({"Id": "EntireBucket"}, {"Id": "Docs", "Prefix": "docs/", "TagFilters": [{"Key": "k", "Value": "v"}]})
    )["StackId"]
    assert _wait_settled(cfn, "metrics-cfn") == "CREATE_COMPLETE"
    configs = {c["Id"]: c for c in s3.list_bucket_metrics_configurations(Bucket="metrics-cfn-bucket")["MetricsConfigurationList"]}
    assert configs == {
        "Docs": {"Id": "Docs", "Filter": {"And": {"Prefix": "docs/", "Tags": [{"Key": "k", "Value": "v"}]}}},
        "EntireBucket": {"Id": "EntireBucket"},
    }
    cfn.update_stack(StackName="metrics-cfn", TemplateBody=template({"Id": "EntireBucket"}))
    assert _wait_settled(cfn, "metrics-cfn") == "UPDATE_COMPLETE"
    assert [c["Id"] for c in s3.list_bucket_metrics_configurations(Bucket="metrics-cfn-bucket")["MetricsConfigurationList"]] == ["EntireBucket"]
    cfn.delete_stack(StackName="metrics-cfn")
    assert _wait_settled(cfn, stack_id) == "DELETE_COMPLETE"
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_bucket_metrics_configurations(Bucket="metrics-cfn-bucket")


def test_get_metric_data_returns_aligned_periods_newest_first(rds, cw):
    make(rds, "metrics-data", retention=0)
    wait_for(rds, "metrics-data")
    dims = [{"Name": "DBInstanceIdentifier", "Value": "metrics-data"}]
    started = now()
    wait_value(cw, "AWS/RDS", "CPUUtilization", {"DBInstanceIdentifier": "metrics-data"}, started, lambda v: v >= 0)
    time.sleep(3)
    query = {
        "Id": "cpu",
        "MetricStat": {"Metric": {"Namespace": "AWS/RDS", "MetricName": "CPUUtilization", "Dimensions": dims}, "Period": 60, "Stat": "SampleCount"},
    }
    answer = cw.get_metric_data(MetricDataQueries=[query], StartTime=started - datetime.timedelta(minutes=3), EndTime=now() + datetime.timedelta(minutes=1))
    result = answer["MetricDataResults"][0]
    assert result["Label"] == "CPUUtilization" and result["StatusCode"] == "Complete"
    assert result["Timestamps"] == sorted(result["Timestamps"], reverse=True)  # TimestampDescending, CloudWatch's default
    assert all(t.second == 0 for t in result["Timestamps"])  # periods start on the minute
    assert sum(result["Values"]) >= 3  # one datapoint a second
    # The namespace and the exact dimension set are part of the metric's identity.
    other = {**query, "MetricStat": {**query["MetricStat"], "Metric": {**query["MetricStat"]["Metric"], "Namespace": "AWS/EC2"}}}
    assert cw.get_metric_data(MetricDataQueries=[other], StartTime=started, EndTime=now())["MetricDataResults"][0]["Values"] == []


def test_percentiles_are_answered_and_invalid_statistics_and_periods_are_client_errors(cw):
    """The hostile tester's 500s: GetMetricData with p50 (moto answered None), and a 'Median' or a 45 s period."""
    from botocore.exceptions import ClientError

    metric, start = f"lat-{time.time_ns()}", now() - datetime.timedelta(minutes=2)
    cw.put_metric_data(Namespace="RentalIQ/Test", MetricData=[{"MetricName": metric, "Value": float(v), "Timestamp": start} for v in range(1, 11)])
    query = {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "RentalIQ/Test", "MetricName": metric}, "Period": 60, "Stat": "p50"}}
    [result] = cw.get_metric_data(MetricDataQueries=[query], StartTime=start - datetime.timedelta(minutes=1), EndTime=now())["MetricDataResults"]
    assert result["Values"] == [5.0]  # nearest rank of 1..10
    bad = [
        lambda: cw.get_metric_data(MetricDataQueries=[{**query, "MetricStat": {**query["MetricStat"], "Stat": "Median"}}], StartTime=start, EndTime=now()),
        lambda: cw.get_metric_data(MetricDataQueries=[query, query], StartTime=start, EndTime=now()),
        lambda: cw.get_metric_statistics(Namespace="RentalIQ/Test", MetricName=metric, StartTime=start, EndTime=now(), Period=60, Statistics=["Median"]),
        lambda: cw.get_metric_statistics(Namespace="RentalIQ/Test", MetricName=metric, StartTime=start, EndTime=now(), Period=45, Statistics=["Average"]),
    ]
    for call in bad:
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, error.value.response["Error"]
