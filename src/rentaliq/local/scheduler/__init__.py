"""EventBridge Scheduler on the local cloud: schedules that really fire, and RDS's 7-day rule for stopped instances.

- ``api_fixes``: moto's Scheduler API answering as AWS's does (errors, validation, update semantics);
- ``clock``: each schedule's durable record (fires decided up to when, invocations) and which fire is due;
- ``targets``: a universal target's call (``aws-sdk:rds:stopDBInstance`` / ``startDBInstance``), role checked;
- ``rds_stops``: RDS's stop/start events, each instance's stop time, and the automatic start after 7 days;
- ``executor``: the pass (a clock thread every ``RENTALIQ_LOCAL_SCHEDULER_SECONDS``) and the fire-now call;
- ``control``: ``/_rentaliq/scheduler/...`` and ``/_rentaliq/rds/expire-stop``, the documented control calls.
"""

from __future__ import annotations

from typing import Any

from rentaliq.local.periodic import OneRunning

_executor: OneRunning | None = None


def install() -> None:
    """Patch moto (idempotent); after ``rds_postgres.install``, so a recorded stop is one whose server stopped."""
    from rentaliq.local.scheduler import api_fixes, rds_stops

    api_fixes.install()
    rds_stops.install()


def start() -> None:
    """Start the executor's clock (after the state was restored and the servers started)."""
    global _executor
    from rentaliq.local.scheduler.executor import Executor

    if _executor is None:
        _executor = OneRunning(Executor)
    _executor.start()


def stop() -> None:
    if _executor is not None:
        _executor.stop()


def route(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
    from rentaliq.local.scheduler.control import handle

    return handle(environ)
