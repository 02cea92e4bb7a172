"""CloudWatch metrics the local cloud publishes itself, measured from real servers and real requests.

- ``procfs``, ``network``: what Linux says about a PostgreSQL server (CPU, I/O, connections, disk, TCP bytes);
- ``rds``: those measurements as ``AWS/RDS`` datapoints for one instance;
- ``s3_storage``: ``AWS/S3`` BucketSizeBytes / NumberOfObjects; ``s3_metrics_api`` + ``s3_requests``: the
  bucket metrics configurations moto lacks, and the request metrics they switch on;
- ``ec2_status``: ``AWS/EC2`` status checks (0) for every running EC2 instance (the NAT instances);
- ``publish``: datapoints into moto's CloudWatch store, pruned, committed durably;
- ``cloudwatch_fixes``: ListMetrics / GetMetricStatistics / GetMetricData answering as CloudWatch does;
- ``collector``: the clock thread that runs a pass every ``RENTALIQ_LOCAL_METRICS_SECONDS``.
"""

from __future__ import annotations

import os

from rentaliq.local.metrics.collector import INTERVAL_ENV, MetricsCollector
from rentaliq.local.periodic import OneRunning

_collector = OneRunning(MetricsCollector)


def install() -> None:
    """Patch moto (idempotent): the S3 metrics API, the S3 request counter, CloudWatch's read APIs."""
    from rentaliq.local import rds_storage_autoscaling
    from rentaliq.local.metrics import cloudwatch_fixes, s3_metrics_api, s3_requests

    s3_metrics_api.install()
    s3_requests.install()
    cloudwatch_fixes.install()
    rds_storage_autoscaling.install()


def start() -> None:
    """Start collecting (after the state was restored and the servers started); ``RENTALIQ_LOCAL_METRICS_SECONDS=0``
    turns collection off (the overhead benchmark's baseline)."""
    if os.environ.get(INTERVAL_ENV, "").strip() not in ("0", "0.0", "off"):
        _collector.start()


def stop() -> None:
    _collector.stop()
