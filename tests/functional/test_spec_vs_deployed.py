"""A spec below the live database: `diff` and `deploy` refuse what AWS would refuse, before any change set runs."""

from __future__ import annotations

import pytest

from rentaliq import naming
from rentaliq.deploy.changesets import deploy, diff
from rentaliq.deploy.deployed_spec import SpecBelowDeployed
from rentaliq.environments import build_spec
from rentaliq.infra.cache import templates

pytestmark = pytest.mark.functional


def test_storage_below_the_deployed_size_is_refused_and_shorter_retention_warned(deployed, target, outdir):
    rds = target.client("rds")
    live = rds.describe_db_instances(DBInstanceIdentifier=naming.db_instance_id("qa"))["DBInstances"][0]
    smaller = build_spec(
        "qa", {"database": {"allocated_storage_gib": live["AllocatedStorage"] - 10, "backup_retention_days": live["BackupRetentionPeriod"] - 1}}
    )
    path = templates([smaller], outdir)[smaller.stack_name]
    warnings: list[str] = []
    for attempt in (lambda: diff(target, smaller, path, on_step=warnings.append), lambda: deploy(target, smaller, path, on_step=warnings.append)):
        with pytest.raises(
            SpecBelowDeployed,
            match=rf"allocated_storage_gib={live['AllocatedStorage'] - 10} is lower than the deployed "
            rf"AllocatedStorage \({live['AllocatedStorage']} GiB\)",
        ):
            attempt()
    assert any("backup_retention_days" in w and w.startswith("warning:") for w in warnings), warnings
    # Nothing ran: the live instance and the stack are as they were.
    after = rds.describe_db_instances(DBInstanceIdentifier=naming.db_instance_id("qa"))["DBInstances"][0]
    assert (after["AllocatedStorage"], after["BackupRetentionPeriod"]) == (live["AllocatedStorage"], live["BackupRetentionPeriod"])
    pending = target.client("cloudformation").list_change_sets(StackName="rentaliq-qa")["Summaries"]
    assert [c for c in pending if c["ExecutionStatus"] == "AVAILABLE"] == []  # no change set was even made
