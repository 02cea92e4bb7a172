"""Where moto's EventBridge Scheduler disagrees with AWS, fixed; each fix says what Scheduler does.

- CreateSchedule in a group that does not exist: ResourceNotFoundException (moto: a KeyError, HTTP 500).
- A name taken in its group: ConflictException with HTTP 409 (moto: 400).
- ScheduleExpression, ScheduleExpressionTimezone, State and FlexibleTimeWindow are validated as Scheduler does,
  with ValidationException (moto stores anything, and the local executor would then fail to read it).
- UpdateSchedule replaces the whole definition: a State left out is ENABLED again, as on AWS (moto: None).
- GetSchedule and ListSchedules leave out the fields a schedule does not have, as AWS does (moto: nulls).
- Every change (create, update) restarts the schedule's clock for the local executor (:mod:`.clock`).
"""

from __future__ import annotations

import functools
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moto.core.exceptions import JsonRESTError
from moto.scheduler import exceptions as scheduler_exceptions
from moto.scheduler import models as scheduler_models

from rentaliq.cron import ScheduleExpressionError, parse
from rentaliq.local.scheduler import clock

_installed = False
STATES = ("ENABLED", "DISABLED")
WINDOW_MODES = ("OFF", "FLEXIBLE")


class ValidationException(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


def validate(
    schedule_expression: str | None,
    timezone: str | None,
    state: str | None,
    flexible_time_window: dict[str, Any] | None,
    target: dict[str, Any] | None,
) -> None:
    """Scheduler's checks on a schedule definition; the first problem, as Scheduler words it."""
    try:
        parse(schedule_expression or "")
    except ScheduleExpressionError:
        raise ValidationException(f"Invalid Schedule Expression {schedule_expression}.") from None
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationException(f"Invalid Schedule Expression Timezone {timezone}.") from None
    if state is not None and state not in STATES:
        raise ValidationException(
            f"1 validation error detected: Value '{state}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
        )
    window = flexible_time_window or {}
    if window.get("Mode") not in WINDOW_MODES:
        raise ValidationException(
            f"1 validation error detected: Value '{window.get('Mode')}' at 'flexibleTimeWindow.mode' failed to satisfy constraint: "
            "Member must satisfy enum value set: [OFF, FLEXIBLE]"
        )
    if window["Mode"] == "FLEXIBLE" and not 1 <= int(window.get("MaximumWindowInMinutes") or 0) <= 1440:
        raise ValidationException("MaximumWindowInMinutes must be between 1 and 1440 when the mode is FLEXIBLE.")
    if window["Mode"] == "OFF" and window.get("MaximumWindowInMinutes") is not None:
        raise ValidationException("MaximumWindowInMinutes is not allowed when the mode is OFF.")
    if not (target or {}).get("Arn") or not (target or {}).get("RoleArn"):
        raise ValidationException("A target needs an Arn and a RoleArn.")


def install() -> None:
    """Patch moto's Scheduler backend and models (idempotent)."""
    global _installed
    if _installed:
        return
    backend_cls, schedule_cls = scheduler_models.EventBridgeSchedulerBackend, scheduler_models.Schedule
    scheduler_exceptions.ScheduleExists.code = 409  # Scheduler's ConflictException is an HTTP 409
    original_create, original_update, original_to_dict = backend_cls.create_schedule, backend_cls.update_schedule, schedule_cls.to_dict

    @functools.wraps(original_create)
    def create_schedule(self: Any, **kwargs: Any) -> Any:
        self.get_schedule_group(kwargs.get("group_name"))  # ResourceNotFoundException, not a KeyError
        validate(
            kwargs.get("schedule_expression"),
            kwargs.get("schedule_expression_timezone"),
            kwargs.get("state"),
            kwargs.get("flexible_time_window"),
            kwargs.get("target"),
        )
        schedule = original_create(self, **kwargs)
        clock.restart(schedule)
        return schedule

    @functools.wraps(original_update)
    def update_schedule(self: Any, **kwargs: Any) -> Any:
        self.get_schedule(group_name=kwargs.get("group_name"), name=kwargs.get("name"))  # not found first, as AWS answers
        validate(
            kwargs.get("schedule_expression"),
            kwargs.get("schedule_expression_timezone"),
            kwargs.get("state"),
            kwargs.get("flexible_time_window"),
            kwargs.get("target"),
        )
        kwargs["state"] = kwargs.get("state") or "ENABLED"
        schedule = original_update(self, **kwargs)
        clock.restart(schedule)
        return schedule

    def to_dict(self: Any, short: bool = False) -> dict[str, Any]:
        return {key: value for key, value in original_to_dict(self, short).items() if value is not None}

    backend_cls.create_schedule = create_schedule
    backend_cls.update_schedule = update_schedule
    schedule_cls.to_dict = to_dict
    _installed = True
