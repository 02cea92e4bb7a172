"""`rentaliq wake ENV [--for 2h]`: start a database its off-hours schedule stopped, now, and say when it stops again.

Starting is RDS's StartDBInstance, then a wait (with progress) until the instance is available. A database that is
stopping is first waited for (RDS refuses to start it meanwhile); one already available or starting is not started
again.

``--for DURATION`` keeps it up at least that long, without editing the schedule's definition. The choice, and why:

* The stop schedule's ``StartDate`` is moved to ``hold_until`` (now + duration) when its next stop falls before
  that: Scheduler invokes no schedule before its StartDate, so the evening stop is skipped, and the schedule takes
  over again by itself afterwards: nothing to undo, nothing to forget. (Disabling the schedule instead would need
  someone, or something, to enable it again.)
* If the schedule would have the database stopped at ``hold_until`` (the hold ends off-hours, whether or not a
  regular stop fell inside it: a 2-hour wake at 02:00 must not run until the evening), a one-time schedule
  ``rentaliq-{env}-db-wake-stop``, ``at(hold_until)`` in UTC with the stop schedule's target and role, stops it
  then and deletes itself (ActionAfterCompletion DELETE). Otherwise the next regular stop does.
* A second ``wake --for`` never shortens a hold: the later of the two ends it.

A ``rentaliq deploy`` that changes the stop schedule sends CloudFormation's properties again, which ends a hold
early (the template has no StartDate); drift detection shows a held schedule's StartDate as drift meanwhile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.cron import fires_between
from rentaliq.deploy.target import Target
from rentaliq.offhours import STOP_TARGET
from rentaliq.ops.recovery.errors import RecoveryError, from_aws
from rentaliq.ops.schedules import OffHoursState, read_state, wake_stop_schedule
from rentaliq.runtime.instance_state import LiveSchedule, at_local, read_schedule

Progress = Callable[[str], None]
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
MAX_HOLD = timedelta(days=7)  # AWS starts a stopped instance after 7 days anyway; longer means "disable the schedule"


def parse_duration(text: str) -> timedelta:
    """``2h``, ``90m``, ``1h30m``, ``1d``: a positive duration of at most 7 days; ValueError naming what is allowed."""
    m = _DURATION.match(text.strip().lower())
    if not text.strip() or not m or not any(m.groups()):
        raise ValueError(f"--for {text!r} is invalid; allowed: a duration like 2h, 90m, 1h30m or 1d (at most 7d)")
    days, hours, minutes = (int(g or 0) for g in m.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes)
    if not timedelta(minutes=1) <= duration <= MAX_HOLD:
        raise ValueError(f"--for {text!r} is invalid; allowed: from 1m to 7d (for longer, set [schedule] enabled = false in the spec)")
    return duration


@dataclass(frozen=True)
class WakePlan:
    env: str
    instance: str
    status: str
    state: OffHoursState
    hold_until: datetime | None  # --for: the stop schedule does not stop it before this
    now: datetime

    @property
    def already_running(self) -> bool:
        return self.status in ("available", "starting")

    def lines(self) -> list[str]:
        start = "already running: nothing to start" if self.already_running else f"start it (StartDBInstance; it is {self.status})"
        lines = [f"wake {self.instance}: {start}"]
        if self.hold_until is not None:
            lines.append(f"  keep it up until {at_local(self.hold_until, self._zone(), self.now)}: the stop schedule waits until then")
        return lines

    def _zone(self) -> str:
        return self.state.stop.timezone if self.state.stop else "UTC"


@dataclass(frozen=True)
class WakeResult:
    env: str
    instance: str
    started: bool
    status: str
    next_stop: datetime | None
    next_stop_text: str
    wake_stop: datetime | None  # when the one-time wake-stop schedule stops it, if one was made

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.env,
            "instance": self.instance,
            "started": self.started,
            "status": self.status,
            "next_stop_utc": self.next_stop.isoformat() if self.next_stop else None,
            "next_stop": self.next_stop_text,
            "wake_stop_utc": self.wake_stop.isoformat() if self.wake_stop else None,
        }


def plan(target: Target, env: str, duration: timedelta | None, now: datetime | None = None) -> WakePlan:
    """What wake would do; RecoveryError when the environment is not deployed."""
    from rentaliq.ops.recovery.instances import environment_instance

    now = now or datetime.now(UTC)
    instance = environment_instance(target, env)
    state = read_state(target, env)
    hold = None
    if duration is not None:
        hold = (now + duration).replace(microsecond=0)
        previous = _existing_wake_stop(target, env)
        if previous is not None and previous > hold:
            hold = previous  # never shorten an earlier, longer hold
    return WakePlan(env, instance.identifier, instance.status, state, hold, now)


def wake(target: Target, planned: WakePlan, progress: Progress) -> WakeResult:
    """Start the database (unless running), apply the hold, wait until available; when it stops next."""
    from rentaliq.ops.recovery import waits

    rds = target.client("rds")
    started = False
    if planned.status == "stopping":
        _wait_stopped(target, planned.instance, progress)
    if not planned.already_running:
        progress(f"starting {planned.instance}")
        try:
            rds.start_db_instance(DBInstanceIdentifier=planned.instance)
        except ClientError as error:
            raise from_aws(error, planned.env, f"start {planned.instance}") from None
        started = True
    if planned.hold_until is not None:
        _hold(target, planned, progress)
    instance = waits.instance_available(target, planned.instance, progress)
    state = read_state(target, planned.env)  # after the hold: the schedules as they now are, a pending wake-stop included
    next_stop = state.next_stop(planned.now)
    wake_stop = next_stop if state.stopped_by_wake_stop(planned.now) else None
    zone = state.stop.timezone if state.stop else "UTC"
    if next_stop is None:
        text = "no schedule will stop it: it runs until stopped by hand"
    elif wake_stop is not None:
        text = f"{wake_stop_schedule(planned.env)} stops it {at_local(next_stop, zone, planned.now)}"
    else:
        text = f"the schedule {naming.db_stop_schedule(planned.env)} stops it {at_local(next_stop, zone, planned.now)}"
    return WakeResult(planned.env, planned.instance, started, instance.status, next_stop, text, wake_stop)


def _wait_stopped(target: Target, instance: str, progress: Progress) -> None:
    from rentaliq.ops.recovery.waits import _poll

    def read() -> tuple[bool, str]:
        status = target.client("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["DBInstanceStatus"]
        return status != "stopping", str(status)

    _poll(target, f"{instance} to finish stopping", read, progress, None, f"{target.aws_cli} rds describe-db-instances --db-instance-identifier {instance}")


def _existing_wake_stop(target: Target, env: str) -> datetime | None:
    found = read_schedule(target.client("scheduler"), wake_stop_schedule(env))
    if found is None or not found.expression.startswith("at("):
        return None
    return datetime.strptime(found.expression[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def _stopped_by_schedule_at(stop: LiveSchedule, start: LiveSchedule | None, moment: datetime) -> bool:
    """Whether the regular schedules have the database stopped at ``moment``: the later of the last stop and the
    last start in the week before it decides."""
    week = moment - timedelta(weeks=1)
    last_stop = max(fires_between(stop.expression, stop.timezone, week, moment), default=None)
    last_start = max(fires_between(start.expression, start.timezone, week, moment), default=None) if start else None
    return last_stop is not None and (last_start is None or last_stop > last_start)


def _hold(target: Target, planned: WakePlan, progress: Progress) -> datetime | None:
    """Keep the stop schedule from firing before ``hold_until``; the one-time wake-stop's time, if one is needed."""
    hold = planned.hold_until
    assert hold is not None
    scheduler = target.client("scheduler")
    stop_name = naming.db_stop_schedule(planned.env)
    stop = planned.state.stop
    if stop is None or not stop.enabled:
        progress(f"no enabled {stop_name}: nothing will stop it; the hold needs no change")
        return None
    upcoming = stop.next_fire(planned.now)
    ends_off_hours = _stopped_by_schedule_at(stop, planned.state.start, hold)
    try:
        definition = scheduler.get_schedule(Name=stop_name)
        if upcoming is not None and upcoming <= hold:  # the regular stop would come first: it waits
            _update(scheduler, definition, StartDate=hold)
            progress(f"{stop_name} holds until {at_local(hold, stop.timezone, planned.now)}")
        if not ends_off_hours:  # the hold ends during working hours: the next regular stop applies
            _delete_wake_stop(scheduler, planned.env)  # an earlier, shorter hold's wake-stop would stop it too soon
            return None
        _put_wake_stop(scheduler, planned.env, hold, definition["Target"])
    except ClientError as error:
        raise RecoveryError(f"started {planned.instance}, but could not hold {stop_name}: {from_aws(error, planned.env, 'hold')}") from None
    progress(f"{wake_stop_schedule(planned.env)} stops it {at_local(hold, stop.timezone, planned.now)}, when the hold ends off-hours")
    return hold


def _update(scheduler: Any, definition: dict[str, Any], **changes: Any) -> None:
    """UpdateSchedule replaces the whole definition: send back what GetSchedule returned, with ``changes``."""
    keep = (
        "Name",
        "GroupName",
        "ScheduleExpression",
        "ScheduleExpressionTimezone",
        "FlexibleTimeWindow",
        "Target",
        "State",
        "Description",
        "EndDate",
        "KmsKeyArn",
        "ActionAfterCompletion",
    )
    request = {key: definition[key] for key in keep if definition.get(key) is not None}
    scheduler.update_schedule(**request, **changes)


def _delete_wake_stop(scheduler: Any, env: str) -> None:
    try:
        scheduler.delete_schedule(Name=wake_stop_schedule(env))
    except scheduler.exceptions.ResourceNotFoundException:
        pass


def _put_wake_stop(scheduler: Any, env: str, when: datetime, stop_target: dict[str, Any]) -> None:
    target = {"Arn": STOP_TARGET, "RoleArn": stop_target["RoleArn"], "Input": json.dumps({"DbInstanceIdentifier": naming.db_instance_id(env)})}
    request = {
        "Name": wake_stop_schedule(env),
        "ScheduleExpression": f"at({when.astimezone(UTC):%Y-%m-%dT%H:%M:%S})",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": target,
        "ActionAfterCompletion": "DELETE",
        "Description": f"rentaliq wake --for: stops {naming.db_instance_id(env)} when the hold ends",
    }
    try:
        scheduler.create_schedule(**request)
    except scheduler.exceptions.ConflictException:
        scheduler.update_schedule(**request)
