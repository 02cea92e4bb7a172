"""Before a change set: the spec against the live database, so AWS's refusals come before anything runs.

RDS never shrinks storage and a shorter backup retention deletes backups; the spec alone cannot know what is
deployed (storage autoscaling may have grown it). The comparison itself is the spec's
(:func:`rentaliq.spec.compare_with_deployed`); this module reads the live instance and applies the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.deploy.target import Target
from rentaliq.spec import DeployedValues, EnvironmentSpec, Finding, compare_with_deployed


class SpecBelowDeployed(RuntimeError):
    """The spec configures less than the live environment has, in a way AWS refuses; nothing was started."""


def findings(target: Target, spec: EnvironmentSpec) -> list[Finding]:
    """Every finding for the environment's live database; [] when it has none (not deployed yet)."""
    try:
        found = target.client("rds").describe_db_instances(DBInstanceIdentifier=naming.db_instance_id(spec.name.value))["DBInstances"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "DBInstanceNotFound":
            return []
        raise
    if not found:
        return []
    values = DeployedValues.from_db_instance(found[0])
    key_id = found[0].get("KmsKeyId")
    values = replace(values, storage_key_customer_managed=_customer_managed(target, key_id), storage_key_id=key_id)
    return compare_with_deployed(spec, values)


def _customer_managed(target: Target, key_id: str | None) -> bool | None:
    """Whether ``key_id`` (an instance's KmsKeyId) is customer-managed; None when RDS names no key or KMS has none.

    Customer-managed, not "the environment's key": a database restored from a snapshot keeps the key the snapshot
    was made under, and CloudFormation replaces the instance only when the template's key setting changes."""
    if not key_id:
        return None
    try:
        return bool(target.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["KeyManager"] == "CUSTOMER")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NotFoundException":
            return None
        raise


def check(target: Target, spec: EnvironmentSpec, warn: Callable[[str], None]) -> None:
    """Warn about what AWS accepts but loses; refuse, naming every field, what AWS would refuse."""
    found = findings(target, spec)
    for finding in found:
        if not finding.is_error:
            warn(f"warning: {finding}")
    errors = [f for f in found if f.is_error]
    if errors:
        raise SpecBelowDeployed(f"refusing to deploy {spec.stack_name}: " + "; ".join(errors))
