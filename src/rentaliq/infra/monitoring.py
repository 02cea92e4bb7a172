"""CloudWatch alarms on the database: the spec's high-CPU alarm plus low free storage and high connections."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_rds as rds
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import GIB
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge

ABOVE, BELOW = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD


class Monitoring(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, instance: rds.DatabaseInstance) -> None:
        super().__init__(scope, id)
        env, mon = spec.name.value, spec.monitoring
        period = Duration.seconds(mon.cpu_period_s)
        # (construct id, name suffix, description, metric, threshold, comparison)
        alarms = [
            ("HighCpu", "high-cpu", f"Alert when CPU exceeds {mon.cpu_threshold_percent:g}%",
             instance.metric_cpu_utilization(period=period, statistic="Average"), mon.cpu_threshold_percent, ABOVE),
            ("LowFreeStorage", "low-free-storage", f"Alert when free storage falls below {mon.free_storage_threshold_gib:g} GiB",
             instance.metric_free_storage_space(period=period, statistic="Minimum"), mon.free_storage_threshold_gib * GIB, BELOW),
            ("HighConnections", "high-connections", f"Alert when connections exceed {mon.connections_threshold}",
             instance.metric_database_connections(period=period, statistic="Maximum"), mon.connections_threshold, ABOVE),
        ] if mon.alarms else []
        self.alarms = [
            cloudwatch.Alarm(self, construct_id, alarm_name=naming.alarm(env, suffix), alarm_description=description, metric=metric,
                             threshold=threshold, evaluation_periods=1, comparison_operator=comparison)
            for construct_id, suffix, description, metric, threshold, comparison in alarms
        ]
        for alarm in self.alarms:
            acknowledge(alarm, id="HIPAA.Security-CloudWatchAlarmAction", reason="Spec: recommended alarms with no action; notification routing (SNS) is a Phase 2 item.")
