"""Alarm actions: the SNS message CloudWatch publishes on a state change, and the Action history item.

CloudWatch publishes one message per SNS action with a per-protocol body (``MessageStructure=json``): the JSON
alarm document for HTTP(S), SQS, Lambda and email-json, and a human-readable text for plain email. The subject is
``ALARM: "name" in US East (N. Virginia)`` (at most 100 characters, SNS's limit). An action that is not an SNS topic
the local cloud can publish to is recorded as a failed Action, never raised.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from rentaliq.local.alarms import history
from rentaliq.local.alarms.evaluation import iso

log = logging.getLogger(__name__)

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ca-central-1": "Canada (Central)",
    "sa-east-1": "South America (Sao Paulo)",
}


def region_name(region: str) -> str:
    return REGION_NAMES.get(region, region)


def _epoch(moment: datetime) -> float:
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).timestamp()


def _statistic(alarm: Any) -> tuple[str, str]:
    if alarm.extended_statistic:
        return "ExtendedStatistic", alarm.extended_statistic
    return "Statistic", (alarm.statistic or "").upper()


def alarm_message(alarm: Any, old_state: str) -> dict[str, Any]:
    """The JSON document CloudWatch publishes to SNS for a state change of a metric alarm."""
    stat_type, stat = _statistic(alarm)
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": alarm.alarm_arn.split(":")[4],
        "AlarmConfigurationUpdatedTimestamp": iso(_epoch(alarm.configuration_updated_timestamp)),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": iso(_epoch(alarm.state_updated_timestamp)),
        "Region": region_name(alarm.region_name),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": stat_type,
            "Statistic": stat,
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": int(alarm.period or 0),
            "EvaluationPeriods": int(alarm.evaluation_periods or 0),
            "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods or 0),
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": float(alarm.threshold or 0.0),
            "TreatMissingData": alarm.treat_missing_data or "missing",
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
        },
    }


def subject(alarm: Any) -> str:
    return f'{alarm.state_value}: "{alarm.name}" in {region_name(alarm.region_name)}'[:100]


def email_text(alarm: Any, old_state: str) -> str:
    """The plain-text body CloudWatch sends to email subscriptions."""
    when = datetime.fromtimestamp(_epoch(alarm.state_updated_timestamp), UTC).strftime("%A %d %B, %Y %H:%M:%S UTC")
    stat_type, stat = _statistic(alarm)
    dims = ", ".join(f"{d.name} = {d.value}" for d in alarm.dimensions)
    region = alarm.region_name
    n, m = int(alarm.evaluation_periods or 0), int(alarm.datapoints_to_alarm or alarm.evaluation_periods or 0)
    return (
        f'You are receiving this email because your Amazon CloudWatch Alarm "{alarm.name}" in the {region_name(region)} region '
        f'has entered the {alarm.state_value} state, because "{alarm.state_reason}" at "{when}".\n\n'
        "View this alarm in the AWS Management Console:\n"
        f"https://{region}.console.aws.amazon.com/cloudwatch/deeplink.js?region={region}#alarmsV2:alarm/{alarm.name}\n\n"
        "Alarm Details:\n"
        f"- Name:                       {alarm.name}\n"
        f"- Description:                {alarm.description or ''}\n"
        f"- State Change:               {old_state} -> {alarm.state_value}\n"
        f"- Reason for State Change:    {alarm.state_reason}\n"
        f"- Timestamp:                  {when}\n"
        f"- AWS Account:                {alarm.alarm_arn.split(':')[4]}\n"
        f"- Alarm Arn:                  {alarm.alarm_arn}\n\n"
        "Threshold:\n"
        f"- The alarm is in the ALARM state when the metric is {alarm.comparison_operator} {float(alarm.threshold or 0.0)} "
        f"for at least {m} of the last {n} period(s) of {alarm.period} seconds.\n\n"
        "Monitored Metric:\n"
        f"- MetricNamespace:                     {alarm.namespace}\n"
        f"- MetricName:                          {alarm.metric_name}\n"
        f"- Dimensions:                          [{dims}]\n"
        f"- Period:                              {alarm.period} seconds\n"
        f"- {stat_type}:{' ' * (37 - len(stat_type))}{stat.title() if stat_type == 'Statistic' else stat}\n"
        f"- Unit:                                {alarm.unit or 'not specified'}\n"
        f"- TreatMissingData:                    {alarm.treat_missing_data or 'missing'}\n\n"
        "State Change Actions:\n"
        f"- OK: [{', '.join(alarm.ok_actions or [])}]\n"
        f"- ALARM: [{', '.join(alarm.alarm_actions or [])}]\n"
        f"- INSUFFICIENT_DATA: [{', '.join(alarm.insufficient_data_actions or [])}]\n"
    )


def actions_for(alarm: Any) -> list[str]:
    by_state = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions, "INSUFFICIENT_DATA": alarm.insufficient_data_actions}
    return list(by_state.get(alarm.state_value) or [])


# The alarm's outbox: actions a state change owes, committed with the change before they run. A crash between
# the two runs them after the restart (at least once, as SNS delivers), and never sends a notification whose state
# change the alarm history does not hold.
PENDING = "rentaliq_pending_actions"


def enqueue(alarm: Any, old_state: str) -> None:
    """Owe the actions of the alarm's new state (when enabled), with the message as of this change."""
    arns = actions_for(alarm) if alarm.actions_enabled else []
    if not arns:
        return
    owed = {
        "arns": arns,
        "document": json.dumps(alarm_message(alarm, old_state), separators=(",", ":")),
        "email": email_text(alarm, old_state),
        "subject": subject(alarm),
        "state_updated_ms": int(_epoch(alarm.state_updated_timestamp) * 1000),
    }
    setattr(alarm, PENDING, [*(getattr(alarm, PENDING, None) or []), owed])


def owed(backend: Any) -> bool:
    return any(getattr(alarm, PENDING, None) for alarm in backend.alarms.values())


def deliver(backend: Any) -> bool:
    """Run every owed action of the backend's alarms, oldest first; True when an SNS topic's state changed."""
    published = False
    for alarm in list(backend.alarms.values()):
        queue = getattr(alarm, PENDING, None) or []
        setattr(alarm, PENDING, [])
        for item in queue:
            for arn in item["arns"]:
                published |= _publish(backend, alarm, arn, item)
    return published


def _publish(backend: Any, alarm: Any, arn: str, item: dict[str, Any]) -> bool:
    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "sns":
        _failed(backend, alarm, arn, f"Action type not supported by the local cloud: {arn}", item["state_updated_ms"])
        return False
    from moto.sns.exceptions import SNSNotFoundError
    from moto.sns.models import sns_backends

    try:
        sns = sns_backends[parts[4]][parts[3]]
        sns.publish(json.dumps({"default": item["document"], "email": item["email"]}), arn, subject=item["subject"], message_structure="json")
    except SNSNotFoundError:
        _failed(backend, alarm, arn, "Resource not found: Topic does not exist", item["state_updated_ms"])
        return False
    except Exception as error:
        log.exception("alarm %s: action %s failed", alarm.name, arn)
        _failed(backend, alarm, arn, str(error) or type(error).__name__, item["state_updated_ms"])
        return False
    history.record(
        backend,
        alarm.name,
        "Action",
        f"Successfully executed action {arn}",
        {
            "actionState": "Succeeded",
            "stateUpdateTimestamp": item["state_updated_ms"],
            "notificationResource": arn,
            "publishedMessage": item["document"],
        },
    )
    return True


def _failed(backend: Any, alarm: Any, arn: str, error: str, state_updated_ms: int) -> None:
    history.record(
        backend,
        alarm.name,
        "Action",
        f"Failed to execute action {arn}",
        {
            "actionState": "Failed",
            "stateUpdateTimestamp": state_updated_ms,
            "notificationResource": arn,
            "error": error,
        },
    )
