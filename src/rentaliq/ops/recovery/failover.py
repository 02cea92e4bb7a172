"""`rentaliq failover ENV`: reboot-db-instance --force-failover, promoting the Multi-AZ standby.

Refused for a single-AZ instance (RDS would answer InvalidParameterCombination; this says why in the
environment's terms). The endpoint stays the same; the availability zones before and after are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.recovery import waits
from rentaliq.ops.recovery.errors import RecoveryError, from_aws
from rentaliq.ops.recovery.instances import LiveInstance, environment_instance


@dataclass(frozen=True)
class FailoverPlan:
    env: str
    instance: str
    availability_zone: str | None
    standby_zone: str | None

    def lines(self) -> list[str]:
        return [
            f"failover {self.env}: reboot {self.instance} with --force-failover; the standby in {self.standby_zone or 'the other zone'} "
            f"takes over from {self.availability_zone or 'the primary zone'} behind the same endpoint"
        ]


def plan(target: Target, spec: EnvironmentSpec) -> FailoverPlan:
    live = environment_instance(target, spec.name.value)
    if not live.multi_az:
        raise RecoveryError(f"refusing to fail over {live.identifier}: it is not Multi-AZ, so there is no standby to take over")
    if live.status != "available":
        raise RecoveryError(f"refusing to fail over {live.identifier}: it is {live.status}; RDS fails over only an available instance")
    return FailoverPlan(spec.name.value, live.identifier, live.availability_zone, live.secondary_availability_zone)


def run(target: Target, failover: FailoverPlan, progress: waits.Progress) -> LiveInstance:
    try:
        target.client("rds").reboot_db_instance(DBInstanceIdentifier=failover.instance, ForceFailover=True)
    except ClientError as error:
        raise from_aws(error, failover.env, f"failover of {failover.instance}") from None
    progress(f"failing over {failover.instance}")
    return waits.instance_available(target, failover.instance, progress)
