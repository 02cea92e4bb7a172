"""The replica-lag alarm a read replica gets with ``rentaliq replica create``, removed with the replica.

Replicas are made by an operator, not by the stack, so their alarm cannot live in the template: it is created
beside the replica, from the env spec's threshold (``monitoring.replica_lag_threshold_s``), and notifies the
environment's alerts topic on ALARM and on OK like every alarm the stack makes."""

from __future__ import annotations

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.contract import ALARM_DIMENSION, ALARM_EVALUATION_PERIODS, replica_lag_alarm
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.recovery.errors import from_aws


def alerts_topic_arn(target: Target, env: str) -> str | None:
    """The ARN of ``rentaliq-{env}-alerts``, or None when the environment has no such topic (deployed before it)."""
    name = naming.alerts_topic(env)
    for page in target.client("sns").get_paginator("list_topics").paginate():
        for topic in page["Topics"]:
            if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                return str(topic["TopicArn"])
    return None


def put(target: Target, spec: EnvironmentSpec, replica: str) -> str | None:
    """Create (or update) the replica's lag alarm; its name, or None when the spec turns alarms off."""
    mon = spec.monitoring
    if not mon.alarms:
        return None
    env, name = spec.name.value, replica_lag_alarm(replica)
    topic = alerts_topic_arn(target, env)
    actions = [topic] if topic else []
    try:
        target.client("cloudwatch").put_metric_alarm(
            AlarmName=name,
            AlarmDescription=f"Alert when read replica {replica} lags more than {mon.replica_lag_threshold_s:g} s behind its primary",
            Namespace="AWS/RDS",
            MetricName="ReplicaLag",
            Dimensions=[{"Name": ALARM_DIMENSION, "Value": replica}],
            Statistic="Maximum",
            Period=mon.period_s,
            EvaluationPeriods=ALARM_EVALUATION_PERIODS,
            Threshold=float(mon.replica_lag_threshold_s),
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="missing",
            ActionsEnabled=True,
            AlarmActions=actions,
            OKActions=actions,
            Tags=[{"Key": k, "Value": v} for k, v in spec.resource_tags().items()],
        )
    except ClientError as error:
        raise from_aws(error, env, f"replica-lag alarm {name}") from None
    return name


def remove(target: Target, env: str, replica: str) -> None:
    """Delete the replica's lag alarm (none is fine: DeleteAlarms ignores unknown names)."""
    try:
        target.client("cloudwatch").delete_alarms(AlarmNames=[replica_lag_alarm(replica)])
    except ClientError as error:
        raise from_aws(error, env, f"replica-lag alarm {replica_lag_alarm(replica)}") from None
