"""EventBridge Scheduler schedules (``AWS::Scheduler::Schedule``), through the Scheduler API as CloudFormation does.

A schedule is named within its group; ``Ref`` is the name and ``Fn::GetAtt Arn`` its ARN. A create never adopts a
schedule that exists under the same name in the same group: it fails with Scheduler's own ConflictException
wording, and the rollback leaves that schedule alone. UpdateSchedule replaces every field (Scheduler's documented
behaviour), so an update sends the whole new definition, and a property the template drops returns to Scheduler's
default. Schedules carry no tags in CloudFormation (the registry schema says ``taggable: false``).
"""

from __future__ import annotations

from typing import Any

from rentaliq.local.cfn.base import AlreadyExists, Named, error_code, is_not_found

DEFAULT_GROUP = "default"
# Template properties that map to CreateSchedule/UpdateSchedule parameters of the same name.
_PASSED = ("Description", "EndDate", "FlexibleTimeWindow", "KmsKeyArn", "ScheduleExpression", "ScheduleExpressionTimezone", "StartDate", "State", "Target")
_INTEGERS = {
    "FlexibleTimeWindow": ("MaximumWindowInMinutes",),
    "RetryPolicy": ("MaximumEventAgeInSeconds", "MaximumRetryAttempts"),
}


def _group(props: dict[str, Any]) -> str:
    return props.get("GroupName") or DEFAULT_GROUP


def _conflict(name: str, group: str) -> AlreadyExists:
    return AlreadyExists(name, f"ConflictException: Schedule {name} already exists in group {group}.")


def _integers(section: str, value: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation hands numbers over as strings when a template wrote them so; the API wants integers."""
    return {k: (int(v) if k in _INTEGERS.get(section, ()) else v) for k, v in value.items()}


def schedule_request(props: dict[str, Any]) -> dict[str, Any]:
    """CreateSchedule/UpdateSchedule's parameters (less Name and GroupName) from the template's properties."""
    request = {key: props[key] for key in _PASSED if props.get(key) is not None}
    if "FlexibleTimeWindow" in request:
        request["FlexibleTimeWindow"] = _integers("FlexibleTimeWindow", request["FlexibleTimeWindow"])
    if "Target" in request:
        target = dict(request["Target"])
        if isinstance(target.get("RetryPolicy"), dict):
            target["RetryPolicy"] = _integers("RetryPolicy", target["RetryPolicy"])
        request["Target"] = target
    return request


class Schedule(Named):
    type_name = "AWS::Scheduler::Schedule"
    name_max_length = 64

    def named_exists(self, name: str, ctx: Any) -> bool:
        raise NotImplementedError  # locate() knows the group too

    def locate(self, props: dict[str, Any], ctx: Any) -> list[str]:
        name = self.name(props, ctx)
        try:
            ctx.client("scheduler").get_schedule(Name=name, GroupName=_group(props))
        except Exception as error:
            if is_not_found(error):
                return []
            raise
        return [name]

    def check_absent(self, props: dict[str, Any], ctx: Any) -> None:
        if self.locate(props, ctx):
            raise _conflict(self.name(props, ctx), _group(props))

    def create(self, props: dict[str, Any], ctx: Any) -> str:
        name, group = self.name(props, ctx), _group(props)
        try:
            ctx.client("scheduler").create_schedule(Name=name, GroupName=group, **schedule_request(props))
        except Exception as error:
            if error_code(error) == "ConflictException":  # made by someone else since check_absent: never ours
                raise _conflict(name, group) from None
            raise
        return name

    def update(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Any) -> str:
        if _group(old) != _group(new):  # Scheduler cannot move a schedule between groups
            self.in_place_only({"GroupName": _group(old)}, {"GroupName": _group(new)}, frozenset())
        ctx.client("scheduler").update_schedule(Name=physical_id, GroupName=_group(new), **schedule_request(new))
        return physical_id

    def delete(self, physical_id: str, props: dict[str, Any], ctx: Any) -> None:
        try:
            ctx.client("scheduler").delete_schedule(Name=physical_id, GroupName=_group(props))
        except Exception as error:
            if not is_not_found(error):
                raise

    def attributes(self, physical_id: str, props: dict[str, Any], ctx: Any) -> dict[str, Any]:
        schedule = ctx.client("scheduler").get_schedule(Name=physical_id, GroupName=_group(props))
        return {"Arn": schedule["Arn"]}


PROVIDERS = (Schedule,)
