"""`rentaliq cost` through the real console script: the budget verdict as an exit code, the JSON for CI, one-line
errors; and the price table's dating and the --usage flags it relies on.

Most runs read the session's templates, published into a private cdk.out/ under their cache keys exactly as
`rentaliq synth` publishes them, so no test synthesizes twice; the within-budget run synthesizes its own override.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from rentaliq.cost.prices import PriceError, add_months, load_prices, parse_table
from rentaliq.cost.usage import UsageError, apply_overrides, parse_overrides
from rentaliq.spec.loader import load_spec
from rentaliq.spec.models import UsageSpec


def rentaliq(*args, cwd, config_dir):
    env = {**os.environ, "COLUMNS": "200", "RENTALIQ_CONFIG_DIR": str(config_dir)}
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def cached(synthesized, tmp_path_factory, request):
    """A working directory whose cdk.out/ holds the session's three templates under their cache keys (no overrides)."""
    from rentaliq.infra.cache import remember

    work = tmp_path_factory.mktemp("cost")
    (work / "config").mkdir()
    outdir = work / "cdk.out"
    outdir.mkdir()
    specs = [load_spec(env, work / "config") for env in ("lab", "qa", "prod")]
    for spec in specs:
        (outdir / f"{spec.stack_name}.template.json").write_text(json.dumps(synthesized[spec.name.value]))
    remember(specs, outdir)
    return work


def test_an_over_budget_environment_fails_naming_the_lines(cached):
    result = rentaliq("cost", "prod", cwd=cached, config_dir=cached / "config")
    assert result.returncode == 1, result.stderr
    assert "PROD: $166.85 a month, over budget (the spec's range: $123.00-$131.00)" in result.stdout
    culprits = next(line for line in result.stdout.splitlines() if "over budget because of" in line)
    assert "Instance hours (db.t3.medium, Multi-AZ: primary + standby) $105.12" in culprits
    assert "Total per month" in result.stdout and "$166.85" in result.stdout
    assert not (cached / "cdk.out" / ".runs").exists() or not any((cached / "cdk.out" / ".runs").iterdir())  # served from the cache


def test_json_output_for_ci(cached):
    result = rentaliq("cost", "--all", "--json", cwd=cached, config_dir=cached / "config")
    assert result.returncode == 1  # PROD is over budget (on demand); LAB and QA are below theirs with their schedules
    data = json.loads(result.stdout)
    assert [b["environment"] for b in data["bills"]] == ["lab", "qa", "prod"]
    assert [b["budget"]["verdict"] for b in data["bills"]] == ["below the budget range", "below the budget range", "over budget"]
    prod = data["bills"][2]
    assert set(prod) >= {
        "stack",
        "region",
        "prices_as_of",
        "currency",
        "total_monthly_usd",
        "budget",
        "lines",
        "free",
        "usage",
        "alternatives",
        "over_budget_lines",
    }
    assert prod["total_monthly_usd"] == 166.85  # 164.26 before [audit]: trail logs, audit key, Config
    assert prod["budget"] == {"monthly_usd_low": 123, "monthly_usd_high": 131, "verdict": "over budget"}
    line = next(x for x in prod["lines"] if x["type"] == "AWS::RDS::DBInstance" and x["component"].startswith("Instance hours"))
    assert line == {
        "resource": line["resource"],
        "name": "rentaliq-prod-db",
        "component": "Instance hours (db.t3.medium, Multi-AZ: primary + standby)",
        "monthly_usd": 105.12,
        "type": "AWS::RDS::DBInstance",
        "unit": "instance-hour",
        "quantity": 1460,
        "unit_usd": 0.072,
        "price": "rds.instance.db.t3.medium",
        "source": "https://aws.amazon.com/rds/postgresql/pricing/",
        "usage": [],
        "note": "",
    }
    assert prod["alternatives"][0]["monthly_delta_usd"] == -32.12
    assert {"resource": line["resource"], "name": "rentaliq-prod-db"}.items() <= prod["over_budget_lines"][0].items()
    assert data["warnings"] == []  # the table is dated today in this repository's clock; the age check is tested below


def test_usage_flags_override_the_spec(cached):
    result = rentaliq("cost", "lab", "--json", "--usage", "nat_gb=105", "--usage", "files_standard_gb=0", cwd=cached, config_dir=cached / "config")
    bill = json.loads(result.stdout)["bills"][0]
    assert bill["usage"]["nat_gb"] == 105 and bill["usage"]["files_standard_gb"] == 0
    assert bill["total_monthly_usd"] == round(14.016999 - 5 * 0.023, 2)  # LAB has no NAT (nat = "none"): nat_gb costs nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["staging"], "error: unknown environment 'staging'; allowed: lab, qa, prod"),
        (["lab", "--all"], "error: give environments or --all, not both"),
        (["lab", "--region", "mars-1"], "error: no prices for region 'mars-1'; allowed: us-east-1 (rentaliq/cost/prices.toml)"),
        (["lab", "--usage", "nat=5"], "error: --usage nat=5: unknown key 'nat'; allowed: " + ", ".join(UsageSpec.model_fields)),
        (["lab", "--usage", "nat_gb=lots"], "error: --usage nat_gb=lots: 'lots' is invalid; allowed: a number >= 0"),
        (["lab", "--usage", "nat_gb=-1"], "error: --usage nat_gb=-1.0 is invalid; allowed: greater than or equal to 0"),
        (["lab", "--usage", "sns_publishes=1.5"], "error: --usage sns_publishes=1.5: '1.5' is invalid; allowed: a whole number >= 0"),
        (["lab", "--usage", "nat_gb"], "error: --usage 'nat_gb' is invalid; allowed: KEY=VALUE, e.g. nat_gb=50"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    (tmp_path / "config").mkdir()
    result = rentaliq("cost", *args, cwd=tmp_path, config_dir=tmp_path / "config")
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert not (tmp_path / "cdk.out").exists()  # rejected before any synth


def test_a_within_budget_spec_passes_and_an_added_subscription_is_billed(tmp_path):
    """A real synth of an overridden LAB: a budget that fits, and an email subscriber the construct turns into a resource."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "lab.toml").write_text('[cost]\nmonthly_usd_low = 10\nmonthly_usd_high = 30\n\n[alerts]\nemails = ["ops@example.com"]\n')
    result = rentaliq("cost", "lab", "--json", cwd=tmp_path, config_dir=tmp_path / "config")
    assert result.returncode == 0, result.stderr
    bill = json.loads(result.stdout)["bills"][0]
    assert bill["budget"]["verdict"] == "within budget" and bill["over_budget_lines"] == []
    assert any(item["type"] == "AWS::SNS::Subscription" for item in bill["free"])  # the subscription itself: no charge
    delivery = next(x for x in bill["lines"] if x["component"] == "Deliveries to 1 email subscription(s)")
    assert delivery["monthly_usd"] == pytest.approx(50 / 100_000 * 2.00, abs=1e-4)  # 50 alarm notifications by email


def test_the_price_table_warns_after_six_months():
    table = load_prices()
    assert table.as_of == dt.date(2026, 11, 30)
    assert table.staleness(dt.date(2027, 5, 30)) is None  # six months to the day: still fresh
    warning = table.staleness(dt.date(2027, 5, 31))
    assert warning is not None and "2026-11-30" in warning and "more than 6 months" in warning
    assert add_months(dt.date(2026, 8, 31), 6) == dt.date(2027, 2, 28)  # month ends clamp


def test_every_price_cites_an_aws_pricing_page():
    table = load_prices()
    pages = {price.source for price in table.prices.values()}
    assert pages <= {
        "https://aws.amazon.com/rds/postgresql/pricing/",
        "https://aws.amazon.com/vpc/pricing/",
        "https://aws.amazon.com/secrets-manager/pricing/",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "https://aws.amazon.com/sns/pricing/",
        "https://aws.amazon.com/kms/pricing/",
        "https://aws.amazon.com/s3/pricing/",
        "https://aws.amazon.com/eventbridge/pricing/",
        "https://aws.amazon.com/ec2/pricing/on-demand/",
        "https://aws.amazon.com/ebs/pricing/",
        "https://aws.amazon.com/aws-cost-management/aws-budgets/pricing/",
        "https://aws.amazon.com/cloudtrail/pricing/",
        "https://aws.amazon.com/config/pricing/",
    }
    # The prices the spec's budgets are built from.
    assert [table[k].usd for k in ("rds.instance.db.t3.micro", "rds.instance.db.t3.small", "rds.instance.db.t3.medium")] == [0.018, 0.036, 0.072]
    assert (table["rds.storage.gp3"].usd, table["rds.backup"].usd, table["secretsmanager.secret"].usd) == (0.115, 0.095, 0.40)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"usd": "0.1", "unit": "h", "source": "rds"}, "usd='0.1' is invalid"),
        ({"usd": -1, "unit": "h", "source": "rds"}, "usd=-1 is invalid"),
        ({"usd": 0.1, "unit": "h", "source": "blog"}, "source='blog' is invalid; allowed: rds"),
        ({"usd": 0.1, "source": "rds"}, "unit=None is invalid"),
        ({"usd": 0.1, "unit": "h", "source": "rds", "cost": 1}, "expected a table of usd, unit, source"),
    ],
)
def test_a_malformed_price_is_refused(entry, message):
    data = {"as_of": dt.date(2026, 1, 1), "sources": {"rds": "https://aws.amazon.com/rds/postgresql/pricing/"}, "regions": {"us-east-1": {"x": entry}}}
    with pytest.raises(PriceError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_table(data, "us-east-1")


def test_usage_overrides_parse_and_validate():
    assert parse_overrides(["nat_gb=50", "files_get_requests=2e6"]) == {"nat_gb": 50.0, "files_get_requests": 2_000_000}
    usage = apply_overrides(load_spec("lab").usage, {"nat_gb": 50.0})
    assert usage.nat_gb == 50.0 and usage.files_standard_gb == 5  # the rest stays the spec's
    with pytest.raises(UsageError, match="request_metrics=17"):
        apply_overrides(usage, parse_overrides(["request_metrics=17"]))


def test_the_command_warns_when_its_prices_are_old(cached, monkeypatch):
    """The command measures the table's age against the date it is given (here: injected, a year on)."""
    from typer.testing import CliRunner

    from rentaliq.cli import cost_cmds
    from rentaliq.cli.main import app

    monkeypatch.chdir(cached)
    monkeypatch.setenv("RENTALIQ_CONFIG_DIR", str(cached / "config"))
    monkeypatch.setattr(cost_cmds, "today", lambda: dt.date(2027, 11, 30))
    result = CliRunner().invoke(app, ["cost", "prod", "--json"])
    assert json.loads(result.stdout)["warnings"] == [
        "the price table is from 2026-11-30, more than 6 months ago: AWS prices change; re-check rentaliq/cost/prices.toml against the pages it cites"
    ]
    assert "warning: the price table is from 2026-11-30" in result.stderr
    monkeypatch.setattr(cost_cmds, "today", lambda: dt.date(2027, 5, 30))
    assert json.loads(CliRunner().invoke(app, ["cost", "prod", "--json"]).stdout)["warnings"] == []


def test_a_bad_usage_table_in_a_config_file_is_refused_naming_each_field():
    from rentaliq.spec.errors import SpecError
    from rentaliq.spec.loader import build_spec

    with pytest.raises(SpecError) as error:
        build_spec("qa", {"usage": {"nat_gb": -1, "files_put_requests": 1.5, "nat_gbs": 3}})
    text = str(error.value)
    assert "qa: usage.nat_gb=-1 is invalid" in text
    assert "qa: usage.files_put_requests=1.5 is invalid; allowed: an integer" in text
    assert "qa: unknown field 'usage.nat_gbs'" in text


def test_turning_lab_schedule_off_puts_it_over_budget(tmp_path):
    """A real synth of an overridden LAB without its off-hours schedule: 730 instance hours instead of 282.44."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "lab.toml").write_text("[schedule]\nenabled = false\n")
    result = rentaliq("cost", "lab", cwd=tmp_path, config_dir=tmp_path / "config")
    assert result.returncode == 1, result.stderr
    # $14.02 with the schedule, + 0.018 * (730 - 282.44) = $8.06 of instance hours, - 2 * 21.7 invocations (~$0.00).
    assert "LAB: $22.07 a month, over budget (the spec's range: $16.00-$18.00)" in result.stdout
    culprits = next(line for line in result.stdout.splitlines() if "over budget because of" in line)
    assert "Instance hours (db.t3.micro, Single-AZ) $13.14" in culprits
