"""Alternatives a bill shows beside its total: what the same environment would cost another way.

Each alternative is computed by a function in ``ALTERNATIVES`` from the bill's lines and context; one that does not
apply returns None and shows nothing. Today: a 1-year reserved instance for a critical (PROD) environment's
database, and, where the template stops a database off-hours (cost/scheduler.py), the same database running around
the clock: the bill prices the schedule, and this alternative shows what it saves (in dollars, and as a share of the
instance cost without it).

Reserved instances are offered for critical environments only: LAB and QA are meant to stop off-hours, and a
reservation bills every hour whether the instance runs or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rentaliq.cost.lines import Line, PricingContext
from rentaliq.cost.rds import reserved_price_key
from rentaliq.cost.scheduler import schedule_for


@dataclass(frozen=True)
class Alternative:
    name: str
    description: str
    replaces: tuple[Line, ...]  # the bill's lines this alternative would change
    lines: tuple[Line, ...]  # what it would bill instead
    details: dict[str, Any] = field(default_factory=dict)  # figures worth a script's reading (JSON only)

    @property
    def monthly_delta(self) -> float:
        """Change to the monthly total (negative: a saving)."""
        return sum(line.monthly_usd for line in self.lines) - sum(line.monthly_usd for line in self.replaces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "monthly_delta_usd": round(self.monthly_delta, 2),
            **self.details,
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
    """The database's instance hours at the 1-year No Upfront reserved rate (critical environments only); or, when
    the spec says the reservation is bought (``cost.reserved_instance``), what the same hours cost on demand."""
    if ctx.spec.cost.reserved_instance:
        return _on_demand(lines, ctx)
    if not ctx.spec.critical:
        return None
    replaces: list[Line] = []
    instead: list[Line] = []
    for line in lines:
        if line.resource_type != "AWS::RDS::DBInstance" or not line.component.startswith("Instance hours"):
            continue
        instance_class = ctx.resources[line.resource]["Properties"].get("DBInstanceClass")
        key = reserved_price_key(instance_class)
        if key not in ctx.prices:
            continue
        replaces.append(line)
        every_hour = ctx.hours * _copies(ctx, line.resource)  # a reservation bills every hour, even those a schedule stops
        component = line.component.split(", off-hours schedule")[0].rstrip(")") + ")"
        instead.append(ctx.line(line.resource, component.replace("Instance hours", "Reserved instance hours, 1-year No Upfront"), every_hour, key))
    if not replaces:
        return None
    return Alternative(
        "1-year reserved instance",
        "the same database billed at the 1-year Standard Reserved Instance rate (No Upfront): a 12-month commitment",
        tuple(replaces),
        tuple(instead),
    )


def _copies(ctx: PricingContext, logical_id: str) -> int:
    """Instances billed for one database: two with Multi-AZ (the standby)."""
    return 2 if ctx.resources[logical_id]["Properties"].get("MultiAZ") is True else 1


def _on_demand(lines: tuple[Line, ...], ctx: PricingContext) -> Alternative | None:
    reserved = [line for line in lines if line.resource_type == "AWS::RDS::DBInstance" and line.component.startswith("Reserved instance hours")]
    if not reserved:
        return None
    instead = []
    for line in reserved:
        instance_class = ctx.resources[line.resource]["Properties"].get("DBInstanceClass")
        component = line.component.replace("Reserved instance hours, 1-year No Upfront", "Instance hours")
        scheduled = schedule_for(line.resource, ctx)  # on demand, an off-hours schedule saves the hours it stops
        hours = line.quantity if scheduled is None else scheduled.running_hours * _copies(ctx, line.resource)
        instead.append(ctx.line(line.resource, component, hours, f"rds.instance.{instance_class}"))
    return Alternative(
        "on demand",
        "the same database without its 1-year reservation (cost.reserved_instance = false), at the on-demand rate",
        tuple(reserved),
        tuple(instead),
    )


def without_schedule(lines: tuple[Line, ...], ctx: PricingContext) -> Alternative | None:
    """The scheduled databases billed for every hour of the month: what their off-hours schedule saves."""
    replaces: list[Line] = []
    instead: list[Line] = []
    names: list[str] = []
    for line in lines:
        if line.resource_type != "AWS::RDS::DBInstance" or not line.component.startswith("Instance hours"):
            continue
        scheduled = schedule_for(line.resource, ctx)
        if scheduled is None:
            continue
        copies = line.quantity / scheduled.running_hours if scheduled.running_hours else 1  # Multi-AZ: two
        replaces.append(line)
        component = line.component.split(", off-hours schedule")[0] + ")"  # "Instance hours (db.t3.micro, Single-AZ)"
        instead.append(ctx.line(line.resource, component, ctx.hours * copies, line.price.key))
        stop, start = (ctx.resources[lid]["Properties"].get("Name", lid) for lid in (scheduled.stop_id, scheduled.start_id))
        names.append(f"{stop} / {start}")
    if not replaces:
        return None
    full = sum(line.monthly_usd for line in instead)
    saving = full - sum(line.monthly_usd for line in replaces)
    percent = 100 * saving / full if full else 0.0
    return Alternative(
        "without the off-hours schedule",
        f"the schedule ({', '.join(names)}) saves ${saving:,.2f} a month, {percent:.1f} % of the instance cost (${full:,.2f} running around the clock)",
        tuple(replaces),
        tuple(instead),
        {"schedule_saving_usd": round(saving, 2), "schedule_saving_percent_of_instance": round(percent, 1), "instance_usd_without_schedule": round(full, 2)},
    )


# The extension point: one function per way the same environment could be billed.
ALTERNATIVES: list[AlternativeBuilder] = [reserved_instance, without_schedule]


def alternatives_for(lines: tuple[Line, ...], ctx: PricingContext) -> tuple[Alternative, ...]:
    return tuple(alt for build in ALTERNATIVES if (alt := build(lines, ctx)) is not None)
