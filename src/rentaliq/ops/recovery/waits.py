"""Waiting for RDS with progress: until an instance or a snapshot is available, or an instance is gone.

Never silent and never forever: each poll reports the status and elapsed time through ``progress``; a state
the resource cannot leave by itself, or the deadline, raises RecoveryError naming the status. The local
cloud answers in seconds (poll 0.5 s, give up after 15 min); AWS can take an hour for a large restore
(poll 15 s, give up after 2 h, and the resource keeps going: the message says how to look at it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from rentaliq.deploy.database import STUCK_STATES
from rentaliq.deploy.target import Target
from rentaliq.ops.recovery.errors import RecoveryError, error_code, from_aws
from rentaliq.ops.recovery.instances import NOT_FOUND, LiveInstance

Progress = Callable[[str], None]
SNAPSHOT_NOT_FOUND = ("DBSnapshotNotFound", "DBSnapshotNotFoundFault")


def _policy(target: Target, timeout: float | None) -> tuple[float, float]:
    """(poll interval, timeout) in seconds for this target."""
    poll = 0.5 if target.is_local else 15.0
    return poll, timeout if timeout is not None else (900.0 if target.is_local else 7200.0)


def _poll(target: Target, what: str, read: Callable[[], tuple[bool, str]], progress: Progress, timeout: float | None, look: str) -> None:
    """Call ``read`` until it answers done; it returns (done, status) and raises RecoveryError for a stuck state."""
    poll, limit = _policy(target, timeout)
    started = time.monotonic()
    while True:
        done, status = read()
        elapsed = time.monotonic() - started
        if done:
            progress(f"{what}: {status} ({elapsed:.0f}s)")
            return
        if elapsed >= limit:
            raise RecoveryError(f"{what} is still {status} after {limit:.0f}s; it may still finish: look with `{look}`")
        progress(f"waiting for {what}: {status} ({elapsed:.0f}s)")
        time.sleep(poll)


def instance_available(
    target: Target,
    identifier: str,
    progress: Progress,
    *,
    settled: tuple[str, ...] = (),
    until: Callable[[LiveInstance], str | None] | None = None,
    timeout: float | None = None,
) -> LiveInstance:
    """Wait until the instance is ``available``, none of ``settled`` is still in PendingModifiedValues, and
    ``until`` (what is still awaited, or None) has nothing left."""
    found: dict[str, LiveInstance] = {}

    def read() -> tuple[bool, str]:
        try:
            db = target.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        except ClientError as error:
            raise from_aws(error, "", f"waiting for {identifier}") from None
        instance = found["last"] = LiveInstance.from_api(db)
        if instance.status in STUCK_STATES:
            raise RecoveryError(f"{identifier} is {instance.status}: it will not become available by itself; see `{target.aws_cli} rds describe-events`")
        pending = [key for key in settled if key in instance.pending]
        awaited = until(instance) if until else None
        status = instance.status + (f", pending {', '.join(pending)}" if pending else "") + (f", {awaited}" if awaited else "")
        return instance.status == "available" and not pending and awaited is None, status

    _poll(target, identifier, read, progress, timeout, f"{target.aws_cli} rds describe-db-instances --db-instance-identifier {identifier}")
    return found["last"]


def snapshot_available(target: Target, snapshot_id: str, progress: Progress, timeout: float | None = None) -> dict[str, Any]:
    """Wait until the snapshot is ``available``; its description (progress shows PercentProgress)."""
    found: dict[str, dict[str, Any]] = {}

    def read() -> tuple[bool, str]:
        try:
            snap = target.client("rds").describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]
        except ClientError as error:
            raise from_aws(error, "", f"waiting for snapshot {snapshot_id}") from None
        found["last"] = snap
        status = str(snap.get("Status", "unknown"))
        if status in ("failed", "incompatible-restore", "deleting"):
            raise RecoveryError(f"snapshot {snapshot_id} is {status}")
        percent = snap.get("PercentProgress")
        return status == "available", status + (f" {percent}%" if percent is not None and status != "available" else "")

    _poll(target, f"snapshot {snapshot_id}", read, progress, timeout, f"{target.aws_cli} rds describe-db-snapshots --db-snapshot-identifier {snapshot_id}")
    return found["last"]


def instance_gone(target: Target, identifier: str, progress: Progress, timeout: float | None = None) -> None:
    """Wait until RDS no longer knows the instance (a delete finished)."""

    def read() -> tuple[bool, str]:
        try:
            db = target.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        except ClientError as error:
            if error_code(error) in NOT_FOUND:
                return True, "deleted"
            raise from_aws(error, "", f"waiting for {identifier}") from None
        return False, str(db.get("DBInstanceStatus", "unknown"))

    _poll(target, identifier, read, progress, timeout, f"{target.aws_cli} rds describe-db-instances --db-instance-identifier {identifier}")
