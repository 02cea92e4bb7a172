"""The local cloud's EventBridge Scheduler: every pass invokes the schedules that are due, and applies RDS's 7-day rule.

A pass runs every ``RENTALIQ_LOCAL_SCHEDULER_SECONDS`` (default 30). What is due is computed from wall-clock time
(:mod:`.clock`), so the period only bounds how late a fire is invoked; a pass also runs on demand through the
control calls (:mod:`.control`). Only ENABLED schedules fire, each fire at most once: its outcome is recorded on
the schedule and committed to the local cloud's state before the pass goes on, so a crash right after an
invocation does not invoke it again after the restart.

Passes, control calls and the 7-day rule take one lock: an instance is never stopped by a schedule while the
7-day rule starts it. The changes they make to moto's state happen under the persistence shared lock (as a
request's do) and are committed afterwards, as the PostgreSQL supervisor's are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.rds import models as rds_models
from moto.scheduler import models as scheduler_models

from rentaliq.cron import At
from rentaliq.cron import parse as parse_expression
from rentaliq.local.periodic import PeriodicThread
from rentaliq.local.scheduler import clock, rds_stops, targets

log = logging.getLogger(__name__)

PERIOD_ENV = "RENTALIQ_LOCAL_SCHEDULER_SECONDS"
_lock = threading.RLock()


class ScheduleNotFound(LookupError):
    """No schedule of that name in that group (in any account or region the local cloud holds)."""


def period() -> float:
    try:
        return max(0.2, float(os.environ.get(PERIOD_ENV, 30)))
    except ValueError:
        return 30.0


@contextlib.contextmanager
def changing() -> Iterator[None]:
    """Change moto's state as a request would, and commit Scheduler and RDS afterwards (a no-op without persistence)."""
    from rentaliq.local import state

    current = state.current()
    if current is None:
        yield
        return
    with current.changing():
        yield
    if getattr(current, "closed", False):
        return  # stopping: the final snapshot is written, never commit after it
    try:
        current.mark_dirty(scheduler_models.scheduler_backends, rds_models.rds_backends)
        current.commit()
    except Exception:
        log.exception("could not commit the state changed by the local scheduler")


def schedules() -> list[tuple[str, str, Any, Any]]:
    """Every schedule the local cloud holds: (account, region, backend, schedule), without creating a backend."""
    found = []
    for account_id, by_region in list(dict.items(scheduler_models.scheduler_backends)):
        for region, backend in list(dict.items(by_region)):
            for group in list(backend.schedule_groups.values()):
                found.extend((account_id, region, backend, schedule) for schedule in list(group.schedules.values()))
    return found


def find(name: str, group: str = "default", region: str | None = None) -> tuple[str, str, Any, Any]:
    matches = [s for s in schedules() if s[3].name == name and s[3].group_name == group and (region is None or s[1] == region)]
    if not matches:
        raise ScheduleNotFound(f"Schedule {name} does not exist in group {group}" + (f" in {region}." if region else "."))
    if len(matches) > 1:
        raise ScheduleNotFound(f"Schedule {name} exists in several regions ({', '.join(sorted(m[1] for m in matches))}); name the Region.")
    return matches[0]


def _fire(account_id: str, region: str, schedule: Any, scheduled: datetime | None, trigger: str) -> dict[str, Any]:
    outcome = targets.invoke(dict(schedule.target), account_id, region)
    outcome.update(Name=schedule.name, GroupName=schedule.group_name, Trigger=trigger, ScheduledTime=scheduled.isoformat() if scheduled else None)
    clock.record(schedule, outcome)
    if outcome["Status"] == "FAILED":
        log.warning("schedule %s/%s: invocation failed: %s: %s", schedule.group_name, schedule.name, outcome["ErrorCode"], outcome["ErrorMessage"])
    else:
        log.info("schedule %s/%s invoked %s on %s", schedule.group_name, schedule.name, outcome["Target"], outcome.get("DBInstanceIdentifier"))
    return outcome


def fire_now(name: str, group: str = "default", region: str | None = None) -> dict[str, Any]:
    """The control call: invoke the schedule's target at once, whatever its state and expression, and record it."""
    with _lock:
        account_id, found_region, _, schedule = find(name, group, region)
        with changing():
            return _fire(account_id, found_region, schedule, None, "control")


def run_pass(now: datetime | None = None) -> list[dict[str, Any]]:
    """Invoke every ENABLED schedule's due fire, then start what has been stopped for 7 days; the outcomes."""
    now = now or datetime.now(UTC)
    outcomes: list[dict[str, Any]] = []
    with _lock:
        for account_id, region, backend, schedule in schedules():
            if schedule.state != "ENABLED":
                clock.mark_evaluated(schedule, now)  # a disabled schedule's fires are not kept for later
                continue
            try:
                outcomes.extend(_due(account_id, region, backend, schedule, now))
            except Exception:
                log.exception("schedule %s/%s could not be evaluated", schedule.group_name, schedule.name)
        if rds_stops.pending(now):
            with changing():
                outcomes.extend({"Trigger": "7-day rule", **result} for result in rds_stops.expire(now))
    return outcomes


def expire_stop_now(identifier: str, region: str | None = None) -> list[dict[str, Any]]:
    """The control call for the 7-day rule: treat ``identifier`` as stopped for 7 days, and apply the rule now."""
    with _lock, changing():
        return rds_stops.expire(datetime.now(UTC), only=identifier, pretend_stopped_for=timedelta(days=7))


def _due(account_id: str, region: str, backend: Any, schedule: Any, now: datetime) -> list[dict[str, Any]]:
    decision = clock.decide(
        schedule.schedule_expression,
        schedule.schedule_expression_timezone or "UTC",
        clock.evaluated_at(schedule),
        now,
        clock.grace(schedule.flexible_time_window, schedule.target),
        start_date=schedule.start_date,
        end_date=schedule.end_date,
        created=datetime.fromtimestamp(float(schedule.creation_date), UTC),
    )
    if decision.fire_at is None and not decision.missed:
        clock.mark_evaluated(schedule, now)  # nothing decided: no need to commit
        return []
    outcomes = []
    with changing():
        if decision.missed:
            missed = {"Status": "MISSED", "Name": schedule.name, "GroupName": schedule.group_name, "Count": len(decision.missed)}
            missed.update(First=decision.missed[0].isoformat(), Last=decision.missed[-1].isoformat(), Trigger="schedule")
            clock.record(schedule, missed)
            log.warning("schedule %s/%s: %d fire(s) missed while the local cloud was not running", schedule.group_name, schedule.name, len(decision.missed))
            outcomes.append(missed)
        if decision.fire_at is not None:
            outcomes.append(_fire(account_id, region, schedule, decision.fire_at, "schedule"))
        clock.mark_evaluated(schedule, now)
        if isinstance(parse_expression(schedule.schedule_expression), At) and schedule.action_after_completion == "DELETE":
            backend.delete_schedule(schedule.group_name, schedule.name)  # a one-time schedule that asked to go
    return outcomes


class Executor(PeriodicThread):
    name = "local-scheduler"

    def interval(self) -> float:
        return period()

    def tick(self) -> None:
        run_pass()
