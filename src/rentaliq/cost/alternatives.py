"""Alternatives a bill shows beside its total: what the same environment would cost another way.

Each alternative is computed by a function in ``ALTERNATIVES`` from the bill's lines and context; one that does not
apply returns None and shows nothing. Today: a 1-year reserved instance for a critical (PROD) environment's
database. Off-hours schedules (issue 11 section 3) add their saving here as one more function, once the stacks
create schedules, reading them from the template like everything else.

Reserved instances are offered for critical environments only: LAB and QA are meant to stop off-hours, and a
reservation bills every hour whether the instance runs or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rentaliq.cost.lines import Line, PricingContext


@dataclass(frozen=True)
class Alternative:
    name: str
    description: str
    replaces: tuple[Line, ...]  # the bill's lines this alternative would change
    lines: tuple[Line, ...]  # what it would bill instead

    @property
    def monthly_delta(self) -> float:
        """Change to the monthly total (negative: a saving)."""
        return sum(line.monthly_usd for line in self.lines) - sum(line.monthly_usd for line in self.replaces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "monthly_delta_usd": round(self.monthly_delta, 2),
            "lines": [
                {
                    "resource": line.resource,
                    "component": line.component,
                    "quantity": line.quantity,
                    "unit": line.price.unit,
                    "unit_usd": line.price.usd,
                    "monthly_usd": round(line.monthly_usd, 4),
                    "price": line.price.key,
                    "source": line.price.source,
                }
                for line in self.lines
            ],
        }


AlternativeBuilder = Callable[[tuple[Line, ...], PricingContext], "Alternative | None"]


def reserved_instance(lines: tuple[Line, ...], ctx: PricingContext) -> Alternative | None:
    """The database's instance hours at the 1-year No Upfront reserved rate (critical environments only)."""
    if not ctx.spec.critical:
        return None
    replaces: list[Line] = []
    instead: list[Line] = []
    for line in lines:
        if line.resource_type != "AWS::RDS::DBInstance" or not line.component.startswith("Instance hours"):
            continue
        instance_class = ctx.resources[line.resource]["Properties"].get("DBInstanceClass")
        key = f"rds.reserved_1y_no_upfront.{instance_class}"
        if key not in ctx.prices:
            continue
        replaces.append(line)
        instead.append(ctx.line(line.resource, line.component.replace("Instance hours", "Reserved instance hours, 1-year No Upfront"), line.quantity, key))
    if not replaces:
        return None
    return Alternative(
        "1-year reserved instance",
        "the same database billed at the 1-year Standard Reserved Instance rate (No Upfront): a 12-month commitment",
        tuple(replaces),
        tuple(instead),
    )


# The extension point: issue 11 section 3 appends the schedule saving here.
ALTERNATIVES: list[AlternativeBuilder] = [reserved_instance]


def alternatives_for(lines: tuple[Line, ...], ctx: PricingContext) -> tuple[Alternative, ...]:
    return tuple(alt for build in ALTERNATIVES if (alt := build(lines, ctx)) is not None)
