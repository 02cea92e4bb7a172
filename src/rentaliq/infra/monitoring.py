"""CloudWatch alarms on the database, built from contract.ALARMS (the table `verify` audits them against)."""

from __future__ import annotations

import re

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_rds as rds
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import ALARM_EVALUATION_PERIODS, ALARMS
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge


def _comparison(cfn_name: str) -> cloudwatch.ComparisonOperator:
    """CloudFormation's ``GreaterThanThreshold`` as CDK's ``ComparisonOperator.GREATER_THAN_THRESHOLD``."""
    return cloudwatch.ComparisonOperator[re.sub(r"(?<!^)(?=[A-Z])", "_", cfn_name).upper()]


class Monitoring(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, instance: rds.DatabaseInstance) -> None:
        super().__init__(scope, id)
        env, mon = spec.name.value, spec.monitoring
        period = Duration.seconds(mon.cpu_period_s)
        self.alarms = [
            cloudwatch.Alarm(
                self,
                "".join(word.title() for word in alarm.what.split("-")),  # high-cpu -> HighCpu
                alarm_name=naming.alarm(env, alarm.what),
                alarm_description=alarm.description(mon),
                metric=instance.metric(alarm.metric, period=period, statistic=alarm.statistic),
                threshold=alarm.threshold(mon),
                evaluation_periods=ALARM_EVALUATION_PERIODS,
                comparison_operator=_comparison(alarm.comparison),
            )
            for alarm in (ALARMS if mon.alarms else ())
        ]
        for alarm in self.alarms:
            acknowledge(
                alarm,
                id="HIPAA.Security-CloudWatchAlarmAction",
                reason="Spec: recommended alarms with no action; notification routing (SNS) is a Phase 2 item.",
            )
