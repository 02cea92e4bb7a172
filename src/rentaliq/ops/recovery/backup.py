"""`rentaliq backup ENV`: a manual snapshot named by the spec's convention, waited for until available.

``rentaliq-{env}-manual-YYYYMMDD`` (UTC day), then ``-2``, ``-3`` ... when that name is taken. The name is
chosen by creating, not by listing first: a DBSnapshotAlreadyExists (another operator, the same day) moves
on to the next suffix, so two backups at once never collide. Tags come from the instance
(CopyTagsToSnapshot is on in every environment).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from botocore.exceptions import ClientError

from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.recovery import catalog, names, waits
from rentaliq.ops.recovery.catalog import Snapshot
from rentaliq.ops.recovery.errors import RecoveryError, error_code, from_aws
from rentaliq.ops.recovery.instances import environment_instance


@dataclass(frozen=True)
class BackupPlan:
    env: str
    instance: str
    snapshot: str  # the first free name now; the one taken may be a later suffix if another backup races us
    day: date

    def lines(self) -> list[str]:
        return [f"backup {self.env}: snapshot {self.instance} as {self.snapshot}, then wait until it is available"]


def plan(target: Target, spec: EnvironmentSpec, now: datetime | None = None) -> BackupPlan:
    env = spec.name.value
    instance = environment_instance(target, env)
    day = (now or datetime.now(UTC)).date()
    free = next((name for name in names.manual_snapshots(env, day) if not catalog.exists(target, name)), None)
    if free is None:
        raise RecoveryError(f"every manual snapshot name for {env} on {day:%Y-%m-%d} is taken (up to -{names.MAX_SUFFIX}); delete old ones first")
    return BackupPlan(env, instance.identifier, free, day)


def take(target: Target, backup: BackupPlan, progress: waits.Progress) -> Snapshot:
    """Create the snapshot under the planned name (or the next free suffix) and wait until it is available."""
    rds = target.client("rds")
    candidates = list(names.manual_snapshots(backup.env, backup.day))
    for name in candidates[candidates.index(backup.snapshot) :]:  # the names before it were taken when planned
        try:
            rds.create_db_snapshot(DBInstanceIdentifier=backup.instance, DBSnapshotIdentifier=name)
        except ClientError as error:
            if error_code(error) in ("DBSnapshotAlreadyExists", "DBSnapshotAlreadyExistsFault"):
                continue
            raise from_aws(error, backup.env, f"snapshot of {backup.instance}") from None
        progress(f"creating snapshot {name} of {backup.instance}")
        return Snapshot.from_api(waits.snapshot_available(target, name, progress))
    raise RecoveryError(f"every manual snapshot name for {backup.env} like {backup.snapshot} is taken; delete old ones first")
