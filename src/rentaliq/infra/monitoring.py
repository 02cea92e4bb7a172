"""CloudWatch alarms, built from contract.ALARMS (the table `verify` audits them against), each notifying the
alerts topic on ALARM and on OK; and the environment's dashboard."""

from __future__ import annotations

import re

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from rentaliq.contract import ALARM_DIMENSION, ALARM_EVALUATION_PERIODS, ALARMS, REQUEST_METRICS_FILTER_ID, AlarmSpec
from rentaliq.environments import EnvironmentSpec


def _comparison(cfn_name: str) -> cloudwatch.ComparisonOperator:
    """CloudFormation's ``GreaterThanThreshold`` as CDK's ``ComparisonOperator.GREATER_THAN_THRESHOLD``."""
    return cloudwatch.ComparisonOperator[re.sub(r"(?<!^)(?=[A-Z])", "_", cfn_name).upper()]


_MISSING_DATA = {
    "missing": cloudwatch.TreatMissingData.MISSING,
    "notBreaching": cloudwatch.TreatMissingData.NOT_BREACHING,
    "breaching": cloudwatch.TreatMissingData.BREACHING,
    "ignore": cloudwatch.TreatMissingData.IGNORE,
}


def _construct_id(what: str) -> str:
    """high-cpu -> HighCpu, 5xx-errors -> Files5xxErrors (a construct id must not start with a digit)."""
    name = "".join(word.title() for word in what.split("-"))
    return name if name[0].isalpha() else f"Files{name}"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: EnvironmentSpec,
        instance: rds.DatabaseInstance,
        files_bucket: s3.IBucket,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        env, mon = spec.name.value, spec.monitoring
        dimensions = {
            "AWS/RDS": {ALARM_DIMENSION: instance.instance_identifier},
            "AWS/S3": {"BucketName": files_bucket.bucket_name, "FilterId": REQUEST_METRICS_FILTER_ID},
        }
        notify = actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        for alarm in ALARMS if mon.alarms else ():
            if not alarm.enabled(mon):
                continue
            construct = self._alarm(env, spec, alarm, dimensions[alarm.namespace])
            construct.add_alarm_action(notify)
            construct.add_ok_action(notify)
            self.alarms.append(construct)

    def _alarm(self, env: str, spec: EnvironmentSpec, alarm: AlarmSpec, dimensions: dict[str, str]) -> cloudwatch.Alarm:
        mon = spec.monitoring
        metric = cloudwatch.Metric(
            namespace=alarm.namespace,
            metric_name=alarm.metric,
            dimensions_map=dimensions,
            period=Duration.seconds(alarm.period(mon)),
            statistic=alarm.statistic,
        )
        return cloudwatch.Alarm(
            self,
            _construct_id(alarm.what),
            alarm_name=alarm.name(env),
            alarm_description=alarm.description(mon),
            metric=metric,
            threshold=alarm.threshold(mon),
            evaluation_periods=ALARM_EVALUATION_PERIODS,
            comparison_operator=_comparison(alarm.comparison),
            treat_missing_data=_MISSING_DATA[alarm.treat_missing_data],
        )
