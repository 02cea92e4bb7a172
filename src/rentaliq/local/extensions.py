"""Everything the local cloud adds to moto, installed into the server process before it serves a request.

- ``cfn``: CloudFormation providers for every resource type our stacks use, with events and rollback;
- ``rds_postgres``: a real PostgreSQL server behind every RDS DB instance;
- ``rds_ca``: the CACertificateIdentifier RDS reports (the local CA plays rds-ca-rsa2048-g1);
- ``budgets_fixes``: AWS Budgets' missing operations (update, subscribers, tags) and errors;
- ``s3_policy``: TLS-conditioned bucket policies evaluated as on AWS;
- ``metrics``: AWS/RDS and AWS/S3 metrics measured from the real servers and requests, into CloudWatch;
- ``alarms``: CloudWatch alarm evaluation, history and actions;
- ``sns_delivery``: SNS confirmation handshake, signed HTTP(S) delivery, captured email;
- ``scheduler``: EventBridge Scheduler schedules executed at their times, RDS's 7-day rule, fire-now control calls;
- ``cloudtrail_events``: every management API call recorded as a CloudTrail event, for LookupEvents;
- ``secrets_rotation``: RotateSecret (on demand and on schedule) really rotates a PostgreSQL credentials secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_installed = False


def install(state_dir: Path, endpoint: str) -> None:
    """Patch moto in this process (idempotent). ``endpoint`` is where this server answers, for providers."""
    global _installed
    os.environ["RENTALIQ_LOCAL_ENDPOINT"] = endpoint
    if _installed:
        return
    from rentaliq.local import alarms, budgets_fixes, metrics, moto_fixes, rds_ca, rds_postgres, s3_policy, scheduler, secrets_rotation, sns_delivery
    from rentaliq.local.cfn import engine

    engine.install()
    moto_fixes.install()
    budgets_fixes.install()
    moto_fixes.carry(*moto_fixes.AWS_MANAGED_POLICIES)  # our stacks attach them; AWS has them in every account
    rds_postgres.install(Path(state_dir))
    rds_ca.install()
    s3_policy.install()
    metrics.install()
    alarms.install()
    sns_delivery.install(Path(state_dir))
    scheduler.install()  # after rds_postgres: its RDS hooks wrap the server's
    secrets_rotation.install()
    from rentaliq.local import cloudtrail_events

    cloudtrail_events.install(Path(state_dir))  # the local CloudTrail event history (lookup-events)
    moto_fixes.carry("AWS_ConfigRole")  # AWS Config's recorder role attaches it ([audit] config)
    _installed = True


def after_restore() -> None:
    """Fail the stack operations a crash interrupted; start the restored DB instances' servers, then the metrics
    collector, the alarm evaluator and the scheduler."""
    from rentaliq.local import alarms, metrics, rds_postgres, scheduler, secrets_rotation
    from rentaliq.local.cfn import engine

    engine.fail_interrupted_stacks()
    rds_postgres.after_restore()
    metrics.start()
    alarms.start()
    scheduler.start()
    secrets_rotation.after_restore()  # after rds_postgres: resumed rotations need the servers


def before_stop() -> None:
    """Stop the collector, the evaluator, the scheduler and SNS delivery, then the PostgreSQL servers (the final
    snapshot is taken)."""
    from rentaliq.local import alarms, metrics, rds_postgres, scheduler, secrets_rotation, sns_delivery

    metrics.stop()  # first: a pass must not measure servers being stopped
    alarms.stop()
    secrets_rotation.stop()
    scheduler.stop()
    sns_delivery.stop()
    rds_postgres.stop_all()


def route(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """Answer a path the extensions serve outside moto's API (status, headers, body), or None."""
    from rentaliq.local import scheduler, sns_delivery

    return scheduler.route(environ) or sns_delivery.route(environ)
