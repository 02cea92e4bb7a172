"""The documents SNS sends: confirmation and notification bodies for HTTP(S), email and email-json, as AWS words
and orders them. Pure functions of their inputs (the signer signs; nothing is sent here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

EMAIL_CONFIRMATION_SUBJECT = "AWS Notification - Subscription Confirmation"
EMAIL_DEFAULT_SUBJECT = "AWS Notification Message"


def timestamp() -> str:
    """``2026-11-30T04:10:07.123Z``, SNS's message timestamp."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def subscribe_url(endpoint: str, topic_arn: str, token: str) -> str:
    return f"{endpoint.rstrip('/')}/?Action=ConfirmSubscription&TopicArn={quote(topic_arn, safe='')}&Token={token}"


def unsubscribe_url(endpoint: str, subscription_arn: str) -> str:
    return f"{endpoint.rstrip('/')}/?Action=Unsubscribe&SubscriptionArn={quote(subscription_arn, safe='')}"


def confirmation(message_id: str, token: str, topic_arn: str, url: str) -> dict[str, Any]:
    """An unsigned SubscriptionConfirmation (HTTP(S) and email-json)."""
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": f"You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": url,
        "Timestamp": timestamp(),
    }


def unsubscribe_confirmation(message_id: str, token: str, topic_arn: str, subscription_arn: str, url: str) -> dict[str, Any]:
    """An unsigned UnsubscribeConfirmation (HTTP(S)); its SubscribeURL restores the subscription."""
    return {
        "Type": "UnsubscribeConfirmation",
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": f"You have chosen to deactivate subscription {subscription_arn}.\n"
        "To cancel this operation and restore the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": url,
        "Timestamp": timestamp(),
    }


def notification(message_id: str, topic_arn: str, subject: str | None, message: str) -> dict[str, Any]:
    """An unsigned Notification; the caller signs it, then adds UnsubscribeURL and MessageAttributes."""
    doc: dict[str, Any] = {"Type": "Notification", "MessageId": message_id, "TopicArn": topic_arn}
    if subject:
        doc["Subject"] = subject
    doc["Message"] = message
    doc["Timestamp"] = timestamp()
    return doc


def message_attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    """moto's ``{"name": {"Type": ..., "Value": ...}}`` as SNS's JSON notification carries them."""
    return {name: {"Type": a.get("Type") or a.get("DataType"), "Value": a.get("Value")} for name, a in (attributes or {}).items()}


def email_confirmation_body(topic_arn: str, url: str) -> str:
    return (
        f"You have chosen to subscribe to the topic: \n{topic_arn}\n\n"
        "To confirm this subscription, click or visit the link below (If this was in error no action is necessary): \n"
        f"{url}\n\n"
        "Please do not reply directly to this email. If you wish to remove yourself from receiving all future SNS "
        "subscription confirmation requests please send an email to sns-opt-out"
    )


def email_notification_body(message: str, unsubscribe: str) -> str:
    return (
        f"{message}\n\n--\n"
        "If you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:\n"
        f"{unsubscribe}\n\n"
        "Please do not reply directly to this email. If you have any questions or comments regarding this email, "
        "please contact us at https://aws.amazon.com/support"
    )


def http_headers(doc_type: str, message_id: str, topic_arn: str, subscription_arn: str | None, raw: bool = False) -> dict[str, str]:
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
        "x-amz-sns-message-type": doc_type,
        "x-amz-sns-message-id": message_id,
        "x-amz-sns-topic-arn": topic_arn,
    }
    if subscription_arn:
        headers["x-amz-sns-subscription-arn"] = subscription_arn
    if raw:
        headers["x-amz-sns-rawdelivery"] = "true"
    return headers


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)
