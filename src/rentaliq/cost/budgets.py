"""Lines for the environment's AWS Budget: $0, shown on the bill rather than hidden, so the budget is accounted for.

A budget without actions is free; one that an ``AWS::Budgets::BudgetsAction`` acts on is billed per day after the
account's first two (not subtracted here, like every per-account free tier: the environments may share an account).
"""

from __future__ import annotations

from typing import Any

from rentaliq.cost.lines import Line, PricingContext, builds, props

HOURS_PER_DAY = 24


def budget_name(resource: dict[str, Any]) -> str:
    """The budget's name sits inside its ``Budget`` property, where the bill's generic name lookup does not look."""
    name = (props(resource).get("Budget") or {}).get("BudgetName")
    return name if isinstance(name, str) else ""


@builds("AWS::Budgets::Budget")
def budget(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    name = budget_name(resource)
    acted_on = any(name and props(r).get("BudgetName") == name for _, r in ctx.of_type("AWS::Budgets::BudgetsAction"))
    component, key = ("Action-enabled budget", "budgets.action_enabled") if acted_on else ("Budget without actions (free)", "budgets.budget")
    days = ctx.hours / HOURS_PER_DAY
    return [Line(lid, name, resource["Type"], component, days, ctx.prices[key])]
