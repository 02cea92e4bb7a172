"""Alerts area: the topic ``rentaliq-{env}-alerts`` (customer-managed key with rotation, TLS-only policy that lets
CloudWatch publish, tags) and its subscriptions, which must be exactly the spec's."""

from __future__ import annotations

from typing import Any

from rentaliq import naming
from rentaliq.ops.verify.checks import ALERTS
from rentaliq.ops.verify.documents import as_list, policy_document, principals, statements
from rentaliq.ops.verify.reader import Audit
from rentaliq.urls import without_credentials

CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"


def check(audit: Audit) -> str | None:
    """The checks; the topic's ARN when it exists (for the alarms' actions and the stack output)."""
    read, add, env = audit.read, audit.record.add, audit.env
    name = naming.alerts_topic(env)
    topics = read.paginate(ALERTS, f"{name} exists", name, "sns", "list_topics", "Topics")
    arns = [t["TopicArn"] for t in topics if t["TopicArn"].rsplit(":", 1)[-1] == name]
    if not add(ALERTS, f"{name} exists", name, name if arns else None):
        return None
    arn = str(arns[0])
    attributes = read.call(ALERTS, f"{name} attributes", "readable", "sns", "get_topic_attributes", TopicArn=arn)["Attributes"]
    with read.section(ALERTS, "encryption"):
        _encryption(audit, name, attributes.get("KmsMasterKeyId"))
    policy = policy_document(attributes.get("Policy") or "{}")
    add(ALERTS, f"{name} policy denies non-TLS publish", True, _denies_insecure_publish(policy))
    add(ALERTS, f"{name} policy lets CloudWatch publish", True, _allows_cloudwatch(policy))
    with read.section(ALERTS, "tags"):
        tags = read.call(ALERTS, f"{name} tags", "readable", "sns", "list_tags_for_resource", ResourceArn=arn).get("Tags")
        audit.record.tags(ALERTS, name, audit.spec.resource_tags(), tags)
    with read.section(ALERTS, "subscriptions"):
        expected = sorted(f"{protocol} {endpoint}" for protocol, endpoint in audit.spec.alerts.subscriptions())
        subs = read.paginate(ALERTS, f"{name} subscriptions", expected, "sns", "list_subscriptions_by_topic", "Subscriptions", TopicArn=arn)
        live = sorted(f"{s['Protocol']} {s['Endpoint']}" for s in subs)
        # A subscription made by hand may carry user:password@ in its URL (SNS's basic auth): never shown.
        add(ALERTS, f"{name} subscriptions", expected, [without_credentials(e) for e in live], ok=live == expected)
    return arn


def _encryption(audit: Audit, name: str, key_id: str | None) -> None:
    read, add = audit.read, audit.record.add
    if not add(ALERTS, f"{name} encrypted with a customer-managed key", "a KMS key", key_id, ok=bool(key_id)):
        return
    metadata = read.call(ALERTS, f"{name} key", "readable", "kms", "describe_key", KeyId=key_id)["KeyMetadata"]
    # CloudWatch cannot publish to a topic under the AWS-managed alias/aws/sns: its policy cannot be changed.
    add(ALERTS, f"{name} key manager", "CUSTOMER", metadata.get("KeyManager"))
    add(ALERTS, f"{name} key state", "Enabled", metadata.get("KeyState"))
    rotation = read.call(ALERTS, f"{name} key rotation", True, "kms", "get_key_rotation_status", KeyId=metadata["KeyId"])
    add(ALERTS, f"{name} key rotation", True, rotation.get("KeyRotationEnabled"))


def _denies_insecure_publish(policy: dict[str, Any]) -> bool:
    return any(
        s.get("Effect") == "Deny"
        and "*" in principals(s, "AWS")
        and any(a in ("sns:Publish", "SNS:Publish", "sns:*") for a in as_list(s.get("Action")))
        and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport", "")).lower() == "false"
        for s in statements(policy)
    )


def _allows_cloudwatch(policy: dict[str, Any]) -> bool:
    return any(
        s.get("Effect") == "Allow"
        and CLOUDWATCH_PRINCIPAL in principals(s, "Service")
        and any(a in ("sns:Publish", "SNS:Publish") for a in as_list(s.get("Action")))
        for s in statements(policy)
    )
