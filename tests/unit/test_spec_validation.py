"""Strict spec validation (issue 7): values are checked as written, every problem is reported at once,
and each bad value gets one line naming the field, the value and what is allowed."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest

from rentaliq.environments import SpecError, build_spec, load_spec, load_specs
from rentaliq.spec.aws import budget_region_problem


def _problems(env, overrides):
    with pytest.raises(SpecError) as info:
        build_spec(env, overrides)
    return info.value.problems


def rentaliq(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=120
    )


def one_line_error(result) -> str:
    """The CLI's answer to bad input: exit 1, one line on stderr, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


# --- strict types: no "30" -> 30, no "yes" -> True -------------------------------------------------------------


@pytest.mark.parametrize(
    "toml_line,problem",
    [
        ('backup_retention_days = "30"', "lab: database.backup_retention_days='30' is invalid; allowed: an integer (a TOML number, without quotes)"),
        ('multi_az = "yes"', "lab: database.multi_az='yes' is invalid; allowed: true or false (a TOML boolean, without quotes)"),
        ("deletion_protection = 1", "lab: database.deletion_protection=1 is invalid; allowed: true or false (a TOML boolean, without quotes)"),
        ("port = 5432.0", "lab: database.port=5432.0 is invalid; allowed: an integer (a TOML number, without quotes)"),
        ("instance_class = 3", "lab: database.instance_class=3 is invalid; allowed: a string (in quotes)"),
    ],
)
def test_a_value_of_the_wrong_type_in_a_file_is_rejected_not_coerced(tmp_path, toml_line, problem):
    (tmp_path / "lab.toml").write_text(f"[database]\n{toml_line}\n")
    with pytest.raises(SpecError) as info:
        load_spec("lab", tmp_path)
    assert info.value.problems == [problem]


def test_a_number_field_takes_an_integer_but_not_a_string():
    assert build_spec("lab", {"monitoring": {"cpu_threshold_percent": 75}}).monitoring.cpu_threshold_percent == 75.0
    assert _problems("lab", {"monitoring": {"cpu_threshold_percent": "75"}}) == [
        "lab: monitoring.cpu_threshold_percent='75' is invalid; allowed: a number (a TOML number, without quotes)"
    ]


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_toml_inf_and_nan_are_no_number(tmp_path, value):
    (tmp_path / "lab.toml").write_text(f"[monitoring]\nfree_storage_threshold_gib = {value}\n")
    with pytest.raises(SpecError) as info:
        load_spec("lab", tmp_path)
    assert info.value.problems == [f"lab: monitoring.free_storage_threshold_gib={float(value)!r} is invalid; allowed: a finite number (not inf or nan)"]


def test_a_list_field_takes_a_list_of_strings_only():
    assert _problems("lab", {"database": {"allowed_cidrs": "10.0.0.0/16"}}) == [
        'lab: database.allowed_cidrs=\'10.0.0.0/16\' is invalid; allowed: a list, e.g. ["a", "b"]'
    ]
    assert _problems("lab", {"database": {"cloudwatch_log_exports": ["postgresql", 7]}}) == [
        "lab: database.cloudwatch_log_exports[1]=7 is invalid; allowed: a string (in quotes)"
    ]


# --- allowed_cidrs: private IPv4 only ---------------------------------------------------------------------------


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "10.99.0.0/16", "172.16.0.0/12", "172.31.255.0/24", "192.168.1.0/24", "100.64.0.0/10", "100.127.0.0/16"])
def test_private_ranges_are_accepted(cidr):
    assert build_spec("lab", {"database": {"allowed_cidrs": [cidr]}}).database.allowed_cidrs == (cidr,)


@pytest.mark.parametrize("cidr", ["8.8.8.0/24", "0.0.0.0/0", "172.32.0.0/16", "10.0.0.0/7", "100.128.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "192.0.2.0/24"])
def test_public_and_special_ranges_are_rejected_with_the_reason(cidr):
    assert _problems("lab", {"database": {"allowed_cidrs": ["10.1.0.0/16", cidr]}}) == [
        f"lab: database.allowed_cidrs[1]={cidr!r} is invalid; allowed: a private IPv4 range inside 10.0.0.0/8, 172.16.0.0/12, "
        f"192.168.0.0/16 (RFC 1918) or 100.64.0.0/10 (RFC 6598); {cidr} is not private and the database is never open to the internet"
    ]


@pytest.mark.parametrize("cidr", ["fd00::/8", "::/0", "2001:db8::/32"])
def test_ipv6_is_rejected_with_the_reason(cidr):
    assert _problems("lab", {"database": {"allowed_cidrs": [cidr]}}) == [
        f"lab: database.allowed_cidrs[0]={cidr!r} is invalid; allowed: an IPv4 CIDR block; IPv6 is not supported: the RDS security group rules are IPv4"
    ]


def test_host_bits_and_garbage_are_rejected():
    for cidr in ("10.0.0.1/16", "10.0.0.0/33", "ten"):
        [problem] = _problems("lab", {"database": {"allowed_cidrs": [cidr]}})
        assert problem.endswith("allowed: IPv4 CIDR blocks such as 10.0.0.0/16 (network address, no host bits)")


def test_an_ipv6_cidr_in_a_file_is_one_line_from_the_cli(tmp_path):
    (tmp_path / "lab.toml").write_text('[database]\nallowed_cidrs = ["fd00::/8"]\n')
    line = one_line_error(rentaliq("envs", env={"RENTALIQ_CONFIG_DIR": str(tmp_path)}))
    assert line == (
        "error: lab: database.allowed_cidrs[0]='fd00::/8' is invalid; allowed: an IPv4 CIDR block; IPv6 is not supported: the RDS security group rules are IPv4"
    )


# --- every problem at once --------------------------------------------------------------------------------------


def test_three_problems_of_different_kinds_are_all_reported(tmp_path):
    # A bad type (pydantic), a public CIDR (a rule) and an unknown field (structure), all in one section.
    (tmp_path / "qa.toml").write_text('[database]\nbackup_retention_days = "7"\nallowed_cidrs = ["8.8.8.0/24"]\nstorage_gb = 20\n')
    with pytest.raises(SpecError) as info:
        load_spec("qa", tmp_path)
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert problems[0] == "qa: database.backup_retention_days='7' is invalid; allowed: an integer (a TOML number, without quotes)"
    assert problems[1] == "qa: unknown field 'database.storage_gb'; see `rentaliq envs --json` for the fields a spec has"
    assert problems[2].startswith("qa: database.allowed_cidrs[0]='8.8.8.0/24' is invalid; allowed: a private IPv4 range")
    assert str(info.value).count("\n  ") == 3  # one message, one line per problem


def test_a_cross_field_rule_still_runs_beside_a_type_error():
    problems = _problems("qa", {"database": {"multi_az": "no", "allocated_storage_gib": 200}})
    assert problems == [
        "qa: database.multi_az='no' is invalid; allowed: true or false (a TOML boolean, without quotes)",
        "qa: database.allocated_storage_gib=200 is invalid; allowed: at most database.max_allocated_storage_gib (100)",
    ]


def test_a_rule_reading_a_bad_value_is_skipped_not_crashed():
    # The rule comparing storage with max storage cannot judge "200"; the type error alone is reported.
    assert _problems("qa", {"database": {"allocated_storage_gib": "200"}}) == [
        "qa: database.allocated_storage_gib='200' is invalid; allowed: an integer (a TOML number, without quotes)"
    ]
    assert _problems("lab", {"database": 5}) == ["lab: database=5 is invalid; allowed: a table, e.g. [database]"]


def test_every_rule_declares_every_field_it_reads():
    """A rule runs only when the fields it declares are valid, so reading an undeclared one would crash or judge garbage."""
    from rentaliq.spec import rules
    from rentaliq.spec.loader import built_in_data
    from rentaliq.spec.partial import partial_spec

    for env in ("lab", "qa", "prod"):
        for rule in rules.RULES:
            spec = partial_spec(built_in_data(env), lambda loc, rule=rule: not rule.reads(loc))
            list(rule.check(spec))  # raises if the rule touches a field it did not declare


# --- config dir -------------------------------------------------------------------------------------------------


def test_a_missing_config_dir_is_an_error_naming_it(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-dir"
    monkeypatch.setenv("RENTALIQ_CONFIG_DIR", str(missing))
    with pytest.raises(SpecError) as info:
        load_spec("lab")
    assert info.value.problems == [
        f"RENTALIQ_CONFIG_DIR={str(missing)!r} is not a directory; allowed: an existing directory holding {{env}}.toml files, or unset for ./config"
    ]
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("RENTALIQ_CONFIG_DIR", str(tmp_path / "a-file"))
    with pytest.raises(SpecError, match="is not a directory"):
        load_specs()


def test_a_missing_config_dir_stops_the_cli_before_anything_runs(tmp_path):
    line = one_line_error(rentaliq("synth", "lab", env={"RENTALIQ_CONFIG_DIR": str(tmp_path / "nope")}, cwd=tmp_path))
    assert line.startswith(f"error: RENTALIQ_CONFIG_DIR='{tmp_path / 'nope'}' is not a directory")
    assert not (tmp_path / "cdk.out").exists()


def test_no_config_dir_at_all_means_the_built_in_values(tmp_path, monkeypatch):
    monkeypatch.delenv("RENTALIQ_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./config here
    assert load_spec("qa").database.instance_class == "db.t3.small"


# --- region and tags --------------------------------------------------------------------------------------------


def test_region_mars_1_is_rejected_in_one_line(tmp_path):
    assert _problems("lab", {"region": "mars-1"}) == [
        "lab: region='mars-1' is invalid; allowed: an AWS region code such as us-east-1, eu-west-2 or ap-southeast-1 (`aws ec2 describe-regions` lists them)"
    ]
    (tmp_path / "lab.toml").write_text('region = "mars-1"\n')
    assert one_line_error(rentaliq("envs", env={"RENTALIQ_CONFIG_DIR": str(tmp_path)})).startswith("error: lab: region='mars-1' is invalid")


@pytest.mark.parametrize("region", ["US-EAST-1", "us-east-1 ", "aws-global", "us-east-99", ""])
def test_not_quite_regions_are_rejected(region):
    [problem] = _problems("lab", {"region": region})
    assert problem.startswith(f"lab: region={region!r} is invalid")


def test_every_region_botocore_knows_for_rds_is_accepted():
    session = boto3.session.Session()
    regions = {r for p in session.get_available_partitions() for r in session.get_available_regions("rds", partition_name=p)}
    assert {"us-east-1", "eu-west-2", "cn-north-1", "us-gov-west-1"} <= regions
    for region in sorted(regions):
        # Where CloudFormation has no AWS::Budgets::Budget, the spec must say it goes without one (cost.budget = false).
        budget = budget_region_problem(region) is None
        assert build_spec("lab", {"region": region, "cost": {"budget": budget}}).region == region


@pytest.mark.parametrize("owner", ["", "   ", "\t"])
def test_an_empty_owner_tag_is_rejected(owner):
    assert _problems("lab", {"tags": {"owner": owner}}) == [
        f"lab: tags.owner={owner!r} is invalid; allowed: a non-empty tag value (AWS tag values: up to 256 characters, "
        "letters, digits, spaces and _ . : / = + - @)"
    ]


@pytest.mark.parametrize("field,value", [("owner", "x" * 257), ("owner", "Keith <ops>"), ("cost_center", "CC#42"), ("managed_by", "CDK; rm")])
def test_tag_values_follow_aws_tag_rules(field, value):
    [problem] = _problems("lab", {"tags": {field: value}})
    assert problem.startswith(f"lab: tags.{field}={value!r} is invalid; allowed: ")
    assert "up to 256 characters, letters, digits, spaces and _ . : / = + - @" in problem


def test_tag_values_aws_accepts_are_accepted():
    spec = build_spec("lab", {"tags": {"owner": "José Pérez @ops", "cost_center": "CC-1234/a.b:c=d+e_f"}})
    assert spec.resource_tags()["Owner"] == "José Pérez @ops"
    assert build_spec("lab", {"tags": {"owner": "x" * 256}}).tags.owner == "x" * 256


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"monitoring": {"period_s": 90}}, "monitoring.period_s=90 is invalid; allowed: 10, 30 or a multiple of 60 seconds"),
        ({"monitoring": {"cpu_period_s": 45}}, "monitoring.cpu_period_s=45 is invalid; allowed: 10, 30 or a multiple of 60 seconds"),
        ({"alerts": {"emails": ["oncall"]}}, "alerts.emails='oncall' is invalid; allowed: an email address"),
        (
            {"alerts": {"https_endpoints": ["http://hooks.example.com/x"]}},
            "alerts.https_endpoints='http://hooks.example.com/x' is invalid; allowed: an https:// URL",
        ),
        ({"alerts": {"chat_webhook_url": "ftp://chat.example.com"}}, "alerts.chat_webhook_url='ftp://chat.example.com' is invalid; allowed: an https:// URL"),
        ({"alerts": {"emails": ["oncall@example.com\n"]}}, "alerts.emails='oncall@example.com\\n' is invalid; allowed: an email address"),
        ({"alerts": {"emails": ["a@example.com", "a@example.com"]}}, "alerts='a@example.com' is invalid; allowed: each email address and URL once"),
        (
            {"alerts": {"https_endpoints": ["https://hook:s3cr3t@example.com/x"]}},
            "'https://****@example.com/x' is invalid; allowed: a URL without user:password@",
        ),
    ],
)
def test_alarm_periods_and_alert_subscribers_are_checked(overrides, problem):
    [found] = _problems("lab", overrides)
    assert problem in found and "s3cr3t" not in found


def test_loopback_http_subscribers_are_accepted_for_local_testing():
    spec = build_spec("lab", {"alerts": {"https_endpoints": ["http://127.0.0.1:8080/sns"], "emails": ["oncall@example.com"]}})
    assert spec.alerts.subscriptions() == (("email", "oncall@example.com"), ("http", "http://127.0.0.1:8080/sns"))
    assert build_spec("lab", {"monitoring": {"period_s": 10, "cpu_period_s": 120}}).monitoring.period_s == 10
