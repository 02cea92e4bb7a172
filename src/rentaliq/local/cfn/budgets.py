"""``AWS::Budgets::Budget``: the environment's budget, created through the Budgets API as CloudFormation does.

A budget is named (``Budget.BudgetName``, generated when the template gives none) and unique per account, so a
create first looks for that name and fails, never adopting a budget someone made by hand; a rollback deletes only
the budget its operation created. ``NotificationsWithSubscribers`` and the name are create-only in AWS's schema
(a change replaces the budget, by ``schemas``); everything else in ``Budget`` is updated with UpdateBudget, and
``ResourceTags`` with Tag/UntagResource. CloudFormation's own tags go on at create, so that after a crash the
budget an interrupted create made is found by name and rolled back.
"""

from __future__ import annotations

import json
from typing import Any

from rentaliq.local.cfn.base import AlreadyExists, Context, Provider, ProviderError, as_bool, is_not_found, removed_tag_keys, tag_list

NAME_MAX_LENGTH = 100  # Budgets' limit on BudgetName
_COST_TYPES = (
    "IncludeCredit",
    "IncludeDiscount",
    "IncludeOtherSubscription",
    "IncludeRecurring",
    "IncludeRefund",
    "IncludeSubscription",
    "IncludeSupport",
    "IncludeTax",
    "IncludeUpfront",
    "UseAmortized",
    "UseBlended",
)


def _json_map(value: Any) -> Any:
    """CostFilters and PlannedBudgetLimits may be given as a JSON string (the schema allows object or string)."""
    return json.loads(value) if isinstance(value, str) else value


def _spend(spend: dict[str, Any]) -> dict[str, str]:
    """The API takes amounts as strings ("18"); a template gives numbers."""
    return {"Amount": str(spend["Amount"]), "Unit": str(spend["Unit"])}


def _time(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def api_budget(budget: dict[str, Any], name: str) -> dict[str, Any]:
    """The template's ``Budget`` property as the API's Budget structure, every property passed on or refused by name."""
    known = {"BudgetName", "BudgetType", "TimeUnit", "BudgetLimit", "CostFilters", "CostTypes", "PlannedBudgetLimits", "TimePeriod"}
    unknown = sorted(set(budget) - known)
    if unknown:
        raise ValueError(f"The local cloud cannot create AWS::Budgets::Budget with Budget.{', Budget.'.join(unknown)}; supported: {', '.join(sorted(known))}")
    result: dict[str, Any] = {"BudgetName": name, "BudgetType": budget["BudgetType"], "TimeUnit": budget["TimeUnit"]}
    if budget.get("BudgetLimit"):
        result["BudgetLimit"] = _spend(budget["BudgetLimit"])
    if budget.get("CostFilters"):
        result["CostFilters"] = {key: [str(v) for v in values] for key, values in _json_map(budget["CostFilters"]).items()}
    if budget.get("CostTypes"):
        result["CostTypes"] = {key: as_bool(value) for key, value in budget["CostTypes"].items() if key in _COST_TYPES}
    if budget.get("PlannedBudgetLimits"):
        result["PlannedBudgetLimits"] = {str(k): _spend(v) for k, v in _json_map(budget["PlannedBudgetLimits"]).items()}
    if budget.get("TimePeriod"):
        result["TimePeriod"] = {k: _time(v) for k, v in budget["TimePeriod"].items()}
    return result


def api_notification(notification: dict[str, Any]) -> dict[str, Any]:
    result = {
        "NotificationType": notification["NotificationType"],
        "ComparisonOperator": notification["ComparisonOperator"],
        "Threshold": float(notification["Threshold"]),
    }
    if notification.get("ThresholdType"):
        result["ThresholdType"] = notification["ThresholdType"]
    return result


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


class Budget(Provider):
    type_name = "AWS::Budgets::Budget"

    @staticmethod
    def name(props: dict[str, Any], ctx: Context) -> str:
        given: str | None = (props.get("Budget") or {}).get("BudgetName")
        return given or ctx.generated_name(NAME_MAX_LENGTH)

    def custom_name(self, props: dict[str, Any]) -> str | None:
        """The name sits in ``Budget.BudgetName``: a change that replaces a named budget is refused, as on AWS."""
        name = (props.get("Budget") or {}).get("BudgetName")
        return name if isinstance(name, str) and name else None

    @staticmethod
    def arn(name: str, ctx: Context) -> str:
        return f"arn:{_partition(ctx.region)}:budgets::{ctx.account_id}:budget/{name}"

    def _exists(self, name: str, ctx: Context) -> bool:
        try:
            ctx.client("budgets").describe_budget(AccountId=ctx.account_id, BudgetName=name)
        except Exception as error:
            if is_not_found(error):
                return False
            raise
        return True

    def locate(self, props, ctx):
        name = self.name(props, ctx)
        return [name] if self._exists(name, ctx) else []

    def check_absent(self, props, ctx):
        if self.locate(props, ctx):
            raise AlreadyExists(self.name(props, ctx))

    def create(self, props, ctx):
        name = self.name(props, ctx)
        try:
            budget = api_budget(props["Budget"], name)
        except ValueError as error:
            raise ProviderError(str(error)) from None
        notifications = [
            {
                "Notification": api_notification(n["Notification"]),
                "Subscribers": [{"SubscriptionType": s["SubscriptionType"], "Address": s["Address"]} for s in n["Subscribers"]],
            }
            for n in props.get("NotificationsWithSubscribers") or []
        ]
        ctx.client("budgets").create_budget(
            AccountId=ctx.account_id,
            Budget=budget,
            NotificationsWithSubscribers=notifications,
            ResourceTags=tag_list({"Tags": props.get("ResourceTags") or []}) + ctx.cloudformation_tags(),
        )
        return name

    def update(self, physical_id, old, new, ctx):
        self.in_place_only(old, new, frozenset({"Budget", "ResourceTags"}))
        budgets = ctx.client("budgets")
        if new.get("Budget") != old.get("Budget"):
            try:
                budget = api_budget(new["Budget"], physical_id)
            except ValueError as error:
                raise ProviderError(str(error)) from None
            budgets.update_budget(AccountId=ctx.account_id, NewBudget=budget)
        old_tags, new_tags = {"Tags": old.get("ResourceTags") or []}, {"Tags": new.get("ResourceTags") or []}
        arn = self.arn(physical_id, ctx)
        if removed := removed_tag_keys(old_tags, new_tags):
            budgets.untag_resource(ResourceARN=arn, ResourceTagKeys=removed)
        if new_tags["Tags"] and new_tags != old_tags:
            budgets.tag_resource(ResourceARN=arn, ResourceTags=tag_list(new_tags))
        return physical_id

    def delete(self, physical_id, props, ctx):
        try:
            ctx.client("budgets").delete_budget(AccountId=ctx.account_id, BudgetName=physical_id)
        except Exception as error:
            if not is_not_found(error):
                raise

    def attributes(self, physical_id, props, ctx):
        return {"Id": physical_id}


PROVIDERS = [Budget]
