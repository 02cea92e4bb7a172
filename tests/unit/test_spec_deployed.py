"""The spec against what is deployed (issue 7, "RDS rules"): a value lower than the live one is caught
before a change set is made, as an error where AWS would refuse the update and a warning where it would lose something."""

from __future__ import annotations

import pytest

from rentaliq.environments import build_spec, load_spec
from rentaliq.spec.rules import DeployedValues, Finding, compare_with_deployed

# What describe_db_instances answers for the QA database as built from the default spec (50 GiB, max 100, 7 days).
QA_LIVE = {"DBInstanceIdentifier": "rentaliq-qa-db", "AllocatedStorage": 50, "MaxAllocatedStorage": 100, "BackupRetentionPeriod": 7}


def test_the_deployed_values_come_from_describe_db_instances():
    assert DeployedValues.from_db_instance(QA_LIVE) == DeployedValues(50, 100, 7)
    assert DeployedValues.from_db_instance({"AllocatedStorage": 20, "BackupRetentionPeriod": 3}) == DeployedValues(20, None, 3)


def test_the_spec_as_deployed_has_no_findings():
    assert compare_with_deployed(load_spec("qa"), DeployedValues.from_db_instance(QA_LIVE)) == []
    assert compare_with_deployed(load_spec("qa"), DeployedValues()) == []  # nothing deployed yet


def test_higher_values_are_fine():
    spec = build_spec("qa", {"database": {"allocated_storage_gib": 80, "max_allocated_storage_gib": 200, "backup_retention_days": 14}})
    assert compare_with_deployed(spec, DeployedValues(50, 100, 7)) == []


def test_shrinking_allocated_storage_is_an_error_aws_would_refuse():
    spec = build_spec("qa", {"database": {"allocated_storage_gib": 30}})
    [finding] = compare_with_deployed(spec, DeployedValues(50, 100, 7))
    assert isinstance(finding, str) and isinstance(finding, Finding)
    assert (finding.severity, finding.field) == ("error", "database.allocated_storage_gib")
    assert finding == (
        "qa: database.allocated_storage_gib=30 is lower than the deployed AllocatedStorage (50 GiB); AWS refuses to shrink storage: set 50 or more"
    )


def test_storage_grown_by_autoscaling_counts_as_deployed():
    # Storage autoscaling took the instance to 64 GiB: the spec's 50 GiB would now be a shrink.
    [finding] = compare_with_deployed(load_spec("qa"), DeployedValues(64, 100, 7))
    assert finding.severity == "error" and "deployed AllocatedStorage (64 GiB)" in finding


def test_a_max_storage_below_the_deployed_storage_is_an_error():
    spec = build_spec("qa", {"database": {"allocated_storage_gib": 50, "max_allocated_storage_gib": 60}})
    findings = compare_with_deployed(spec, DeployedValues(70, 100, 7))
    assert [(f.severity, f.field) for f in findings] == [
        ("error", "database.allocated_storage_gib"),
        ("error", "database.max_allocated_storage_gib"),
        ("warning", "database.max_allocated_storage_gib"),
    ]
    assert findings[1] == (
        "qa: database.max_allocated_storage_gib=60 is lower than the deployed AllocatedStorage (70 GiB); "
        "AWS needs the maximum above the allocated storage: set more than 70"
    )


def test_lower_max_storage_and_backup_retention_are_warnings():
    spec = build_spec("qa", {"database": {"max_allocated_storage_gib": 80, "backup_retention_days": 3}})
    findings = compare_with_deployed(spec, DeployedValues(50, 100, 7))
    assert [f.severity for f in findings] == ["warning", "warning"]
    assert findings == [
        "qa: database.max_allocated_storage_gib=80 is lower than the deployed MaxAllocatedStorage (100 GiB): storage autoscaling will stop at 80 GiB",
        "qa: database.backup_retention_days=3 is lower than the deployed BackupRetentionPeriod (7 days): automated backups older than 3 days will be deleted",
    ]


@pytest.mark.parametrize("env", ["lab", "qa", "prod"])
def test_each_default_spec_matches_its_own_deployment(env):
    db = load_spec(env).database
    live = DeployedValues(db.allocated_storage_gib, db.max_allocated_storage_gib, db.backup_retention_days)
    assert compare_with_deployed(load_spec(env), live) == []
