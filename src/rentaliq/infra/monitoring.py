"""CloudWatch alarms on the database: the spec's high-CPU alarm plus low free storage and high connections."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_rds as rds
from constructs import Construct

from rentaliq import naming
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge

GIB = 1024**3


class Monitoring(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, instance: rds.DatabaseInstance) -> None:
        super().__init__(scope, id)
        env, mon = spec.name.value, spec.monitoring
        period = Duration.seconds(mon.cpu_period_s)
        self.alarms = [
            cloudwatch.Alarm(
                self,
                "HighCpu",
                alarm_name=naming.alarm(env, "high-cpu"),
                alarm_description=f"Alert when CPU exceeds {mon.cpu_threshold_percent:g}%",
                metric=instance.metric_cpu_utilization(period=period, statistic="Average"),
                threshold=mon.cpu_threshold_percent,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
            cloudwatch.Alarm(
                self,
                "LowFreeStorage",
                alarm_name=naming.alarm(env, "low-free-storage"),
                alarm_description=f"Alert when free storage falls below {mon.free_storage_threshold_gib:g} GiB",
                metric=instance.metric_free_storage_space(period=period, statistic="Minimum"),
                threshold=mon.free_storage_threshold_gib * GIB,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            ),
            cloudwatch.Alarm(
                self,
                "HighConnections",
                alarm_name=naming.alarm(env, "high-connections"),
                alarm_description=f"Alert when connections exceed {mon.connections_threshold}",
                metric=instance.metric_database_connections(period=period, statistic="Maximum"),
                threshold=mon.connections_threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
        ] if mon.alarms else []
        for alarm in self.alarms:
            acknowledge(alarm, id="HIPAA.Security-CloudWatchAlarmAction", reason="Spec: recommended alarms with no action; notification routing (SNS) is a Phase 2 item.")
