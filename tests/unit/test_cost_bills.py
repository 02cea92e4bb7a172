"""Issue 11 section 1: each environment's bill, written out by hand from the price table (rentaliq/cost/prices.toml,
us-east-1, 730 hours a month) and the spec's [usage] defaults, never by re-running the implementation's formulas.

The templates are the session's one synthesis (tests/unit/conftest.py), so the bills are priced from what the
stacks really create.
"""

from __future__ import annotations

import copy

import pytest

from rentaliq.cost import PriceError, UnpricedResource, compute_bill, load_prices
from rentaliq.spec.loader import load_spec


def _bill(synthesized, env, **usage):
    spec = load_spec(env)
    return compute_bill(synthesized[env], spec, load_prices(), spec.usage.model_copy(update=usage) if usage else None)


def _lines(bill, resource_type, component_start=""):
    return [line for line in bill.lines if line.resource_type == resource_type and line.component.startswith(component_start)]


def _spec_figure(bill) -> float:
    """The spec's own budget figure covers the database's hours and storage and the four secrets, nothing else."""
    budgeted = (
        _lines(bill, "AWS::RDS::DBInstance", "Instance hours")
        + _lines(bill, "AWS::RDS::DBInstance", "Storage")
        + _lines(bill, "AWS::SecretsManager::Secret", "Secret")
    )
    return sum(line.monthly_usd for line in budgeted)


def test_lab_bill_by_hand(synthesized):
    bill = _bill(synthesized, "lab")
    # One line per resource, as a person would write the sum.
    # fmt: off
    expected = (
        0.018 * 730 * 65 / 168  # db.t3.micro, Single-AZ, running 07:00-20:00 Mon-Fri: 65 of the week's 168 h
        + 20 * 0.115  # 20 GB gp3
        + 0 * 0.095  # backup_gb beyond the free 100 %: 0
        + 4 * 0.40  # four secrets
        + 4 * (2500 / 10_000) * 0.05  # 2,500 API calls per secret
        # network.nat = "none": no NAT, no public IPv4 address
        + 0  # S3 gateway endpoint
        + 0.5 * 0.50  # flow logs: 0.5 GB ingested (vended logs)
        + 0.5 * (90 / 30) * 0.03  # their log group keeps 90 days: 1.5 GB stored
        + 5 * 0.023 + 0 * 0.0125 + 0 * 0.0036  # files: 5 GB Standard, nothing in IA or Glacier
        + (10_000 / 1000) * 0.005 + (50_000 / 1000) * 0.0004  # 10,000 PUTs, 50,000 GETs
        + 1.00 + (1000 / 10_000) * 0.03  # the alerts topic's KMS key, 1,000 requests
        + (50 / 1_000_000) * 0.50  # 50 SNS publishes
        + 5 * 0.10  # five standard-resolution alarms
        + 3.00  # one dashboard
        + 0  # the budget (no actions: free)
        + 2 * (5 * 730 / 168) / 1_000_000 * 1.00  # two schedules, each firing 5 times a week: 21.7 invocations a month
    )
    # fmt: on
    assert bill.total == pytest.approx(expected, abs=1e-9)
    assert round(bill.total, 2) == 14.02
    # The spec's own budget figure is the database running all month, its storage and the four secrets: $17.04.
    assert _spec_figure(bill) + 0.018 * 730 * (1 - 65 / 168) == pytest.approx(0.018 * 730 + 20 * 0.115 + 4 * 0.40) == pytest.approx(17.04)
    assert bill.verdict == "below the budget range" and not bill.over_budget
    assert bill.over_budget_lines() == ()
    (unscheduled,) = bill.alternatives  # no reserved instance for an environment that stops off-hours
    assert unscheduled.monthly_delta == pytest.approx(0.018 * (730 - 730 * 65 / 168))  # +$8.06: what the schedule saves
    assert unscheduled.monthly_delta / (0.018 * 730) >= 0.55  # the floor: at least 55 % of the instance cost


def test_qa_bill_by_hand(synthesized):
    bill = _bill(synthesized, "qa")
    # One line per resource, as a person would write the sum.
    # fmt: off
    expected = (
        0.036 * 730 * 65 / 168  # db.t3.small, Single-AZ, running 65 of the week's 168 h (the off-hours schedule)
        + 50 * 0.115  # 50 GB gp3
        + 0 * 0.095  # no backup beyond the free allowance
        + 0.0  # Performance Insights, 7-day retention: free
        + 0.5 * 0.50 + 0.5 * 0.03  # exported PostgreSQL logs: 0.5 GB ingested, one month stored
        + 4 * 0.40 + 4 * (5000 / 10_000) * 0.05  # four secrets, 5,000 calls each
        + 0.0042 * 730 + 8 * 0.08 + 0.005 * 730 + 10 * 0.0  # one t4g.nano NAT instance, its 8 GB gp3 root, its public IPv4; 10 GB at no charge
        + 1 * 0.50 + 1 * (90 / 30) * 0.03  # 1 GB of flow logs, 90 days kept
        + 20 * 0.023 + 10 * 0.0125 + 0 * 0.0036  # files: 20 GB Standard, 10 GB Standard-IA
        + (50_000 / 1000) * 0.005 + (200_000 / 1000) * 0.0004
        + 1.00 + (1000 / 10_000) * 0.03  # KMS key
        + (100 / 1_000_000) * 0.50  # SNS
        + 5 * 0.10 + 1 * 0.10 + 3.00  # alarms (the database's five and the NAT instance's health), dashboard
        + 0 + 2 * (5 * 730 / 168) / 1_000_000 * 1.00  # the budget (free); two schedules' invocations
    )
    # fmt: on
    assert bill.total == pytest.approx(expected, abs=1e-9)
    assert round(bill.total, 2) == 31.35
    assert _spec_figure(bill) + 0.036 * 730 * (1 - 65 / 168) == pytest.approx(33.63)  # 0.036 * 730 + 50 * 0.115 + 4 * 0.40
    pi = _lines(bill, "AWS::RDS::DBInstance", "Performance Insights")
    assert [(line.monthly_usd, "free" in line.component) for line in pi] == [(0.0, True)]
    assert not bill.over_budget
    (unscheduled,) = bill.alternatives
    assert unscheduled.monthly_delta == pytest.approx(0.036 * 730 * (1 - 65 / 168))  # +$16.11
    assert unscheduled.monthly_delta / (0.036 * 730) >= 0.55


def test_prod_bill_by_hand(synthesized):
    bill = _bill(synthesized, "prod")
    # One line per resource, as a person would write the sum.
    # fmt: off
    expected = (
        0.072 * 730 * 2  # db.t3.medium, Multi-AZ: the standby's hours too
        + 100 * 0.115 * 2  # 100 GB gp3, doubled for the standby
        + 0 * 0.095  # no backup beyond the free allowance
        + (730 * 3600 / 60) * 12 / 1024**2 * 0.50  # Enhanced Monitoring every 60 s, 12 KB a sample, ingested
        + 2 * 0.50 + 2 * 0.03  # exported logs: 2 GB ingested, one month stored
        + 4 * 0.40 + 4 * (20_000 / 10_000) * 0.05  # four secrets, 20,000 calls each
        + 2 * (0.0042 * 730 + 8 * 0.08 + 0.005 * 730) + 50 * 0.0  # two t4g.nano NAT instances (hours, root, IPv4); 50 GB free
        + 5 * 0.50 + 5 * (90 / 30) * 0.03  # 5 GB of flow logs, 90 days kept
        + 5 * 0.023  # the access-logs bucket: 5 GB Standard
        + 50 * 0.023 + 50 * 0.0125 + 100 * 0.0125 + 100 * 0.0036  # files: Standard, IA, Intelligent-Tiering (IA tier), Glacier
        + (100_000 / 1000) * 0.0025  # Intelligent-Tiering monitoring of 100,000 objects
        + (200_000 / 1000) * 0.005 + (2_000_000 / 1000) * 0.0004  # requests
        + 16 * 0.30  # the files bucket's request metrics, billed as 16 custom metrics
        + 1.00 + (5000 / 10_000) * 0.03  # the environment's KMS key (it replaces the alerts key)
        + (200 / 1_000_000) * 0.50  # SNS
        + 6 * 0.10 + 2 * 0.10 + 3.00  # six alarms and two NAT health alarms, one dashboard
        + 0  # the budget (free); no schedule in PROD
        + 0  # [audit] the trail: the account's first copy of management events is free
        + 1 * 0.023 + (10_000 / 1000) * 0.005  # the trail-logs bucket: 1 GB Standard, 10,000 deliveries
        + 1.00 + (5000 / 10_000) * 0.03  # the audit KMS key
        + 300 * 0.003 + 10 * 60 * 0.001  # Config: 300 configuration items, ten rules evaluated 60 times each
    )
    # fmt: on
    assert bill.total == pytest.approx(expected, abs=1e-9)
    assert round(bill.total, 2) == 166.85
    assert _spec_figure(bill) == pytest.approx(129.72)  # 0.072 * 730 * 2 + 100 * 0.115 * 2 + 4 * 0.40
    (reserved,) = bill.alternatives
    assert reserved.name == "1-year reserved instance"
    assert reserved.monthly_delta == pytest.approx((0.050 - 0.072) * 730 * 2)  # -$32.12
    assert not reserved.lines[0].price.checked  # shown as unconfirmed until someone checks the offering
    assert bill.unconfirmed_prices() == ("rds.reserved_1y_no_upfront.db.t3.medium",)


def test_prod_with_its_reservation_bought(synthesized):
    spec = load_spec("prod")
    spec = spec.model_copy(update={"cost": spec.cost.model_copy(update={"reserved_instance": True})})
    bill = compute_bill(synthesized["prod"], spec, load_prices())
    # The on-demand bill ($166.85) with the instance hours at the reserved rate: 0.050 instead of 0.072, both copies.
    assert bill.total == pytest.approx(166.85 - (0.072 - 0.050) * 730 * 2, abs=0.005)
    assert round(bill.total, 2) == 134.73  # still $3.73 over $131: the spec's own figure leaves $1.28 for all but RDS and secrets
    (hours,) = _lines(bill, "AWS::RDS::DBInstance", "Reserved instance hours")
    assert hours.quantity == 730 * 2 and hours.price.key == "rds.reserved_1y_no_upfront.db.t3.medium"
    (on_demand,) = bill.alternatives
    assert on_demand.name == "on demand" and on_demand.monthly_delta == pytest.approx((0.072 - 0.050) * 730 * 2)


def test_every_resource_is_priced_or_declared_free(synthesized):
    for env, template in synthesized.items():
        bill = _bill(synthesized, env)
        accounted = {line.resource for line in bill.lines} | {item.resource for item in bill.free}
        assert accounted == set(template["Resources"]), env


def test_a_resource_added_to_a_template_shows_up_on_the_bill(synthesized):
    template = copy.deepcopy(synthesized["lab"])
    (topic,) = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"]
    template["Resources"]["OpsEmail"] = {
        "Type": "AWS::SNS::Subscription",
        "Properties": {"TopicArn": {"Ref": topic}, "Protocol": "email", "Endpoint": "ops@example.com"},
    }
    template["Resources"]["FastAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {"AlarmName": "rentaliq-lab-fast", "MetricName": "CPUUtilization", "Namespace": "AWS/RDS", "Period": 10, "EvaluationPeriods": 1},
    }
    spec = load_spec("lab")
    before, after = compute_bill(synthesized["lab"], spec, load_prices()), compute_bill(template, spec, load_prices())
    added = [line for line in after.lines if line not in before.lines]
    assert [(line.label, line.component, line.monthly_usd) for line in added] == [
        ("rentaliq-lab-alerts", "Deliveries to 1 email subscription(s)", pytest.approx(50 / 100_000 * 2.00)),
        ("rentaliq-lab-fast", "Alarm (high-resolution, period 10 s)", pytest.approx(0.30)),
    ]
    assert after.total - before.total == pytest.approx(50 / 100_000 * 2.00 + 0.30)


def test_an_unknown_resource_type_is_an_error_naming_it(synthesized):
    template = copy.deepcopy(synthesized["lab"])
    template["Resources"]["Cache"] = {"Type": "AWS::ElastiCache::CacheCluster", "Properties": {}}
    with pytest.raises(UnpricedResource, match=r"rentaliq-lab: resource Cache has type 'AWS::ElastiCache::CacheCluster', which has no cost rule"):
        compute_bill(template, load_spec("lab"), load_prices())


def test_usage_assumptions_move_the_bill(synthesized):
    base, more = _bill(synthesized, "lab"), _bill(synthesized, "lab", endpoint_gb=100.0, files_standard_gb=105.0)
    assert more.total - base.total == pytest.approx((105 - 5) * 0.023)  # LAB has no interface endpoint: endpoint_gb costs nothing
    assert more.usage.endpoint_gb == 100.0


def test_a_storage_class_the_lifecycle_never_reaches_is_not_billed(synthesized):
    bill = _bill(synthesized, "lab", files_intelligent_tiering_gb=100.0)  # LAB's lifecycle has no Intelligent-Tiering
    (line,) = [line for line in bill.lines if "Intelligent-Tiering" in line.component]
    assert line.monthly_usd == 0 and "not reachable" in line.component


def test_a_price_the_table_lacks_is_an_error_naming_it(synthesized):
    template = copy.deepcopy(synthesized["lab"])
    (db,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::RDS::DBInstance"]
    db["Properties"]["DBInstanceClass"] = "db.r6i.32xlarge"
    with pytest.raises(PriceError, match=r"no price for 'rds.instance.db.r6i.32xlarge' in us-east-1 \(price table of 2026-11-30\)"):
        compute_bill(template, load_spec("lab"), load_prices())
