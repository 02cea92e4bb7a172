"""The specs carry the spec's table exactly, and every invalid value is rejected with a useful line."""

from __future__ import annotations

import pytest

from rentaliq.environments import SpecError, build_spec, load_spec, load_specs

# ARCHITECTURE.md, "Environment Comparison", written out by hand in its own layout (a row per feature, a column
# per environment) so it reads against the spec line by line and a changed spec value fails here.
ENVS = ("lab", "qa", "prod")
ROWS = {
    # feature: (LAB, QA, PROD)
    "instance_class": ("db.t3.micro", "db.t3.small", "db.t3.medium"),
    "storage": (20, 50, 100),
    "max_storage": (50, 100, 500),
    "multi_az": (False, False, True),
    "retention": (3, 7, 30),
    "pi": (False, True, True),
    "monitoring": (0, 0, 60),
    "deletion_protection": (False, False, True),
    "final_snapshot": (False, False, True),
    "logs": ((), ("postgresql", "upgrade"), ("postgresql", "upgrade")),
    "versioning": (False, True, True),
    "access_logs": (False, False, True),
    "tiering": (False, False, True),
    "recovery": (0, 7, 30),
    "cost": ((16, 18), (32, 36), (123, 131)),
}
TABLE = {env: {feature: values[column] for feature, values in ROWS.items()} for column, env in enumerate(ENVS)}


@pytest.mark.parametrize("env", TABLE)
def test_spec_carries_every_row_of_the_comparison_table(env):
    spec, row = load_spec(env), TABLE[env]
    db = spec.database
    assert db.instance_class == row["instance_class"]
    assert (db.allocated_storage_gib, db.max_allocated_storage_gib) == (row["storage"], row["max_storage"])
    assert db.multi_az is row["multi_az"]
    assert db.backup_retention_days == row["retention"]
    assert db.performance_insights is row["pi"]
    assert db.enhanced_monitoring_interval_s == row["monitoring"]
    assert db.deletion_protection is row["deletion_protection"]
    assert db.final_snapshot is row["final_snapshot"]
    assert db.cloudwatch_log_exports == row["logs"]
    assert spec.storage.versioning is row["versioning"]
    assert spec.storage.access_logs is row["access_logs"]
    assert spec.storage.intelligent_tiering is row["tiering"]
    assert spec.secrets.recovery_window_days == row["recovery"]
    assert (spec.cost.monthly_usd_low, spec.cost.monthly_usd_high) == row["cost"]


@pytest.mark.parametrize("env", TABLE)
def test_rds_operational_values(env):
    db = load_spec(env).database
    # The spec's 03:00-04:00 UTC where the database runs all night; LAB and QA stop off-hours, and RDS backs up only
    # a running instance, so theirs is half an hour after the morning start (07:30 New York in winter, 08:30 in summer).
    assert db.backup_window == ("03:00-04:00" if env == "prod" else "12:30-13:30")
    assert db.maintenance_window == "sun:04:00-sun:05:00"
    assert db.auto_minor_version_upgrade is True
    assert db.apply_immediately is (env == "lab")
    assert (db.engine_version, db.master_username, db.database_name, db.port) == ("15", "rentaliq_admin", "rentaliq", 5432)
    assert db.performance_insights_retention_days == 7


def test_lifecycle_per_environment():
    lab, qa, prod = (load_spec(e).storage.lifecycle for e in ("lab", "qa", "prod"))
    assert (lab.infrequent_access_after_days, lab.glacier_after_days, lab.expire_current_after_days) == (90, 180, 365)
    assert (qa.infrequent_access_after_days, qa.glacier_after_days, qa.expire_current_after_days) == (90, 180, None)
    assert (prod.infrequent_access_after_days, prod.glacier_after_days, prod.expire_current_after_days) == (90, 365, None)
    assert [x.abort_incomplete_multipart_after_days for x in (lab, qa, prod)] == [7, 7, 7]
    assert [x.expire_noncurrent_after_days for x in (lab, qa, prod)] == [None, 90, 90]


def test_nat_defaults_none_in_lab_one_instance_in_qa_one_instance_per_zone_in_prod():
    assert [(load_spec(e).network.nat, load_spec(e).network.nats) for e in ("lab", "qa", "prod")] == [("none", 0), ("instance", 1), ("instance", 2)]


def test_tags_follow_the_tagging_strategy():
    assert load_spec("prod").resource_tags() == {
        "Project": "RentalIQ",
        "Environment": "prod",
        "ManagedBy": "CDK",
        "Owner": "Keith Perez",
        "Application": "rentaliq",
        "Critical": "true",
    }
    assert "Critical" not in load_spec("lab").resource_tags()
    assert build_spec("qa", {"tags": {"cost_center": "CC-42"}}).resource_tags()["CostCenter"] == "CC-42"


def _problems(env, overrides):
    with pytest.raises(SpecError) as info:
        build_spec(env, overrides)
    return info.value.problems


def test_storage_above_max_storage_is_rejected():
    [problem] = _problems("qa", {"database": {"allocated_storage_gib": 200}})
    assert problem == "qa: database.allocated_storage_gib=200 is invalid; allowed: at most database.max_allocated_storage_gib (100)"


@pytest.mark.parametrize("days", [-1, 36])
def test_backup_retention_outside_0_to_35_is_rejected(days):
    [problem] = _problems("lab", {"database": {"backup_retention_days": days}})
    assert f"database.backup_retention_days={days}" in problem and "0 to 35 days" in problem


def test_unknown_instance_class_is_rejected():
    [problem] = _problems("lab", {"database": {"instance_class": "db.t3.mega"}})
    assert "database.instance_class='db.t3.mega'" in problem and "db.t3.micro" in problem


@pytest.mark.parametrize("field,value", [("backup_window", "3am-4am"), ("maintenance_window", "sunday 04:00"), ("backup_window", "03:00-03:10")])
def test_malformed_window_is_rejected(field, value):
    [problem] = _problems("lab", {"database": {field: value}})
    assert f"database.{field}={value!r}" in problem


def test_overlapping_backup_and_maintenance_windows_are_rejected():
    [problem] = _problems("prod", {"database": {"maintenance_window": "sun:03:30-sun:04:30"}})
    assert "does not overlap database.backup_window (03:00-04:00)" in problem


def test_window_overlap_across_midnight_is_detected():
    problems = _problems("prod", {"database": {"backup_window": "23:30-00:30", "maintenance_window": "mon:00:00-mon:01:00"}})
    assert any("maintenance_window" in p for p in problems)


def test_unknown_environment_name_is_rejected():
    with pytest.raises(SpecError, match=r"unknown environment 'staging'; allowed: lab, qa, prod"):
        load_spec("staging")


@pytest.mark.parametrize("field", ["deletion_protection", "multi_az", "final_snapshot"])
def test_prod_without_safety_is_rejected_unless_overridden(field):
    [problem] = _problems("prod", {"database": {field: False}})
    assert f"prod: database.{field}=False is invalid" in problem and "allow_unsafe_prod" in problem
    assert getattr(build_spec("prod", {"database": {field: False}, "allow_unsafe_prod": True}).database, field) is False


def test_all_problems_are_reported_at_once():
    problems = _problems("prod", {"database": {"allocated_storage_gib": 600, "backup_retention_days": 40, "instance_class": "db.x1.huge"}})
    assert len(problems) == 3


def test_unknown_field_and_wrong_type_are_rejected():
    assert _problems("lab", {"database": {"storage_gb": 20}}) == [
        "lab: unknown field 'database.storage_gb'; see `rentaliq envs --json` for the fields a spec has"
    ]
    [problem] = _problems("lab", {"database": {"multi_az": "maybe"}})
    assert "database.multi_az='maybe'" in problem


def test_overrides_come_from_a_toml_file_per_environment(tmp_path):
    (tmp_path / "qa.toml").write_text('[database]\ninstance_class = "db.t3.medium"\nallowed_cidrs = ["10.99.0.0/16"]\n')
    spec = load_spec("qa", tmp_path)
    assert spec.database.instance_class == "db.t3.medium" and spec.database.allowed_cidrs == ("10.99.0.0/16",)
    assert load_spec("lab", tmp_path).database.instance_class == "db.t3.micro"


def test_bad_override_files_report_every_environment(tmp_path):
    (tmp_path / "lab.toml").write_text("[database]\nbackup_retention_days = 99\n")
    (tmp_path / "prod.toml").write_text("[database]\nmulti_az = false\n")
    with pytest.raises(SpecError) as info:
        load_specs(None, tmp_path)
    assert [p.split(":")[0] for p in info.value.problems] == ["lab", "prod"]


def test_existing_vpc_is_accepted_and_validated():
    spec = build_spec(
        "qa",
        {
            "network": {
                "existing": {
                    "vpc_id": "vpc-0123456789abcdef0",
                    "db_subnet_ids": ["subnet-a", "subnet-b"],
                    "app_subnet_ids": ["subnet-c", "subnet-d"],
                    "availability_zones": ["us-east-1a", "us-east-1b"],
                }
            }
        },
    )
    assert spec.network.existing.vpc_id == "vpc-0123456789abcdef0"
    [problem] = _problems(
        "qa",
        {
            "network": {
                "existing": {"vpc_id": "my-vpc", "db_subnet_ids": ["a", "b"], "app_subnet_ids": ["c", "d"], "availability_zones": ["us-east-1a", "us-east-1b"]}
            }
        },
    )
    assert "network.existing.vpc_id='my-vpc'" in problem


def test_database_open_to_the_internet_is_rejected():
    [problem] = _problems("lab", {"database": {"allowed_cidrs": ["0.0.0.0/0"]}})
    assert "never open to the internet" in problem


def test_a_backup_window_in_the_off_hours_is_refused_with_one_that_works():
    # 03:00 UTC is 22:00 (winter) or 23:00 (summer) in New York: the default schedule has the database stopped then.
    [problem] = _problems("lab", {"database": {"backup_window": "03:00-04:00"}})
    assert problem == (
        "lab: database.backup_window='03:00-04:00' is invalid; allowed: a window (UTC) inside the hours the off-hours "
        "schedule runs the database (07:00-20:00 America/New_York on MON TUE WED THU FRI), e.g. 12:30-13:30: RDS takes "
        "no automated backup of a stopped instance"
    )


def test_a_window_that_opens_with_the_start_or_runs_into_the_stop_is_refused_and_a_summer_only_fit_too():
    # The window must open at least 30 minutes after the 07:00 start and close by the 20:00 stop, in EST and EDT.
    assert _problems("qa", {"database": {"backup_window": "11:30-12:30"}})  # 07:30 EDT fits; 06:30 EST is before the start
    assert _problems("qa", {"database": {"backup_window": "00:30-01:30"}})  # 20:30 EDT: after the stop
    assert build_spec("qa", {"database": {"backup_window": "22:00-23:00"}})  # 17:00-18:00 EST, 18:00-19:00 EDT
    assert build_spec("qa", {"schedule": {"enabled": False}, "database": {"backup_window": "03:00-04:00"}})


def test_a_nat_instance_type_outside_the_list_is_refused_before_any_deploy():
    [problem] = _problems("qa", {"network": {"nat_instance_type": "t4g.weird"}})
    assert problem == "qa: network.nat_instance_type='t4g.weird' is invalid; allowed: one of t4g.nano, t4g.micro, t4g.small, t3.nano, t3.micro, t3a.nano"
