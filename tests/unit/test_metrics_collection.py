"""The pieces of the local cloud's metrics that need no server: rules, parsing, CloudWatch's period arithmetic,
and the /proc and tcp_info readers against this very process and a real loopback socket."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from moto.cloudwatch.models import CloudWatchBackend, Dimension, MetricDatum

from rentaliq.local import rds_classes, rds_storage_autoscaling
from rentaliq.local.cfn.s3 import _metrics_configuration
from rentaliq.local.metrics import cloudwatch_fixes, network, procfs, publish, s3_requests

GIB = 1024**3


@pytest.mark.parametrize(
    ("instance_class", "vcpus"),
    [("db.t3.micro", 2), ("db.t4g.medium", 2), ("db.m5.large", 2), ("db.m5.xlarge", 4), ("db.r6g.4xlarge", 16), ("db.m5.24xlarge", 96), ("db.x9.huge", None)],
)
def test_vcpus_of_instance_classes(instance_class, vcpus):
    assert rds_classes.vcpus(instance_class) == vcpus


def test_autoscaling_increment_is_the_greatest_of_10_gib_10_percent_and_7_hour_growth():
    assert rds_storage_autoscaling.increment_gib(20, []) == 10
    assert rds_storage_autoscaling.increment_gib(500, []) == 50
    # 1 GiB more used every hour, 95 of 100 GiB used: in 7 h 102 GiB, 2 beyond the allocation -> still 10.
    assert rds_storage_autoscaling.increment_gib(100, [(0.0, 94 * GIB), (3600.0, 95 * GIB)]) == 10
    # 10 GiB an hour: 165 GiB in 7 h, 65 beyond 100.
    assert rds_storage_autoscaling.increment_gib(100, [(0.0, 85 * GIB), (3600.0, 95 * GIB)]) == 65


def _db(allocated=20, maximum=None, status="available"):
    db = SimpleNamespace(dbi_resource_id=f"db-{allocated}-{maximum}", allocated_storage=allocated, max_allocated_storage=maximum, status=status, events=[])
    db.add_event = db.events.append
    return db


def test_autoscaler_waits_out_the_window_and_the_cooldown_and_needs_a_maximum(monkeypatch):
    monkeypatch.setenv(rds_storage_autoscaling.WINDOW_ENV, "300")
    scaler = rds_storage_autoscaling.StorageAutoscaler()
    db = _db(20, 100)
    low = 1.5 * GIB  # under 10 % of 20 GiB
    assert not scaler.observe(db, low, now=0.0)
    assert not scaler.observe(db, low, now=299.0)
    assert not scaler.observe(db, 5 * GIB, now=300.0)  # recovered: the window starts again
    assert not scaler.observe(db, low, now=301.0)
    assert scaler.observe(db, low, now=601.0)
    assert db.allocated_storage == 30 and db.events == [rds_storage_autoscaling.AUTOSCALED]
    # Within 6 hours of that modification nothing more happens, however full.
    assert not scaler.observe(db, 0.1 * GIB, now=2000.0) and db.allocated_storage == 30
    capped = _db(20, 25)
    scaler.observe(capped, low, now=0.0)
    assert scaler.observe(capped, low, now=400.0) and capped.allocated_storage == 25
    unbounded = _db(20, None)
    scaler.observe(unbounded, low, now=0.0)
    assert not scaler.observe(unbounded, low, now=400.0) and unbounded.allocated_storage == 20


@pytest.mark.parametrize(
    ("title", "client"),
    [
        ("postgres: master app 127.0.0.1(51234) idle", True),
        ("postgres: master app [local] SELECT", True),
        ("postgres: rentaliq-db: master app 127.0.0.1(5) idle in transaction", True),
        ("postgres: walsender rdsadmin 127.0.0.1(40000) streaming 0/3000148", False),
        ("postgres: checkpointer ", False),
        ("postgres: autovacuum worker app", False),
        ("postgres: logical replication launcher ", False),
        ("postgres: parallel worker for PID 1234 ", False),
    ],
)
def test_client_backends_are_told_from_background_processes(title, client):
    assert procfs.is_client_title(title) is client


def test_process_counters_include_children_and_grow_with_work():
    before = procfs.sample(os.getpid(), time.monotonic())
    burn = "import time; t=time.process_time()\nwhile time.process_time()-t<0.3: pass\nprint('burnt', flush=True)\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "burnt\n"  # however busy the machine is
        during = procfs.sample(os.getpid(), time.monotonic())
        assert child.pid in procfs.children(os.getpid())
    finally:
        child.kill()
        child.wait()
    after = procfs.sample(os.getpid(), time.monotonic())
    assert during.cpu_ticks - before.cpu_ticks >= 0.2 * procfs.CLOCK_TICKS  # the live child's CPU
    assert after.cpu_ticks >= during.cpu_ticks  # reaped: moved into our cutime/cstime, not lost


def test_tcp_counters_of_a_real_loopback_connection():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    try:
        client.sendall(b"x" * 50_000)
        received = 0
        while received < 50_000:
            received += len(conn.recv(65536))
        conn.sendall(b"y" * 7_000)
        client.recv(65536)
        time.sleep(0.1)
        sockets = network.read_sockets([port])[port]
        assert len(sockets) == 1  # the server's side only
        assert network.growth({}, sockets) == (50_000, 7_000)
        assert network.growth(sockets, sockets) == (0, 0)
    finally:
        for s in (client, conn, server):
            s.close()


def test_directory_bytes_counts_allocated_blocks(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_bytes(os.urandom(100_000))
    assert 100_000 <= procfs.directory_bytes(tmp_path) < 200_000


def _datum(name, value, at, **dimensions):
    return MetricDatum("AWS/S3", name, value, [{"Name": k, "Value": v} for k, v in dimensions.items()], at, "Bytes")


def test_cloudwatch_periods_align_and_dimension_sets_match_exactly():
    backend = CloudWatchBackend("us-east-1", "123456789012")
    t0 = datetime.datetime(2026, 11, 30, 10, 0, 30)
    backend.metric_data = [
        _datum("BucketSizeBytes", v, t0 + datetime.timedelta(seconds=20 * i), BucketName="b", StorageType="StandardStorage") for i, v in enumerate([1, 2, 3, 4])
    ]
    backend.metric_data.append(_datum("BucketSizeBytes", 100, t0, BucketName="b"))
    stats = cloudwatch_fixes.get_metric_statistics(
        backend,
        "AWS/S3",
        "BucketSizeBytes",
        t0 - datetime.timedelta(hours=1),
        t0 + datetime.timedelta(hours=1),
        60,
        ["Sum", "SampleCount"],
        [{"Name": "StorageType", "Value": "StandardStorage"}, {"Name": "BucketName", "Value": "b"}],
    )
    assert [(s.timestamp, s.sum, s.sample_count) for s in stats] == [
        (datetime.datetime(2026, 11, 30, 10, 0), 3, 2),
        (datetime.datetime(2026, 11, 30, 10, 1), 7, 2),
    ]
    only_name = cloudwatch_fixes.get_metric_statistics(
        backend, "AWS/S3", "BucketSizeBytes", t0, t0 + datetime.timedelta(hours=1), 60, ["Sum"], [{"Name": "BucketName", "Value": "b"}]
    )
    assert [s.sum for s in only_name] == [100]
    _, metrics = cloudwatch_fixes.list_metrics(backend, None, "AWS/S3", "", [{"Name": "BucketName", "Value": "b"}])
    assert sorted(len(m.dimensions) for m in metrics) == [1, 2]  # each metric once, however many datapoints


def test_retention_prunes_collected_metrics_only():
    backend = publish.cloudwatch_backends["123456789012"]["eu-west-1"]
    old = datetime.datetime(2026, 1, 1)
    backend.metric_data = [
        MetricDatum("AWS/RDS", "CPUUtilization", 1, [], old, "Percent"),
        MetricDatum("Custom/App", "Orders", 1, [], old, "Count"),
        MetricDatum("AWS/S3", "BucketSizeBytes", 1, [], old, "Bytes"),
    ]
    publish.prune(old + datetime.timedelta(hours=1), old - datetime.timedelta(days=1))
    assert [d.namespace for d in backend.metric_data] == ["Custom/App", "AWS/S3"]
    publish.prune(old + datetime.timedelta(hours=1), old + datetime.timedelta(days=1))
    assert [d.namespace for d in backend.metric_data] == ["Custom/App"]
    assert publish.retention(60) == datetime.timedelta(days=1) and publish.retention(3600) == datetime.timedelta(days=15)


def test_cloudformation_metrics_configurations_in_the_api_shape():
    assert _metrics_configuration({"Id": "All"}) == {"Id": "All"}
    assert _metrics_configuration({"Id": "D", "Prefix": "docs/"}) == {"Id": "D", "Filter": {"Prefix": "docs/"}}
    assert _metrics_configuration({"Id": "T", "TagFilters": [{"Key": "k", "Value": "v"}]}) == {"Id": "T", "Filter": {"Tag": {"Key": "k", "Value": "v"}}}
    both = _metrics_configuration({"Id": "B", "Prefix": "p/", "TagFilters": [{"Key": "k", "Value": "v"}]})
    assert both == {"Id": "B", "Filter": {"And": {"Prefix": "p/", "Tags": [{"Key": "k", "Value": "v"}]}}}


def test_request_filters_match_by_prefix():
    assert s3_requests._matches({"Id": "a"}, "anything")
    assert s3_requests._matches({"Id": "d", "Filter": {"Prefix": "docs/"}}, "docs/x")
    assert not s3_requests._matches({"Id": "d", "Filter": {"Prefix": "docs/"}}, "img/x")
    assert s3_requests._matches({"Id": "d", "Filter": {"And": {"Prefix": "docs/"}}}, "docs/x")
    assert not s3_requests._matches({"Id": "t", "Filter": {"Tag": {"Key": "k", "Value": "v"}}}, "docs/x")


def test_dimension_lists_are_shared_between_datapoints():
    a = publish._dimensions({"DBInstanceIdentifier": "x"})
    assert a is publish._dimensions({"DBInstanceIdentifier": "x"}) and a == [Dimension("DBInstanceIdentifier", "x")]


def test_a_period_under_one_second_and_too_many_datapoints_are_refused_as_cloudwatch_does():
    from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue

    backend = CloudWatchBackend("us-east-1", "123456789012")
    t0 = datetime.datetime(2026, 11, 30, 10, 0)
    with pytest.raises(InvalidParameterValue):
        cloudwatch_fixes.get_metric_statistics(backend, "AWS/RDS", "CPUUtilization", t0, t0 + datetime.timedelta(hours=1), 0, ["Sum"], [])
    with pytest.raises(InvalidParameterCombination, match="1,441 datapoints"):
        cloudwatch_fixes.get_metric_statistics(backend, "AWS/RDS", "CPUUtilization", t0, t0 + datetime.timedelta(seconds=1441), 1, ["Sum"], [])
    assert cloudwatch_fixes.get_metric_statistics(backend, "AWS/RDS", "CPUUtilization", t0, t0 + datetime.timedelta(days=1), 60, ["Sum"], []) == []
