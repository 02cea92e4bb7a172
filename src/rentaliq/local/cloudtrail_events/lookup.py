"""CloudTrail's ``LookupEvents`` over the local event history: one lookup attribute, a time range, newest first,
``MaxResults`` (1 to 50, default 50) and an opaque ``NextToken``; errors with CloudTrail's codes.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from rentaliq.local.cloudtrail_events.store import RETENTION, parse_time

LOOKUP_TARGET_SUFFIX = ".LookupEvents"
ATTRIBUTE_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId")
MAX_RESULTS = 50


class LookupError_(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _time(value: Any, name: str) -> datetime:
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, UTC)
        return parse_time(str(value))
    except (ValueError, OverflowError, OSError):
        raise LookupError_("ValidationException", f"{name} {value!r} is not a timestamp") from None


def _matches(event: dict[str, Any], key: str, value: str) -> bool:
    if key == "EventId":
        return bool(event["eventID"] == value)
    if key == "EventName":
        return bool(event["eventName"] == value)
    if key == "ReadOnly":
        return str(event["readOnly"]).lower() == value.lower()
    if key == "Username":
        return bool(event.get("_username") == value)
    if key == "EventSource":
        return bool(event["eventSource"] == value)
    if key == "AccessKeyId":
        return bool(event["userIdentity"].get("accessKeyId") == value)
    field = "ResourceType" if key == "ResourceType" else "ResourceName"
    return any(resource[field] == value for resource in event.get("resources") or [])


def _public(event: dict[str, Any]) -> dict[str, Any]:
    """The event as LookupEvents returns it; the full record (less our index fields) is CloudTrailEvent."""
    record = {k: v for k, v in event.items() if not k.startswith("_")}
    result: dict[str, Any] = {
        "EventId": event["eventID"],
        "EventName": event["eventName"],
        "ReadOnly": "true" if event["readOnly"] else "false",
        "EventTime": parse_time(event["eventTime"]).timestamp(),
        "EventSource": event["eventSource"],
        "Username": event.get("_username", ""),
        "Resources": event.get("resources") or [],
        "CloudTrailEvent": json.dumps(record),
    }
    if event["userIdentity"].get("accessKeyId"):
        result["AccessKeyId"] = event["userIdentity"]["accessKeyId"]
    return result


def lookup(events: list[dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
    attributes = request.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise LookupError_("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    for attribute in attributes:
        if attribute.get("AttributeKey") not in ATTRIBUTE_KEYS:
            raise LookupError_("InvalidLookupAttributesException", f"AttributeKey {attribute.get('AttributeKey')!r} is not one of {', '.join(ATTRIBUTE_KEYS)}.")
    max_results = request.get("MaxResults", MAX_RESULTS)
    if not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
        raise LookupError_("InvalidMaxResultsException", f"MaxResults must be from 1 to {MAX_RESULTS}; got {max_results!r}.")
    now = datetime.now(UTC)
    start = _time(request["StartTime"], "StartTime") if request.get("StartTime") is not None else now - RETENTION
    end = _time(request["EndTime"], "EndTime") if request.get("EndTime") is not None else now + timedelta(seconds=1)
    if start > end:
        raise LookupError_("InvalidTimeRangeException", "Start time must be before end time.")
    selected = [
        event
        for event in reversed(events)
        if start <= parse_time(event["eventTime"]) <= end and all(_matches(event, a["AttributeKey"], str(a.get("AttributeValue", ""))) for a in attributes)
    ]
    begin = 0
    if request.get("NextToken"):
        try:
            after = json.loads(base64.urlsafe_b64decode(request["NextToken"]))["next"]
            begin = next(i for i, event in enumerate(selected) if event["eventID"] == after)
        except (ValueError, KeyError, TypeError, StopIteration):
            raise LookupError_("InvalidNextTokenException", "Invalid NextToken.") from None
    page = selected[begin : begin + max_results]
    response: dict[str, Any] = {"Events": [_public(event) for event in page]}
    if begin + max_results < len(selected):
        response["NextToken"] = base64.urlsafe_b64encode(json.dumps({"next": selected[begin + max_results]["eventID"]}).encode()).decode()
    return response


def lookup_response(events: list[dict[str, Any]], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of a LookupEvents call, in the JSON 1.1 protocol."""
    try:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise LookupError_("SerializationException", "The request body is not JSON.") from None
        payload, status = json.dumps(lookup(events, request)).encode(), "200 OK"
    except LookupError_ as error:
        payload, status = json.dumps({"__type": error.code, "message": error.message}).encode(), "400 Bad Request"
    return status, [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))], payload
