"""What an environment's alerts topic told people: the email deliveries the local cloud captured for
``rentaliq-{env}-alerts``, newest first, and the states of the alarms that notify that topic.

On AWS the mail is in people's inboxes; the local cloud keeps it (see ``rentaliq.local.sns_delivery.mailbox``) and
serves it at ``GET /_rentaliq/sns/mail``, which this module reads over the same endpoint as the AWS APIs.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from rentaliq import naming
from rentaliq.deploy.target import Target

MAIL_PATH = "/_rentaliq/sns/mail"  # rentaliq.local.sns_delivery.MAIL_PATH, without importing moto
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class AlertsError(ValueError):
    """A bad ``--since`` or a target without captured mail: one line for the user."""


@dataclass(frozen=True)
class Delivery:
    timestamp: str
    type: str
    protocol: str
    endpoint: str
    subject: str
    body: str
    message_id: str


@dataclass(frozen=True)
class AlarmStatus:
    name: str
    state: str
    reason: str
    updated: str


@dataclass
class AlertsReport:
    env: str
    topic: str
    topic_arn: str | None
    deliveries: list[Delivery] = field(default_factory=list)
    alarms: list[AlarmStatus] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``1d``, ``1w``, ``45s`` ago, or an ISO 8601 time (UTC when it has no offset)."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AlertsError(f"--since {text!r} is not a time: use a duration such as 30m, 2h, 1d, 1w or an ISO 8601 time such as 2026-11-30T04:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def topic_arn(target: Target, env: str) -> str | None:
    """The ARN of the environment's alerts topic, or None when it is not deployed."""
    name = naming.alerts_topic(env)
    sns = target.client("sns")
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                return str(topic["TopicArn"])
    return None


def captured(target: Target, arn: str, since: datetime | None = None) -> list[Delivery]:
    """The local cloud's captured email deliveries for topic ``arn``, newest first."""
    if not target.is_local or not target.endpoint_url:
        raise AlertsError("captured email deliveries exist only on the local cloud (--target local); on AWS they are in the subscribers' inboxes")
    query = {"topic": arn}
    if since is not None:
        query["since"] = since.astimezone(UTC).isoformat()
    url = f"{target.endpoint_url.rstrip('/')}{MAIL_PATH}?{urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            found = json.loads(answer.read())["deliveries"]
    except urllib.error.URLError as error:
        raise AlertsError(f"cannot read captured deliveries from the local cloud at {target.endpoint_url}: {error.reason}") from None
    return [
        Delivery(d["Timestamp"], d["Type"], d["Protocol"], d["Endpoint"], d.get("Subject") or "", d.get("Body") or "", d.get("MessageId") or "") for d in found
    ]


def alarm_states(target: Target, arn: str) -> list[AlarmStatus]:
    """Metric alarms with an action on topic ``arn`` (ALARM, OK or INSUFFICIENT_DATA actions), by name."""
    cloudwatch = target.client("cloudwatch")
    found: list[AlarmStatus] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            actions = [*alarm.get("AlarmActions", []), *alarm.get("OKActions", []), *alarm.get("InsufficientDataActions", [])]
            if arn in actions:
                updated = alarm.get("StateUpdatedTimestamp")
                found.append(AlarmStatus(alarm["AlarmName"], alarm["StateValue"], alarm.get("StateReason", ""), updated.isoformat() if updated else ""))
    return sorted(found, key=lambda a: a.name)


def alerts(target: Target, env: str, since: datetime | None = None) -> AlertsReport:
    """The environment's captured alert mail (newest first) and its alarms' states."""
    name = naming.alerts_topic(env)
    arn = topic_arn(target, env)
    report = AlertsReport(env=env, topic=name, topic_arn=arn)
    if arn is None:
        return report
    report.deliveries = captured(target, arn, since)
    report.alarms = alarm_states(target, arn)
    return report
