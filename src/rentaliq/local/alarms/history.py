"""Alarm history as CloudWatch keeps it, and the DescribeAlarmHistory action that moto lacks.

Items live on the CloudWatch backend (``rentaliq_alarm_history``, oldest first), so they are pickled with it and
survive a restart, and outlive a deleted alarm as on AWS. CloudWatch keeps alarm history for 30 days; the local
cloud also caps it at ``MAX_ITEMS`` per region so a flapping alarm cannot grow the state without bound.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.exceptions import CloudWatchException, InvalidParameterValue, ValidationError

HISTORY_ATTR = "rentaliq_alarm_history"
MAX_ITEMS = 20_000
RETENTION = timedelta(days=30)
ITEM_TYPES = ("ConfigurationUpdate", "StateUpdate", "Action", "AlarmContributorStateUpdate", "AlarmContributorAction")
SCAN_BY = ("TimestampDescending", "TimestampAscending")


class InvalidNextToken(CloudWatchException):
    code = "InvalidNextToken"


def now() -> datetime:
    """Naive UTC, like every timestamp moto's CloudWatch models hold."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_time(moment: datetime) -> str:
    """``2026-11-29T10:00:00.000+0000`` for a naive UTC datetime."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def items(backend: Any) -> list[dict[str, Any]]:
    found = getattr(backend, HISTORY_ATTR, None)
    if found is None:
        found = []
        setattr(backend, HISTORY_ATTR, found)
    return found


def record(backend: Any, alarm_name: str, item_type: str, summary: str, data: dict[str, Any], when: datetime | None = None) -> None:
    """Append one history item (the caller holds the persistence lock and commits)."""
    history = items(backend)
    history.append(
        {
            "AlarmName": alarm_name,
            "AlarmType": "MetricAlarm",
            "Timestamp": when or now(),
            "HistoryItemType": item_type,
            "HistorySummary": summary,
            "HistoryData": json.dumps(data, separators=(",", ":")),
        }
    )
    oldest = now() - RETENTION
    drop = max(len(history) - MAX_ITEMS, 0)
    while drop < len(history) and history[drop]["Timestamp"] < oldest:
        drop += 1
    if drop:
        del history[:drop]


def _naive(moment: Any) -> datetime | None:
    if moment is None or moment == "":
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def describe(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    """DescribeAlarmHistory: filter by AlarmName, AlarmTypes, HistoryItemType, StartDate/EndDate; order by ScanBy;
    page by MaxRecords (1-100, default 100) and an opaque NextToken."""
    item_type = params.get("HistoryItemType")
    if item_type and item_type not in ITEM_TYPES:
        raise ValidationError(
            f"1 validation error detected: Value '{item_type}' at 'historyItemType' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(ITEM_TYPES)}]"
        )
    scan_by = params.get("ScanBy") or "TimestampDescending"
    if scan_by not in SCAN_BY:
        raise ValidationError(
            f"1 validation error detected: Value '{scan_by}' at 'scanBy' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(SCAN_BY)}]"
        )
    max_records = params.get("MaxRecords")
    limit = 100 if max_records in (None, "") else int(max_records)
    if not 1 <= limit <= 100:
        bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 100"
        raise ValidationError(f"1 validation error detected: Value '{limit}' at 'maxRecords' failed to satisfy constraint: Member must have value {bound}")
    start, end = _naive(params.get("StartDate")), _naive(params.get("EndDate"))
    if start and end and start > end:
        raise InvalidParameterValue("The StartDate must be before the EndDate.")
    name = params.get("AlarmName")
    types = params.get("AlarmTypes") or []
    chosen = [
        item
        for item in items(backend)
        if (not name or item["AlarmName"] == name)
        and (not item_type or item["HistoryItemType"] == item_type)
        and (not types or item["AlarmType"] in types)
        and (start is None or item["Timestamp"] >= start)
        and (end is None or item["Timestamp"] <= end)
    ]
    if scan_by == "TimestampDescending":
        chosen.reverse()
    offset = 0
    token = params.get("NextToken")
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("alarm-history:"))
        except (ValueError, UnicodeDecodeError):
            raise InvalidNextToken("The service cannot parse the next token.") from None
    page = chosen[offset : offset + limit]
    result: dict[str, Any] = {"AlarmHistoryItems": page}
    if offset + limit < len(chosen):
        result["NextToken"] = base64.urlsafe_b64encode(f"alarm-history:{offset + limit}".encode()).decode()
    return result
