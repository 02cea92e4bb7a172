"""Which series make up an environment's monitoring: the spec's RDS and S3 metrics, for the env's resources.

The metric lists are the spec's "Monitoring & Alerting" section (plus ReplicaLag for replicas), each with the
unit and statistic AWS documents for it. The resources are read live, not assumed: the env's DB instance
and the read replicas RDS reports for it, and the env's buckets with the S3 series CloudWatch actually holds
for them (a bucket's storage types and request-metrics filter ids are only known from ListMetrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from rentaliq import contract, naming
from rentaliq.deploy.target import Target
from rentaliq.ops.monitoring.models import MetricKey

RDS = "AWS/RDS"
S3 = "AWS/S3"
DB_DIMENSION = contract.ALARM_DIMENSION
BUCKET_DIMENSION = "BucketName"


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    stat: str


def _read_by(stat: str, units: dict[str, str]) -> tuple[MetricInfo, ...]:
    """Metrics read with one statistic, from their names and units (a group shares its statistic)."""
    return tuple(MetricInfo(name, unit, stat) for name, unit in units.items())


# The spec's RDS and S3 metrics (contract.py, the table the dashboard and verify use too).
RDS_METRICS: tuple[MetricInfo, ...] = _read_by("Average", contract.RDS_METRICS)
REPLICA_METRICS: tuple[MetricInfo, ...] = _read_by("Average", {"ReplicaLag": "Seconds"})

# Storage metrics are daily, per storage type; request metrics exist only for a bucket with a request-metrics
# configuration, per its filter id, and are counted per period (Sum).
S3_METRICS: tuple[MetricInfo, ...] = (
    *_read_by("Average", {name: unit for name, (unit, _) in contract.S3_STORAGE_METRICS.items()}),
    *_read_by("Sum", contract.S3_REQUEST_METRICS),
)
DAILY = frozenset(contract.S3_STORAGE_METRICS)
"""Metrics S3 reports once a day: read per day, over days, whatever the window."""
# What a bucket's storage metrics are reported under when CloudWatch holds none yet (AWS's names).
DEFAULT_STORAGE_TYPE = {name: storage_type for name, (_, storage_type) in contract.S3_STORAGE_METRICS.items()}
_S3_BY_NAME = {m.name: m for m in S3_METRICS}
UNITS = {m.name: m.unit for m in (*RDS_METRICS, *REPLICA_METRICS, *S3_METRICS)}
"""A metric's unit by its name (alarm thresholds are shown in it)."""
_DB_NOT_FOUND = ("DBInstanceNotFound", "DBInstanceNotFoundFault")


@dataclass(frozen=True)
class Resources:
    """The env's resources to watch, and a note for anything that could not be found."""

    instances: tuple[str, ...]
    replicas: tuple[str, ...]
    buckets: tuple[str, ...]
    notes: tuple[str, ...]
    live: dict[str, Any] | None = None
    """The primary instance as DescribeDBInstances reported it; None when it does not exist."""


def env_buckets(env: str) -> tuple[str, ...]:
    """The files bucket, and in PROD the access-logs bucket it delivers to."""
    return (naming.files_bucket(env), naming.access_logs_bucket()) if env == "prod" else (naming.files_bucket(env),)


def resources(target: Target, env: str) -> Resources:
    """The env's DB instance and its replicas (DescribeDBInstances), and its buckets."""
    primary = naming.db_instance_id(env)
    notes: list[str] = []
    replicas: tuple[str, ...] = ()
    live: dict[str, Any] | None = None
    try:
        found = target.client("rds").describe_db_instances(DBInstanceIdentifier=primary)["DBInstances"]
        live = found[0] if found else None
        replicas = tuple(live.get("ReadReplicaDBInstanceIdentifiers") or ()) if live else ()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in _DB_NOT_FOUND:
            raise
        notes.append(f"{primary} does not exist (is {env} deployed?): showing the metrics CloudWatch still holds for it")
    return Resources((primary, *replicas), replicas, env_buckets(env), tuple(notes), live)


def rds_keys(found: Resources) -> list[MetricKey]:
    keys = []
    for instance in found.instances:
        metrics = RDS_METRICS + (REPLICA_METRICS if instance in found.replicas else ())
        keys += [MetricKey(RDS, m.name, ((DB_DIMENSION, instance),), m.stat, m.unit) for m in metrics]
    return keys


def _listed(target: Target, bucket: str) -> list[dict[str, Any]]:
    """Every AWS/S3 series CloudWatch holds for the bucket (ListMetrics, all pages)."""
    pages = target.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace=S3, Dimensions=[{"Name": BUCKET_DIMENSION, "Value": bucket}])
    return [metric for page in pages for metric in page.get("Metrics", [])]


def s3_keys(target: Target, buckets: tuple[str, ...]) -> list[MetricKey]:
    """The spec's S3 series of each bucket: those CloudWatch holds, and the storage ones even when it holds none yet."""
    keys: list[MetricKey] = []
    for bucket in buckets:
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for metric in _listed(target, bucket):
            info = _S3_BY_NAME.get(metric.get("MetricName", ""))
            if info is None:
                continue
            extra = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", []) if d["Name"] != BUCKET_DIMENSION))
            seen.add((info.name, extra))
        for name, storage_type in DEFAULT_STORAGE_TYPE.items():
            if not any(n == name for n, _ in seen):
                seen.add((name, (("StorageType", storage_type),)))
        order = [m.name for m in S3_METRICS]
        for name, extra in sorted(seen, key=lambda item: (order.index(item[0]), item[1])):
            info = _S3_BY_NAME[name]
            keys.append(MetricKey(S3, name, ((BUCKET_DIMENSION, bucket), *extra), info.stat, info.unit))
    return keys
