"""Budget area: the AWS Budget ``rentaliq-{env}-monthly`` and what lets it reach anyone.

Checked against the spec: a monthly COST budget whose limit is the spec's upper bound in USD, counting only this
environment (the ``user:Environment$<env>`` tag filter), with exactly two notifications, 80 % FORECASTED and
100 % ACTUAL (greater than, percentage), each to the alerts topic; its tags. A budget is silent unless the
topic's policy lets ``budgets.amazonaws.com`` publish for this account and the topic's key lets it encrypt, so
both are checked here too: a budget that cannot publish passes every other check and never tells anyone.
"""

from __future__ import annotations

from typing import Any

from rentaliq import naming
from rentaliq.contract import BUDGET_ALERTS, BUDGET_PRINCIPAL, BUDGET_TAG_KEY, BudgetAlert, budget_cost_filter
from rentaliq.ops.verify.checks import BUDGET
from rentaliq.ops.verify.documents import as_list, policy_document, principals, statements
from rentaliq.ops.verify.reader import Audit

KEY_POLICY_NAME = "default"  # KMS keys have one policy, named "default"
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")


def _notification(n: dict[str, Any]) -> str:
    """``FORECASTED GREATER_THAN 80 PERCENTAGE``: a notification as one comparable, readable string."""
    return f"{n.get('NotificationType')} {n.get('ComparisonOperator')} {float(n.get('Threshold', 0)):g} {n.get('ThresholdType') or 'PERCENTAGE'}"


def _expected(alert: BudgetAlert) -> str:
    return f"{alert.notification_type} {alert.comparison} {alert.threshold:g} {alert.threshold_type}"


def _api_notification(n: dict[str, Any]) -> dict[str, Any]:
    """A described notification as the Notification parameter of DescribeSubscribersForNotification."""
    return {k: n[k] for k in ("NotificationType", "ComparisonOperator", "Threshold", "ThresholdType") if k in n}


def check(audit: Audit) -> None:
    read, add, env = audit.read, audit.record.add, audit.env
    name = naming.budget(env)
    account = str(read.call(BUDGET, f"{name} account", "readable", "sts", "get_caller_identity")["Account"])
    topic_arn = f"arn:{audit.partition}:sns:{audit.spec.region}:{account}:{naming.alerts_topic(env)}"
    if not audit.spec.cost.budget:
        _absent(audit, account, name)
        return
    found = False
    with read.section(BUDGET, "budget"):
        budget = read.call(BUDGET, f"{name} exists", name, "budgets", "describe_budget", AccountId=account, BudgetName=name)["Budget"]
        found = add(BUDGET, f"{name} exists", name, budget.get("BudgetName"))
        limit = budget.get("BudgetLimit") or {}
        expected_limit = f"{audit.spec.cost.monthly_usd_high:g} USD"
        actual_limit = f"{float(limit['Amount']):g} {limit.get('Unit')}" if limit.get("Amount") is not None else None
        add(BUDGET, f"{name} limit (the spec's monthly upper bound)", expected_limit, actual_limit)
        add(BUDGET, f"{name} time unit", "MONTHLY", budget.get("TimeUnit"))
        add(BUDGET, f"{name} type", "COST", budget.get("BudgetType"))
        add(BUDGET, f"{name} cost filter", budget_cost_filter(audit.spec.resource_tags()[BUDGET_TAG_KEY]), budget.get("CostFilters") or {})
    if found:  # a missing budget is one failed check, not one per thing it lacks
        with read.section(BUDGET, "notifications"):
            _notifications(audit, account, name, topic_arn)
        with read.section(BUDGET, "tags"):
            arn = f"arn:{audit.partition}:budgets::{account}:budget/{name}"
            tags = read.call(BUDGET, f"{name} tags", "readable", "budgets", "list_tags_for_resource", ResourceARN=arn).get("ResourceTags")
            audit.record.tags(BUDGET, name, audit.spec.resource_tags(), tags)
    with read.section(BUDGET, "topic"):
        _topic_lets_budgets_publish(audit, account, topic_arn)


def _absent(audit: Audit, account: str, name: str) -> None:
    """``cost.budget = false``: no budget of that name (one left behind would still notify the topic)."""
    try:
        audit.read.target.client("budgets").describe_budget(AccountId=account, BudgetName=name)
    except audit.read.target.client("budgets").exceptions.NotFoundException:
        audit.record.add(BUDGET, f"{name} absent (cost.budget = false)", None, None)
        return
    audit.record.add(BUDGET, f"{name} absent (cost.budget = false)", None, name)


def _notifications(audit: Audit, account: str, name: str, topic_arn: str) -> None:
    read, add = audit.read, audit.record.add
    expected = sorted(_expected(alert) for alert in BUDGET_ALERTS)
    described = read.call(BUDGET, f"{name} notifications", expected, "budgets", "describe_notifications_for_budget", AccountId=account, BudgetName=name)
    notifications = as_list(described.get("Notifications"))
    add(BUDGET, f"{name} notifications", expected, sorted(_notification(n) for n in notifications))
    for n in notifications:
        label = f"{name} {_notification(n)} subscribers"
        subscribers = read.call(
            BUDGET, label, [f"SNS {topic_arn}"], "budgets", "describe_subscribers_for_notification",
            AccountId=account, BudgetName=name, Notification=_api_notification(n),
        ).get("Subscribers")  # fmt: skip
        add(BUDGET, label, [f"SNS {topic_arn}"], sorted(f"{s.get('SubscriptionType')} {s.get('Address')}" for s in as_list(subscribers)))


def _topic_lets_budgets_publish(audit: Audit, account: str, topic_arn: str) -> None:
    read, add = audit.read, audit.record.add
    topic = naming.alerts_topic(audit.env)
    attributes = read.call(BUDGET, f"{topic} policy lets Budgets publish", True, "sns", "get_topic_attributes", TopicArn=topic_arn)["Attributes"]
    policy = policy_document(attributes.get("Policy") or "{}")
    add(BUDGET, f"{topic} policy lets Budgets publish", True, _allows_budgets(policy, account))
    key_id = attributes.get("KmsMasterKeyId")
    if not key_id:
        return  # an unencrypted topic needs no key grant (the Alerts area fails the missing encryption)
    key_arn = read.call(BUDGET, f"{topic} key lets Budgets encrypt", True, "kms", "describe_key", KeyId=key_id)["KeyMetadata"]["Arn"]
    document = read.call(BUDGET, f"{topic} key lets Budgets encrypt", True, "kms", "get_key_policy", KeyId=key_arn, PolicyName=KEY_POLICY_NAME)
    add(BUDGET, f"{topic} key lets Budgets encrypt", True, _key_allows_budgets(policy_document(document.get("Policy") or "{}")))


def _allows_budgets(policy: dict[str, Any], account: str) -> bool:
    """An Allow of sns:Publish to Budgets, limited (if at all) to this account: what AWS documents for Budgets."""
    for s in statements(policy):
        if s.get("Effect") != "Allow" or BUDGET_PRINCIPAL not in principals(s, "Service"):
            continue
        if not any(a.lower() in ("sns:publish", "sns:*") for a in as_list(s.get("Action"))):
            continue
        source_account = (s.get("Condition") or {}).get("StringEquals", {}).get("aws:SourceAccount")
        if source_account in (None, account):
            return True
    return False


def _key_allows_budgets(policy: dict[str, Any]) -> bool:
    for s in statements(policy):
        if s.get("Effect") == "Allow" and BUDGET_PRINCIPAL in principals(s, "Service"):
            actions = {str(a) for a in as_list(s.get("Action"))}
            if "kms:*" in actions or set(KEY_ACTIONS) <= actions:
                return True
    return False
