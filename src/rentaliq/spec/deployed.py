"""The spec against the live database: values configured lower than what is deployed (issue 7, "RDS rules").

A spec can be valid on its own and still be wrong for an environment that exists: RDS never shrinks
storage, and a lower backup retention silently deletes backups. This module is pure (no AWS calls): the
deploy side reads the live instance, builds :class:`DeployedValues` from it and asks
:func:`compare_with_deployed` before it makes a change set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from rentaliq.spec.models import EnvironmentSpec

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class DeployedValues:
    """What the live DB instance has; ``None`` means unknown or not set (nothing is compared then)."""

    allocated_storage_gib: int | None = None
    """``AllocatedStorage``, GiB: what the instance has now, storage autoscaling included."""
    max_allocated_storage_gib: int | None = None
    """``MaxAllocatedStorage``, GiB; absent from the API answer when storage autoscaling is off."""
    backup_retention_days: int | None = None
    """``BackupRetentionPeriod``, days."""
    storage_key_customer_managed: bool | None = None
    """Whether the instance's ``KmsKeyId`` is a customer-managed key (the environment's, or after a restore from a
    snapshot the retained key it was made under) rather than RDS's AWS-managed ``aws/rds``. Resolving it needs
    KMS, so the deploy side sets it."""
    storage_key_id: str | None = None
    """The instance's ``KmsKeyId``, for the message."""

    @classmethod
    def from_db_instance(cls, instance: Mapping[str, Any]) -> DeployedValues:
        """From one entry of ``rds.describe_db_instances()["DBInstances"]``."""
        return cls(instance.get("AllocatedStorage"), instance.get("MaxAllocatedStorage"), instance.get("BackupRetentionPeriod"))


class Finding(str):
    """One line for the user, with its ``severity`` and the spec ``field`` it is about.

    A ``str`` so callers that only print can treat the result as ``list[str]``.
    """

    severity: Severity
    field: str

    def __new__(cls, message: str, severity: Severity, field: str) -> Self:
        finding = super().__new__(cls, message)
        finding.severity, finding.field = severity, field
        return finding

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def compare_with_deployed(spec: EnvironmentSpec, deployed: DeployedValues) -> list[Finding]:
    """Findings where ``spec`` configures a value lower than ``deployed``, in field order; [] when none.

    Contract for the deploy side:

    - Call it before creating a change set for an environment whose database exists, with
      ``DeployedValues.from_db_instance(...)`` of that instance; with nothing deployed there is nothing to
      compare (``DeployedValues()`` gives []).
    - ``severity == "error"``: AWS would refuse the update, so stop before the change set and print the
      finding: allocated storage below the deployed ``AllocatedStorage`` (RDS never shrinks storage, and
      storage autoscaling may have grown it beyond the spec's value), or a maximum storage below it.
      Also: ``encryption.customer_managed_key`` that does not match the deployed storage key (RDS cannot change
      the key of an instance; CloudFormation would replace it with a new, empty database).
    - ``severity == "warning"``: AWS accepts it but something is lost; print it and go on (or ask): a lower
      storage-autoscaling ceiling, or a shorter backup retention (older automated backups are deleted).
    - Each finding is one line naming the environment, the field, both values and the way out; it never
      holds a secret. The function is pure and cheap: no AWS call, no I/O.
    """
    env, db, found = spec.name.value, spec.database, []

    def lower(field: str, configured: int, live: int | None, aws_name: str, unit: str, severity: Severity, outcome: str) -> None:
        if live is not None and configured < live:
            message = f"{env}: database.{field}={configured} is lower than the deployed {aws_name} ({live} {unit}){outcome}"
            found.append(Finding(message, severity, f"database.{field}"))

    live_storage = deployed.allocated_storage_gib
    lower(
        "allocated_storage_gib",
        db.allocated_storage_gib,
        live_storage,
        "AllocatedStorage",
        "GiB",
        "error",
        f"; AWS refuses to shrink storage: set {live_storage} or more",
    )
    lower(
        "max_allocated_storage_gib",
        db.max_allocated_storage_gib,
        live_storage,
        "AllocatedStorage",
        "GiB",
        "error",
        f"; AWS needs the maximum above the allocated storage: set more than {live_storage}",
    )
    lower(
        "max_allocated_storage_gib",
        db.max_allocated_storage_gib,
        deployed.max_allocated_storage_gib,
        "MaxAllocatedStorage",
        "GiB",
        "warning",
        f": storage autoscaling will stop at {db.max_allocated_storage_gib} GiB",
    )
    lower(
        "backup_retention_days",
        db.backup_retention_days,
        deployed.backup_retention_days,
        "BackupRetentionPeriod",
        "days",
        "warning",
        f": automated backups older than {db.backup_retention_days} days will be deleted",
    )
    _storage_key(spec, deployed, found)
    return found


def _storage_key(spec: EnvironmentSpec, deployed: DeployedValues, found: list[Finding]) -> None:
    """A storage key change replaces the instance (``KmsKeyId`` is create-only): refuse it on a live database."""
    live, wanted = deployed.storage_key_customer_managed, spec.encryption.customer_managed_key
    if live is None or live == wanted:
        return
    env = spec.name.value
    now = f"a customer-managed key ({deployed.storage_key_id})" if live else f"the AWS-managed key ({deployed.storage_key_id or 'aws/rds'})"
    message = (
        f"{env}: encryption.customer_managed_key={str(wanted).lower()} but the deployed database is encrypted with {now}; "
        "RDS cannot change an instance's key, so the deploy would replace it with a new, empty database: "
        f"set encryption.customer_managed_key={str(live).lower()}, or move the data through a snapshot copied under the new key"
    )
    found.append(Finding(message, "error", "encryption.customer_managed_key"))
