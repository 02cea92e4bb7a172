"""Whether the environment's database is stopped, so that a connection to it fails fast with ``DatabaseStopped``.

LAB and QA stop their database off-hours (EventBridge Scheduler, ``rentaliq-{env}-db-stop`` / ``-db-start``). A
stopped RDS instance keeps its DNS name, so a connection to it does not fail at once: on AWS it waits for the
connect timeout, and the pool then retries for its whole timeout. Instead, :class:`InstanceProbe` asks RDS
(DescribeDBInstances on the ``dbInstanceIdentifier`` of the credentials secret) at the moments that matter:

* before the first connection of a ``Database``, and before a new connection once the answer is
  ``instance_check_ttl_s`` old (a request that finds a pooled connection at hand does not ask);
* after a connection failed or was lost, and while a request waits for a pooled connection (at most every
  ``_RECHECK_S``), because the schedule may have stopped the database since;

and, when RDS says stopped, stopping or starting, raises ``DatabaseStopped`` naming the instance, its status, the
next scheduled start (Scheduler GetSchedule on the start schedule, computed with :mod:`rentaliq.offhours`'s
expressions) in UTC and the schedule's time zone, and ``rentaliq wake ENV``. Answers are cached and one thread
asks for a burst of callers, so a busy service makes at most one DescribeDBInstances per interval.

Least-privilege application roles may not call RDS or Scheduler: then the probe says "unknown" and the caller
gets today's connection error, never a new failure. Nothing here reads or prints the password.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from rentaliq import naming
from rentaliq.cron import next_fire
from rentaliq.runtime.errors import DatabaseStopped
from rentaliq.runtime.secrets import DB_CREDENTIALS, Secrets

logger = logging.getLogger(__name__)

__all__ = ["NOT_AVAILABLE", "InstanceProbe", "LiveSchedule", "next_start_text", "read_schedule"]

NOT_AVAILABLE = ("stopped", "stopping", "starting")  # RDS states in which the database takes no connections
_RECHECK_S = 1.0  # after a failure, an answer older than this is asked again
_SLICE_S = 0.25  # a request waiting for a pooled connection looks at the instance state this often
_STOPPED_TTL_S = 1.0  # a "stopped" answer is asked again this soon: `rentaliq wake` should take effect quickly
# No answer (denied, or no route to the RDS API from the app's subnets) is not asked again for this long, whatever
# the caller's max age: a probe that cannot answer must not add a timeout to every failed connection.
_UNKNOWN_TTL_S = 60.0


@dataclass(frozen=True)
class LiveSchedule:
    """A deployed schedule as Scheduler's GetSchedule returns it (the fields the off-hours arithmetic needs)."""

    name: str
    expression: str
    timezone: str
    enabled: bool
    start_date: datetime | None = None  # Scheduler invokes nothing before it (`rentaliq wake --for` moves it)

    def next_fire(self, now: datetime) -> datetime | None:
        """The next time it fires after ``now`` (UTC), or None when disabled or never again."""
        if not self.enabled:
            return None
        if self.start_date is not None and self.start_date > now:
            now = self.start_date - timedelta(microseconds=1)  # a fire at the start date itself counts
        return next_fire(self.expression, self.timezone, now)


def read_schedule(client: Any, name: str) -> LiveSchedule | None:
    """The schedule ``name`` in the default group, None when it does not exist; other errors propagate."""
    try:
        found = client.get_schedule(Name=name)
    except client.exceptions.ResourceNotFoundException:
        return None
    start = found.get("StartDate")
    return LiveSchedule(
        name,
        found["ScheduleExpression"],
        found.get("ScheduleExpressionTimezone") or "UTC",
        found.get("State", "ENABLED") == "ENABLED",
        start if isinstance(start, datetime) else None,
    )


def at_local(when: datetime, timezone: str, now: datetime | None = None) -> str:
    """``Tue 2026-12-01 07:00 America/New_York (12:00 UTC)``: the schedule's own clock first, UTC beside it; with
    ``now``, ``today 20:00 America/New_York (01:00 UTC tomorrow)``."""
    zone = ZoneInfo(timezone)
    local, utc = when.astimezone(zone), when.astimezone(UTC)

    def day(moment: datetime, reference: datetime | None) -> str:
        if reference is not None:
            offset = (moment.date() - reference.date()).days
            if offset in (0, 1):
                return ("today", "tomorrow")[offset]
        return f"{moment:%a %Y-%m-%d}"

    local_now = now.astimezone(zone) if now else None
    utc_day = "" if utc.date() == local.date() else f" {day(utc, local_now)}"  # the UTC date, named from the local today
    return f"{day(local, local_now)} {local:%H:%M} {timezone} ({utc:%H:%M} UTC{utc_day})"


def next_start_text(schedule: LiveSchedule | None, now: datetime) -> str:
    """How a stopped database starts again, as a clause of a sentence."""
    if schedule is None or not schedule.enabled:
        return "no schedule will start it (AWS starts a stopped instance by itself 7 days after it stopped)"
    when = schedule.next_fire(now)
    if when is None:
        return f"the schedule {schedule.name} will not start it again"
    return f"the schedule {schedule.name} starts it {at_local(when, schedule.timezone, now)}"


@dataclass(frozen=True)
class _Answer:
    at: float  # monotonic time of the answer
    status: str | None  # RDS DBInstanceStatus; None: unknown (no permission, no identifier, RDS unreachable)
    error: DatabaseStopped | None = None


class InstanceProbe:
    """Cached answers to "is the database available?" for one environment's ``Database``."""

    def __init__(
        self,
        secrets: Secrets,
        *,
        ttl_s: float = 30.0,
        rds_client: Any | None = None,
        scheduler_client: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.secrets = secrets
        self.ttl_s = ttl_s
        self._rds = rds_client
        self._scheduler = scheduler_client
        self._clock = clock
        self._now = now
        self._answer: _Answer | None = None
        self._lock = threading.Lock()

    def ensure_available(self, *, max_age_s: float | None = None) -> None:
        """Raise DatabaseStopped when RDS says the instance is stopped, stopping or starting; otherwise return.

        An answer younger than ``max_age_s`` (default: the TTL) is reused without asking RDS: the hit path is a
        clock read. Unknown (no permission...) returns: the connection attempt then fails or works as before.
        """
        answer = self._answer
        limit = self.ttl_s if max_age_s is None else max_age_s
        if answer is not None and answer.error is not None:
            limit = min(limit, _STOPPED_TTL_S)
        elif answer is not None and answer.status is None:
            limit = max(limit, _UNKNOWN_TTL_S)
        if answer is None or self._clock() - answer.at >= limit:
            answer = self._ask(limit)
        if answer.error is not None:
            raise answer.error

    def suspect(self) -> None:
        """A connection was lost: the next check asks RDS again (unless the last answer is under a second old)."""
        answer = self._answer
        if answer is not None and self._clock() - answer.at >= _RECHECK_S:
            self._answer = None

    def getconn(self, pool: Any, timeout: float) -> Any:
        """``pool.getconn(timeout)``, but a request waiting for a connection to a database that has stopped since
        gets DatabaseStopped within about a second instead of PoolTimeout after the whole timeout."""
        from psycopg_pool import PoolTimeout

        # The request path asks RDS only on first use, while the database is known stopped, or while it waits:
        # a pooled connection at hand proves enough, and the TTL re-check is left to new connections (_open).
        self.ensure_available(max_age_s=None if self._answer is None else math.inf)
        deadline = self._clock() + timeout
        while True:
            remaining = deadline - self._clock()
            try:
                return pool.getconn(timeout=max(min(_SLICE_S, remaining), 0.001))
            except PoolTimeout:
                if remaining <= _SLICE_S:
                    raise PoolTimeout(f"couldn't get a connection after {timeout:.2f} sec") from None
            self.ensure_available(max_age_s=_RECHECK_S)

    # ------------------------------------------------------------------ internals

    def _ask(self, limit: float) -> _Answer:
        with self._lock:  # one request for a burst of callers: the others take the answer it leaves
            answer = self._answer
            if answer is not None and self._clock() - answer.at < limit:
                return answer
            answer = self._fetch()
            self._answer = answer
            return answer

    def _fetch(self) -> _Answer:
        env = self.secrets.env
        try:
            instance = self.secrets.get(DB_CREDENTIALS).get("dbInstanceIdentifier")
        except Exception:  # noqa: BLE001 - the connection attempt reports a secret problem itself
            return _Answer(self._clock(), None)
        if not isinstance(instance, str) or not instance:
            return _Answer(self._clock(), None)
        status = self._status(instance)
        if status not in NOT_AVAILABLE:
            return _Answer(self._clock(), status)
        return _Answer(self._clock(), status, DatabaseStopped(self._message(env, instance, status), instance=instance, status=status, env=env))

    def _status(self, instance: str) -> str | None:
        try:
            found = self._client("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"]
        except Exception as exc:  # noqa: BLE001 - denied, throttled, unreachable: unknown, fall back to connecting
            logger.info("cannot read the state of %s (%s); connection errors will not say whether it is stopped", instance, _code(exc))
            return None
        return str(found[0].get("DBInstanceStatus")) if found else None

    def _message(self, env: str, instance: str, status: str) -> str:
        wake = f"to start it now: rentaliq wake {env}"
        if status == "starting":
            return f"database {instance} is starting: it takes connections once RDS reports it available, usually within minutes"
        try:
            schedule = read_schedule(self._client("scheduler"), naming.db_start_schedule(env))
        except Exception as exc:  # noqa: BLE001 - GetSchedule denied: say so, the state itself is known
            return f"database {instance} is {status}; its start schedule could not be read ({_code(exc)}); {wake}"
        return f"database {instance} is {status}; {next_start_text(schedule, self._now())}; {wake}"

    def _client(self, service: Literal["rds", "scheduler"]) -> Any:
        attribute = "_rds" if service == "rds" else "_scheduler"
        client = getattr(self, attribute)
        if client is None:
            import boto3
            from botocore.config import Config

            # Short timeouts and no retries: the probe exists to answer fast; a slow answer counts as unknown.
            config = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}, user_agent_extra="rentaliq-runtime")
            session = boto3.session.Session()
            client = session.client("rds", config=config) if service == "rds" else session.client("scheduler", config=config)
            setattr(self, attribute, client)
        return client


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__
