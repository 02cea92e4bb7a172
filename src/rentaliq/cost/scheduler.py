"""Off-hours schedules on the bill: the ``AWS::Scheduler::Schedule`` lines, and which database a schedule stops.

A template's schedules change two things. Their own invocations are billed (EventBridge Scheduler, per million
invocations), and a pair that stops and starts a database (targets ``offhours.STOP_TARGET`` / ``START_TARGET``
with ``{"DbInstanceIdentifier": ...}`` as Input) turns that instance's 730 hours into the hours the pair leaves it
running (``OffHours.running_hours_per_month``, AWS's 7-day automatic start included). Both are read from the
template, like every other line, so the bill prices what the stack deploys, not what the spec intends.

The free tier (14 M invocations a month) is per account and is not subtracted, as for every other service
(prices.toml): the line shows what the invocations would cost, a few millionths of a dollar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rentaliq.cost.lines import Line, PricingContext, builds, props, refers_to
from rentaliq.cron import Rate, ScheduleExpressionError, fires_between, parse
from rentaliq.offhours import HOURS_PER_MONTH, START_TARGET, STOP_TARGET, OffHours

SCHEDULE_TYPE = "AWS::Scheduler::Schedule"
_REFERENCE_WEEKS = 4


@dataclass(frozen=True)
class DatabaseSchedule:
    """The enabled stop and start schedules of one database in a template."""

    stop_id: str  # logical ids
    start_id: str
    offhours: OffHours

    @property
    def running_hours(self) -> float:
        return self.offhours.running_hours_per_month()


def _state(resource: dict[str, Any]) -> str:
    return str(props(resource).get("State", "ENABLED"))


def _input_names(value: Any, instance_id: str, instance_name: str) -> bool:
    """Whether a schedule target's Input names the instance: literal JSON, or an Fn::Join/Fn::Sub around a Ref."""
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            return bool(instance_name) and instance_name in value
        return isinstance(data, dict) and bool(instance_name) and data.get("DbInstanceIdentifier") == instance_name
    return refers_to(value, instance_id) or (bool(instance_name) and instance_name in json.dumps(value))


def schedule_for(instance_id: str, ctx: PricingContext) -> DatabaseSchedule | None:
    """The enabled stop/start pair that targets the DB instance ``instance_id`` (a logical id), if the template has one."""
    name = str(props(ctx.resources[instance_id]).get("DBInstanceIdentifier", ""))
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for lid, resource in ctx.of_type(SCHEDULE_TYPE):
        target = props(resource).get("Target", {})
        arn = target.get("Arn") if isinstance(target, dict) else None
        if arn not in (STOP_TARGET, START_TARGET) or _state(resource) != "ENABLED":
            continue
        if _input_names(target.get("Input"), instance_id, name):
            found["stop" if arn == STOP_TARGET else "start"] = (lid, props(resource))
    if set(found) != {"stop", "start"}:
        return None  # a stop without a start (or the reverse) is not an off-hours schedule: bill the full month
    (stop_id, stop), (start_id, start) = found["stop"], found["start"]
    zone = stop.get("ScheduleExpressionTimezone") or "UTC"
    if (start.get("ScheduleExpressionTimezone") or "UTC") != zone:
        return None  # OffHours holds one time zone; two differing ones are not what our stacks make
    try:
        return DatabaseSchedule(stop_id, start_id, OffHours(str(stop["ScheduleExpression"]), str(start["ScheduleExpression"]), str(zone)))
    except (KeyError, ScheduleExpressionError, ValueError):
        return None


def invocations_per_month(expression: str, timezone: str) -> float:
    """How often an expression fires in an average month (730 h): a rate by division, cron and at() counted over
    whole reference weeks."""
    from rentaliq.offhours import _REFERENCE  # the same reference weeks as the running hours

    parsed = parse(expression)
    if isinstance(parsed, Rate):
        return HOURS_PER_MONTH * 3600 / parsed.every.total_seconds()
    end = _REFERENCE + timedelta(weeks=_REFERENCE_WEEKS)
    fires = sum(1 for _ in fires_between(parsed, timezone, _REFERENCE, end))
    return fires * HOURS_PER_MONTH / (_REFERENCE_WEEKS * 7 * 24)


@builds(SCHEDULE_TYPE)
def schedule(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    p = props(resource)
    expression = str(p.get("ScheduleExpression", ""))
    timezone = str(p.get("ScheduleExpressionTimezone") or "UTC")
    if _state(resource) != "ENABLED":
        return [ctx.line(lid, "Invocations (schedule disabled)", 0, "scheduler.invocation")]
    try:
        per_month = invocations_per_month(expression, timezone)
    except (ScheduleExpressionError, ValueError):
        per_month = 0.0
    component = f"Invocations ({expression} {timezone}: {per_month:,.1f} a month)"
    return [ctx.line(lid, component, per_month / 1_000_000, "scheduler.invocation", note="the first 14 M invocations a month of an account are free")]
