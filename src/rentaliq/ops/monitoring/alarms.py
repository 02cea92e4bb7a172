"""The environment's alarms (every name starting ``rentaliq-{env}-``) and their history.

DescribeAlarmHistory takes no name prefix, so the history is read for all alarms in the window and filtered
here. A server without the operation (an old local cloud) yields a note instead of a failure: the rest of the
picture is still worth showing, and the note says plainly what is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from rentaliq.deploy.target import Target
from rentaliq.ops.monitoring.models import AlarmView, HistoryEntry

# What a server answers for an operation it does not implement.
_UNSUPPORTED = ("InvalidAction", "NotImplemented", "UnknownOperationException", "UnsupportedOperation", "NotImplementedError", "404", "501")
# moto, under a local cloud that predates DescribeAlarmHistory, answers an action it lacks with a bare HTTP 500.
_OLD_LOCAL = ("500",)


def prefix(env: str) -> str:
    return f"rentaliq-{env}-"


def _metric_alarm(alarm: dict[str, Any]) -> AlarmView:
    metric = f"{alarm.get('Namespace', '')} {alarm.get('MetricName', '')}".strip()
    threshold = alarm.get("Threshold")
    return AlarmView(
        name=alarm["AlarmName"],
        state=alarm.get("StateValue", "INSUFFICIENT_DATA"),
        reason=str(alarm.get("StateReason", "")),
        updated=alarm.get("StateUpdatedTimestamp"),
        metric=metric,
        comparison=str(alarm.get("ComparisonOperator", "")),
        threshold=float(threshold) if threshold is not None else None,
    )


def env_alarms(target: Target, env: str) -> tuple[AlarmView, ...]:
    """Metric and composite alarms with the env's prefix, by name."""
    pages = target.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix(env), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    found: list[AlarmView] = []
    for page in pages:
        found += [_metric_alarm(a) for a in page.get("MetricAlarms", [])]
        found += [_metric_alarm(a) for a in page.get("CompositeAlarms", [])]
    return tuple(sorted(found, key=lambda a: a.name))


def env_history(target: Target, env: str, start: datetime, end: datetime, limit: int = 500) -> tuple[tuple[HistoryEntry, ...], str | None]:
    """History items of the env's alarms in [start, end], newest first (at most ``limit``), or a note why there are none."""
    client = target.client("cloudwatch")
    entries: list[HistoryEntry] = []
    token: str | None = None
    try:
        while len(entries) < limit:
            extra = {"NextToken": token} if token else {}
            answer = client.describe_alarm_history(StartDate=start, EndDate=end, ScanBy="TimestampDescending", MaxRecords=100, **extra)
            for item in answer.get("AlarmHistoryItems", []):
                if str(item.get("AlarmName", "")).startswith(prefix(env)):
                    stamp = item.get("Timestamp") or start
                    entries.append(
                        HistoryEntry(stamp.astimezone(UTC), item["AlarmName"], str(item.get("HistoryItemType", "")), str(item.get("HistorySummary", "")))
                    )
            token = answer.get("NextToken")
            if not token:
                break
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        old_local = target.is_local and (code in _OLD_LOCAL or status in _OLD_LOCAL)
        if code in _UNSUPPORTED or status in _UNSUPPORTED or old_local:
            return (), f"alarm history unavailable: this CloudWatch endpoint does not implement DescribeAlarmHistory ({code or status})"
        raise
    entries.sort(key=lambda e: e.timestamp, reverse=True)
    return tuple(entries[:limit]), None
