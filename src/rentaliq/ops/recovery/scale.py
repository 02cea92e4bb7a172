"""`rentaliq scale ENV --class C [--storage GIB] [--now]`: modify-db-instance on the environment's database.

Without --now the change waits in PendingModifiedValues for the maintenance window, as RDS does; with it the
instance restarts now and the command waits until the change is applied. Storage only grows (RDS refuses a
shrink; so does this, before calling). A live change the spec does not hold is undone by the next deploy,
so the plan says which line of config/{env}.toml keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.recovery import waits
from rentaliq.ops.recovery.errors import RecoveryError, from_aws
from rentaliq.ops.recovery.instances import LiveInstance, environment_instance
from rentaliq.spec.models import INSTANCE_CLASSES

MAX_STORAGE_GIB = 65536  # RDS for PostgreSQL, gp2/gp3/io1


@dataclass(frozen=True)
class ScalePlan:
    env: str
    instance: str
    current_class: str
    current_storage: int
    new_class: str | None
    new_storage: int | None
    now: bool
    maintenance_window: str | None
    spec_class: str
    spec_storage: int

    def lines(self) -> list[str]:
        changes = []
        if self.new_class:
            changes.append(f"class {self.current_class} → {self.new_class}")
        if self.new_storage:
            changes.append(f"storage {self.current_storage} → {self.new_storage} GiB")
        when = "now (the instance restarts)" if self.now else f"in the next maintenance window ({self.maintenance_window or 'unknown'}); pending until then"
        lines = [f"scale {self.env}: {self.instance} {', '.join(changes)}, applied {when}"]
        keep = []
        if self.new_class and self.new_class != self.spec_class:
            keep.append(f'instance_class = "{self.new_class}"')
        if self.new_storage and self.new_storage != self.spec_storage:
            keep.append(f"allocated_storage_gib = {self.new_storage}")
        if keep:
            lines.append(f"  the spec says otherwise: to keep this through the next deploy, put [database] {', '.join(keep)} in config/{self.env}.toml")
        return lines


def plan(target: Target, spec: EnvironmentSpec, instance_class: str | None, storage_gib: int | None, now: bool) -> ScalePlan:
    env = spec.name.value
    if instance_class is None and storage_gib is None:
        raise RecoveryError("give --class C and/or --storage GIB")
    if instance_class is not None and instance_class not in INSTANCE_CLASSES:
        raise RecoveryError(
            f"--class {instance_class!r} is not an RDS PostgreSQL instance class; allowed: e.g. db.t3.micro, db.t3.medium, db.m6g.large, db.r6g.xlarge"
        )
    if storage_gib is not None and storage_gib > MAX_STORAGE_GIB:
        raise RecoveryError(f"--storage {storage_gib} is out of range; allowed: up to {MAX_STORAGE_GIB} GiB, and no less than the instance has")
    live = environment_instance(target, env)
    if storage_gib is not None and storage_gib < live.allocated_storage:
        raise RecoveryError(f"refusing --storage {storage_gib}: {live.identifier} has {live.allocated_storage} GiB and storage can only grow")
    new_class = instance_class if instance_class and instance_class != live.instance_class else None
    new_storage = storage_gib if storage_gib and storage_gib != live.allocated_storage else None
    if new_class is None and new_storage is None:
        raise RecoveryError(f"nothing to change: {live.identifier} is already {live.instance_class} with {live.allocated_storage} GiB")
    db = spec.database
    return ScalePlan(
        env,
        live.identifier,
        live.instance_class,
        live.allocated_storage,
        new_class,
        new_storage,
        now,
        live.maintenance_window,
        db.instance_class,
        db.allocated_storage_gib,
    )


def run(target: Target, scale: ScalePlan, progress: waits.Progress) -> LiveInstance:
    """Modify the instance; with --now wait until the change is applied, else return it with the change pending."""
    params: dict[str, object] = {"DBInstanceIdentifier": scale.instance, "ApplyImmediately": scale.now}
    if scale.new_class:
        params["DBInstanceClass"] = scale.new_class
    if scale.new_storage:
        params["AllocatedStorage"] = scale.new_storage
    try:
        db = target.client("rds").modify_db_instance(**params)["DBInstance"]
    except ClientError as error:
        raise from_aws(error, scale.env, f"scaling {scale.instance}") from None
    if not scale.now:
        return LiveInstance.from_api(db)
    return waits.instance_available(target, scale.instance, progress, until=lambda live: _not_yet(scale, live))


def _not_yet(scale: ScalePlan, live: LiveInstance) -> str | None:
    """What of the change is not applied yet (RDS shows the old class until the restart is done), or None."""
    missing = []
    if scale.new_class and live.instance_class != scale.new_class:
        missing.append(f"class still {live.instance_class}")
    if scale.new_storage and live.allocated_storage < scale.new_storage:
        missing.append(f"storage still {live.allocated_storage} GiB")
    return ", ".join(missing) or None
