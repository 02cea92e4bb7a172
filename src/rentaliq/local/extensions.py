"""Everything the local cloud adds to moto, installed into the server process before it serves a request.

- ``cfn``: CloudFormation providers for every resource type our stacks use, with events and rollback;
- ``rds_postgres``: a real PostgreSQL server behind every RDS DB instance;
- ``s3_policy``: TLS-conditioned bucket policies evaluated as on AWS;
- ``metrics``: AWS/RDS and AWS/S3 metrics measured from the real servers and requests, into CloudWatch.
"""

from __future__ import annotations

import os
from pathlib import Path

_installed = False


def install(state_dir: Path, endpoint: str) -> None:
    """Patch moto in this process (idempotent). ``endpoint`` is where this server answers, for providers."""
    global _installed
    os.environ["RENTALIQ_LOCAL_ENDPOINT"] = endpoint
    if _installed:
        return
    from rentaliq.local import metrics, moto_fixes, rds_postgres, s3_policy
    from rentaliq.local.cfn import engine

    engine.install()
    moto_fixes.install()
    moto_fixes.carry(*moto_fixes.AWS_MANAGED_POLICIES)  # our stacks attach them; AWS has them in every account
    rds_postgres.install(Path(state_dir))
    s3_policy.install()
    metrics.install()
    _installed = True


def after_restore() -> None:
    """Fail the stack operations a crash interrupted; start the restored DB instances' servers."""
    from rentaliq.local import metrics, rds_postgres
    from rentaliq.local.cfn import engine

    engine.fail_interrupted_stacks()
    rds_postgres.after_restore()
    metrics.start()


def before_stop() -> None:
    """Stop the PostgreSQL servers (the final snapshot is taken)."""
    from rentaliq.local import metrics, rds_postgres

    metrics.stop()  # first: a pass must not measure servers being stopped
    rds_postgres.stop_all()
