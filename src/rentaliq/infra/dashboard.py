"""The environment's CloudWatch dashboard ``rentaliq-{env}``: the spec's RDS and S3 metrics and the alarms' states.

Metrics are named with literal dimensions (the identifiers the naming convention fixes), so the body is plain
JSON that `verify` and the tests read back metric by metric; only the alarm ARNs are resolved at deploy time.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import ALARM_DIMENSION, REQUEST_METRICS_FILTER_ID, S3_REQUEST_METRICS, S3_STORAGE_METRICS
from rentaliq.environments import EnvironmentSpec

# Graphs, each with the RDS metrics it plots together (same unit, so one axis); together, every metric of
# contract.RDS_METRICS (tests/unit/test_monitoring_stack.py checks the synthesized body).
RDS_GRAPHS = (
    ("CPU utilization (%)", ("CPUUtilization",)),
    ("Database connections", ("DatabaseConnections",)),
    ("Free storage space (bytes)", ("FreeStorageSpace",)),
    ("Read / write latency (s)", ("ReadLatency", "WriteLatency")),
    ("Read / write IOPS", ("ReadIOPS", "WriteIOPS")),
    ("Network throughput (bytes/s)", ("NetworkReceiveThroughput", "NetworkTransmitThroughput")),
)
DAY = Duration.days(1)


class Dashboard(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, alarms: list[cloudwatch.Alarm]) -> None:
        super().__init__(scope, id)
        env = spec.name.value
        db_id, bucket = naming.db_instance_id(env), naming.files_bucket(env)

        def rds_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace="AWS/RDS", metric_name=name, dimensions_map={ALARM_DIMENSION: db_id})

        rows: list[list[cloudwatch.IWidget]] = [
            [cloudwatch.TextWidget(markdown=f"# RentalIQ {env.upper()}\nDatabase `{db_id}`, files bucket `{bucket}`.", width=24, height=2)],
        ]
        if alarms:
            rows.append([cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=3)])
        graphs: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title=title, left=[rds_metric(m) for m in names], width=8, height=6) for title, names in RDS_GRAPHS
        ]
        rows += [graphs[i : i + 3] for i in range(0, len(graphs), 3)]
        s3_graphs: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title=f"Files bucket: {name}",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/S3",
                        metric_name=name,
                        dimensions_map={"BucketName": bucket, "StorageType": storage_type},
                        period=DAY,
                        statistic="Average",
                    )
                ],
                width=8,
                height=6,
            )
            for name, (_unit, storage_type) in S3_STORAGE_METRICS.items()
        ]
        if spec.monitoring.request_metrics:
            s3_graphs.append(
                cloudwatch.GraphWidget(
                    title="Files bucket: requests and errors",
                    left=[
                        cloudwatch.Metric(
                            namespace="AWS/S3",
                            metric_name=name,
                            dimensions_map={"BucketName": bucket, "FilterId": REQUEST_METRICS_FILTER_ID},
                            statistic="Sum",
                        )
                        for name in S3_REQUEST_METRICS
                    ],
                    width=8,
                    height=6,
                )
            )
        rows.append(s3_graphs)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=naming.dashboard(env), widgets=rows)
