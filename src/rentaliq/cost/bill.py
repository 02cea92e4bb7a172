"""An environment's monthly bill: every resource of its synthesized template priced (or declared free), the total
against the spec's budget range, and the alternatives worth knowing.

The bill is computed from the template, never from the spec alone: a construct that adds a resource adds its lines
(DESIGN.md decision 13). The spec supplies what a template cannot say: the usage assumptions and the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The builder modules register themselves on import: importing them here is what makes them part of every bill.
from rentaliq.cost import audit, budgets, ec2, network, observability, rds, scheduler, storage  # noqa: F401
from rentaliq.cost.alternatives import Alternative, alternatives_for
from rentaliq.cost.free import FREE_TYPES
from rentaliq.cost.lines import BUILDERS, Line, PricingContext, physical_name
from rentaliq.cost.prices import PriceError, PriceTable
from rentaliq.spec.models import EnvironmentSpec, UsageSpec

FREE_TIER_NOTE = (
    "Per-account free tiers (10 alarms, 3 dashboards, 5 GB of logs, 1 M SNS requests...) are not subtracted: "
    "the environments may share an account. Data transfer out and taxes are not included."
)


class UnpricedResource(PriceError):
    """A template holds a type that is neither priced nor declared free."""


@dataclass(frozen=True)
class FreeResource:
    resource: str
    name: str
    resource_type: str
    reason: str


@dataclass(frozen=True)
class Bill:
    env: str
    stack: str
    region: str
    prices_as_of: str
    lines: tuple[Line, ...]
    free: tuple[FreeResource, ...]
    usage: UsageSpec
    budget_low: float
    budget_high: float
    alternatives: tuple[Alternative, ...]

    @property
    def total(self) -> float:
        return sum(line.monthly_usd for line in self.lines)

    @property
    def over_budget(self) -> bool:
        return round(self.total, 2) > self.budget_high

    @property
    def verdict(self) -> str:
        total = round(self.total, 2)
        if total > self.budget_high:
            return "over budget"
        return "below the budget range" if total < self.budget_low else "within budget"

    def over_budget_lines(self) -> tuple[Line, ...]:
        """The lines that push the total over budget: the largest first, until the total without them is within it."""
        culprits: list[Line] = []
        remaining = self.total
        for line in sorted(self.lines, key=lambda line: line.monthly_usd, reverse=True):
            if round(remaining, 2) <= self.budget_high:
                break
            culprits.append(line)
            remaining -= line.monthly_usd
        return tuple(culprits)

    def unconfirmed_prices(self) -> tuple[str, ...]:
        keys = {line.price.key for line in self.lines if not line.price.checked}
        keys |= {line.price.key for alt in self.alternatives for line in alt.lines if not line.price.checked}
        return tuple(sorted(keys))

    def to_dict(self) -> dict[str, Any]:
        """The bill for scripts and CI (`rentaliq cost --json`)."""
        return {
            "environment": self.env,
            "stack": self.stack,
            "region": self.region,
            "prices_as_of": self.prices_as_of,
            "currency": "USD",
            "total_monthly_usd": round(self.total, 2),
            "budget": {"monthly_usd_low": self.budget_low, "monthly_usd_high": self.budget_high, "verdict": self.verdict},
            "over_budget_lines": [_line_ref(line) for line in self.over_budget_lines()] if self.over_budget else [],
            "lines": [_line_dict(line) for line in self.lines],
            "free": [{"resource": f.resource, "name": f.name, "type": f.resource_type, "reason": f.reason} for f in self.free],
            "usage": self.usage.model_dump(),
            "alternatives": [alt.to_dict() for alt in self.alternatives],
            "unconfirmed_prices": list(self.unconfirmed_prices()),
            "notes": [FREE_TIER_NOTE],
        }


def _line_ref(line: Line) -> dict[str, Any]:
    return {"resource": line.resource, "name": line.name, "component": line.component, "monthly_usd": round(line.monthly_usd, 4)}


def _line_dict(line: Line) -> dict[str, Any]:
    return {
        **_line_ref(line),
        "type": line.resource_type,
        "unit": line.price.unit,
        "quantity": round(line.quantity, 6),
        "unit_usd": line.price.usd,
        "price": line.price.key,
        "source": line.price.source,
        "usage": list(line.usage),
        "note": line.note or line.price.note,
    }


def bill_lines(template: dict[str, Any], ctx: PricingContext) -> tuple[tuple[Line, ...], tuple[FreeResource, ...]]:
    """Every resource of ``template`` as lines or as a free resource; UnpricedResource for any other type."""
    lines: list[Line] = []
    free: list[FreeResource] = []
    for lid, resource in template.get("Resources", {}).items():
        resource_type = resource.get("Type", "")
        if resource_type in BUILDERS:
            lines.extend(BUILDERS[resource_type](lid, resource, ctx))
        elif resource_type in FREE_TYPES:
            free.append(FreeResource(lid, physical_name(resource), resource_type, FREE_TYPES[resource_type]))
        else:
            raise UnpricedResource(
                f"{ctx.spec.stack_name}: resource {lid} has type {resource_type!r}, which has no cost rule; "
                "price it in rentaliq/cost/ (a line builder) or declare it free in rentaliq/cost/free.py"
            )
    return tuple(lines), tuple(free)


def compute_bill(template: dict[str, Any], spec: EnvironmentSpec, prices: PriceTable, usage: UsageSpec | None = None) -> Bill:
    """The bill of ``spec``'s environment from its synthesized ``template`` (``usage`` defaults to the spec's)."""
    ctx = PricingContext(template, spec, usage or spec.usage, prices)
    lines, free = bill_lines(template, ctx)
    return Bill(
        env=spec.name.value,
        stack=spec.stack_name,
        region=prices.region,
        prices_as_of=prices.as_of.isoformat(),
        lines=lines,
        free=free,
        usage=ctx.usage,
        budget_low=spec.cost.monthly_usd_low,
        budget_high=spec.cost.monthly_usd_high,
        alternatives=alternatives_for(lines, ctx),
    )
