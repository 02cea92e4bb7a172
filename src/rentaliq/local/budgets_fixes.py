"""AWS Budgets as AWS's Budgets API answers, where moto 5.2.5 falls short (checked against moto's budgets source).

moto stores a budget and its notifications, but:

- has no UpdateBudget, DescribeSubscribersForNotification, CreateSubscriber, DeleteSubscriber, UpdateNotification,
  DescribeBudgetNotificationsForAccount, DescribeBudgetPerformanceHistory (the current period, nothing spent), nor
  tags (CreateBudget's ResourceTags, ListTagsForResource, TagResource, UntagResource): added here (budget actions
  are still missing: moto answers them with a 500);
- answers DescribeNotificationsForBudget on a missing budget with a KeyError (an HTTP 500): NotFoundException;
- deletes a notification that does not exist without a word, and creates a duplicate one: NotFoundException and
  DuplicateRecordException, as Budgets answers;
- leaves out each notification's NotificationState: "OK" (nothing is spent on the local cloud, so none is in ALARM).

A notification is identified, as on AWS, by its type, operator, threshold and threshold type (PERCENTAGE when not
given); thresholds compare as numbers (80 and 80.0 are one notification). Budgets, notifications, subscribers and
tags live on moto's model objects, so they are persisted with the rest of the budgets backend (restart, kill -9).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from moto.budgets import models as budgets_models
from moto.budgets.exceptions import BudgetMissingLimit, DuplicateRecordException, NotFoundException
from moto.budgets.responses import BudgetsResponse
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time

_installed = False
DEFAULT_THRESHOLD_TYPE = "PERCENTAGE"
NOTIFICATION_STATE = "OK"  # no spend is measured locally: no notification is ever in ALARM


def notification_key(details: dict[str, Any]) -> tuple[str, str, float, str]:
    """What identifies a notification within its budget."""
    return (
        str(details.get("NotificationType")),
        str(details.get("ComparisonOperator")),
        float(details.get("Threshold", 0)),
        str(details.get("ThresholdType") or DEFAULT_THRESHOLD_TYPE),
    )


def budget_arn(partition: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:budgets::{account_id}:budget/{name}"


def _budget(backend: Any, account_id: str, name: str, doing: str) -> Any:
    budget = backend.budgets[account_id].get(name)
    if budget is None:
        raise NotFoundException(f"Unable to {doing} - the budget doesn't exist.")
    return budget


def _notification(budget: Any, details: dict[str, Any], doing: str) -> Any:
    wanted = notification_key(details)
    for notification in budget.notifications:
        if notification_key(notification.details) == wanted:
            return notification
    raise NotFoundException(f"Unable to {doing} - the notification doesn't exist.")


class InvalidParameterException(JsonRESTError):
    """Budgets' answer to a malformed request (HTTP 400)."""

    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidParameterException", message)


def _check_limit(budget: dict[str, Any]) -> None:
    """A limit is a decimal amount of at least 0 (Budgets' Spend.Amount), never text or a negative figure."""
    from decimal import Decimal, InvalidOperation

    limits = [budget["BudgetLimit"]] if budget.get("BudgetLimit") else list((budget.get("PlannedBudgetLimits") or {}).values())
    for limit in limits:
        amount = str(limit.get("Amount", ""))
        try:
            valid = Decimal(amount).is_finite() and Decimal(amount) >= 0
        except InvalidOperation:
            valid = False
        if not valid:
            raise InvalidParameterException(f"Invalid budget limit amount: {amount!r}; it must be a decimal number of at least 0.")


def _subscriber_key(subscriber: dict[str, Any]) -> tuple[str, str]:
    return str(subscriber.get("SubscriptionType")), str(subscriber.get("Address"))


def _by_arn(backend: Any, arn: str) -> Any:
    """The budget an ARN names (``arn:aws:budgets::123456789012:budget/name``), or NotFoundException."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "budgets" and parts[5].startswith("budget/"):
        budget = backend.budgets[parts[4]].get(parts[5].removeprefix("budget/"))
        if budget is not None:
            return budget
    raise NotFoundException(f"Unable to find resource {arn} - the resource doesn't exist.")


def _tags(budget: Any) -> dict[str, str]:
    if not hasattr(budget, "resource_tags"):
        budget.resource_tags = {}
    tags: dict[str, str] = budget.resource_tags
    return tags


class Backend:
    """Methods added to (or replacing) moto's BudgetsBackend; ``self`` is the backend."""

    original_create_budget = budgets_models.BudgetsBackend.create_budget

    def create_budget(
        self: Any, account_id: str, budget: dict[str, Any], notifications: list[dict[str, Any]], tags: list[dict[str, str]] | None = None
    ) -> None:
        _check_limit(budget)
        keys = [notification_key(n["Notification"]) for n in notifications]
        if len(set(keys)) != len(keys):
            raise DuplicateRecordException(record_type="notification", record_name=budget.get("BudgetName", ""))
        Backend.original_create_budget(self, account_id, budget, notifications)
        _tags(self.budgets[account_id][budget["BudgetName"]]).update({t["Key"]: t.get("Value", "") for t in tags or []})

    def update_budget(self: Any, account_id: str, new_budget: dict[str, Any]) -> None:
        """Everything but the name and the calculated spend may change; a time period left out keeps the old one."""
        name = new_budget.get("BudgetName", "")
        existing = self.budgets[account_id].get(name)
        if existing is None:
            raise NotFoundException(f"Unable to update budget: {name} - the budget doesn't exist.")
        if "BudgetLimit" not in new_budget and "PlannedBudgetLimits" not in new_budget:
            raise BudgetMissingLimit()
        _check_limit(new_budget)
        updated = dict(new_budget)
        updated.setdefault("TimePeriod", existing.budget.get("TimePeriod"))
        updated["LastUpdatedTime"] = unix_time()
        existing.budget = updated

    def describe_notifications_for_budget(self: Any, account_id: str, budget_name: str) -> list[dict[str, Any]]:
        budget = _budget(self, account_id, budget_name, "get notifications")
        return [{**n.details, "NotificationState": NOTIFICATION_STATE} for n in budget.notifications]

    def create_notification(self: Any, account_id: str, budget_name: str, notification: dict[str, Any], subscribers: list[dict[str, Any]]) -> None:
        budget = _budget(self, account_id, budget_name, "create notification")
        if any(notification_key(n.details) == notification_key(notification) for n in budget.notifications):
            raise DuplicateRecordException(record_type="notification", record_name=budget_name)
        budget.add_notification(details=notification, subscribers=subscribers)

    def delete_notification(self: Any, account_id: str, budget_name: str, notification: dict[str, Any]) -> None:
        budget = _budget(self, account_id, budget_name, "delete notification")
        found = _notification(budget, notification, "delete notification")
        budget.notifications = [n for n in budget.notifications if n is not found]

    def update_notification(self: Any, account_id: str, budget_name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        budget = _budget(self, account_id, budget_name, "update notification")
        found = _notification(budget, old, "update notification")
        if notification_key(new) != notification_key(old) and any(notification_key(n.details) == notification_key(new) for n in budget.notifications):
            raise DuplicateRecordException(record_type="notification", record_name=budget_name)
        found.details = new

    def describe_subscribers_for_notification(self: Any, account_id: str, budget_name: str, notification: dict[str, Any]) -> list[dict[str, Any]]:
        budget = _budget(self, account_id, budget_name, "describe subscribers")
        return list(_notification(budget, notification, "describe subscribers").subscribers)

    def create_subscriber(self: Any, account_id: str, budget_name: str, notification: dict[str, Any], subscriber: dict[str, Any]) -> None:
        found = _notification(_budget(self, account_id, budget_name, "create subscriber"), notification, "create subscriber")
        if _subscriber_key(subscriber) in {_subscriber_key(s) for s in found.subscribers}:
            raise DuplicateRecordException(record_type="subscriber", record_name=str(subscriber.get("Address")))
        found.subscribers = [*found.subscribers, subscriber]

    def delete_subscriber(self: Any, account_id: str, budget_name: str, notification: dict[str, Any], subscriber: dict[str, Any]) -> None:
        found = _notification(_budget(self, account_id, budget_name, "delete subscriber"), notification, "delete subscriber")
        kept = [s for s in found.subscribers if _subscriber_key(s) != _subscriber_key(subscriber)]
        if len(kept) == len(found.subscribers):
            raise NotFoundException("Unable to delete subscriber - the subscriber doesn't exist.")
        found.subscribers = kept

    def describe_budget_notifications_for_account(self: Any, account_id: str) -> list[dict[str, Any]]:
        return [
            {"BudgetName": name, "Notifications": [{**n.details, "NotificationState": NOTIFICATION_STATE} for n in budget.notifications]}
            for name, budget in self.budgets[account_id].items()
            if budget.notifications
        ]

    def describe_budget_performance_history(self: Any, account_id: str, budget_name: str) -> dict[str, Any]:
        """The current period only, with nothing spent: the local cloud measures no spend."""
        data = _budget(self, account_id, budget_name, "get budget performance history").to_dict()
        limit = data.get("BudgetLimit") or {"Amount": "0", "Unit": "USD"}
        start = datetime.datetime.now(datetime.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + datetime.timedelta(days=32)).replace(day=1)
        history = {k: data[k] for k in ("BudgetName", "BudgetType", "CostFilters", "CostTypes", "TimeUnit") if k in data}
        period = {"Start": unix_time(start.replace(tzinfo=None)), "End": unix_time(end.replace(tzinfo=None))}
        history["BudgetedAndActualAmountsList"] = [{"BudgetedAmount": limit, "ActualAmount": {"Amount": "0", "Unit": limit["Unit"]}, "TimePeriod": period}]
        return history

    def list_tags_for_resource(self: Any, arn: str) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in sorted(_tags(_by_arn(self, arn)).items())]

    def tag_resource(self: Any, arn: str, tags: list[dict[str, str]]) -> None:
        _tags(_by_arn(self, arn)).update({t["Key"]: t.get("Value", "") for t in tags})

    def untag_resource(self: Any, arn: str, keys: list[str]) -> None:
        tags = _tags(_by_arn(self, arn))
        for key in keys:
            tags.pop(key, None)


class Responses:
    """Actions added to (or replacing) moto's BudgetsResponse; ``self`` is the response."""

    def create_budget(self: Any) -> str:
        self.backend.create_budget(
            account_id=self._get_param("AccountId"),
            budget=self._get_param("Budget"),
            notifications=self._get_param("NotificationsWithSubscribers", []),
            tags=self._get_param("ResourceTags", []),
        )
        return json.dumps({})

    def update_budget(self: Any) -> str:
        self.backend.update_budget(account_id=self._get_param("AccountId"), new_budget=self._get_param("NewBudget"))
        return json.dumps({})

    def update_notification(self: Any) -> str:
        self.backend.update_notification(
            self._get_param("AccountId"), self._get_param("BudgetName"), self._get_param("OldNotification"), self._get_param("NewNotification")
        )
        return json.dumps({})

    def describe_subscribers_for_notification(self: Any) -> str:
        subscribers = self.backend.describe_subscribers_for_notification(
            self._get_param("AccountId"), self._get_param("BudgetName"), self._get_param("Notification")
        )
        return json.dumps({"Subscribers": subscribers})

    def create_subscriber(self: Any) -> str:
        self.backend.create_subscriber(
            self._get_param("AccountId"), self._get_param("BudgetName"), self._get_param("Notification"), self._get_param("Subscriber")
        )
        return json.dumps({})

    def delete_subscriber(self: Any) -> str:
        self.backend.delete_subscriber(
            self._get_param("AccountId"), self._get_param("BudgetName"), self._get_param("Notification"), self._get_param("Subscriber")
        )
        return json.dumps({})

    def describe_notifications_for_budget(self: Any) -> str:
        notifications = self.backend.describe_notifications_for_budget(account_id=self._get_param("AccountId"), budget_name=self._get_param("BudgetName"))
        return json.dumps({"Notifications": notifications})

    def describe_budget_notifications_for_account(self: Any) -> str:
        found = self.backend.describe_budget_notifications_for_account(self._get_param("AccountId"))
        return json.dumps({"BudgetNotificationsForAccount": found})

    def describe_budget_performance_history(self: Any) -> str:
        history = self.backend.describe_budget_performance_history(self._get_param("AccountId"), self._get_param("BudgetName"))
        return json.dumps({"BudgetPerformanceHistory": history})

    def list_tags_for_resource(self: Any) -> str:
        return json.dumps({"ResourceTags": self.backend.list_tags_for_resource(self._get_param("ResourceARN"))})

    def tag_resource(self: Any) -> str:
        self.backend.tag_resource(self._get_param("ResourceARN"), self._get_param("ResourceTags", []))
        return json.dumps({})

    def untag_resource(self: Any) -> str:
        self.backend.untag_resource(self._get_param("ResourceARN"), self._get_param("ResourceTagKeys", []))
        return json.dumps({})


def install() -> None:
    """Patch moto's budgets backend and responses (idempotent)."""
    global _installed
    if _installed:
        return
    for name, method in vars(Backend).items():
        if callable(method) and not name.startswith("original_"):
            setattr(budgets_models.BudgetsBackend, name, method)
    for name, method in vars(Responses).items():
        if callable(method):
            setattr(BudgetsResponse, name, method)
    _installed = True
