"""Issue 11 section 4: each environment's AWS Budget, asserted on the synthesized templates, and its $0 line on the bill.

Limits are written out from the spec's "Estimated Cost/Month" row (upper bounds: LAB ~$16-18, QA ~$32-36,
PROD ~$123-131), not read back from the implementation.
"""

from __future__ import annotations

import copy
import json

import pytest

from rentaliq.cost import compute_bill, load_prices
from rentaliq.spec.loader import load_spec
from tests.unit.templates import of_type, one, ref, tags

ENVS = ("lab", "qa", "prod")
SPEC_UPPER_BOUND = {"lab": 18, "qa": 36, "prod": 131}


def _budget(template: dict) -> tuple[str, dict]:
    budgets = of_type(template, "AWS::Budgets::Budget")
    assert len(budgets) == 1, budgets
    return next(iter(budgets.items()))


def _topic_id(template: dict) -> str:
    lid, _ = one(template, "AWS::SNS::Topic")
    return lid


@pytest.mark.parametrize("env", ENVS)
def test_a_monthly_cost_budget_at_the_specs_upper_bound_for_this_environment_only(synthesized, env):
    _, budget = _budget(synthesized[env])
    data = budget["Properties"]["Budget"]
    assert data["BudgetName"] == f"rentaliq-{env}-monthly"
    assert (data["BudgetType"], data["TimeUnit"]) == ("COST", "MONTHLY")
    assert data["BudgetLimit"] == {"Amount": SPEC_UPPER_BOUND[env], "Unit": "USD"}
    assert data["BudgetLimit"]["Amount"] == load_spec(env).cost.monthly_usd_high
    # Budgets' tag filter form: user:<tag key>$<value>; the Environment tag every resource carries.
    assert data["CostFilters"] == {"TagKeyValue": [f"user:Environment${env}"]}
    assert "TimePeriod" not in data  # starts with the current month, never a date frozen in the template
    assert tags(budget)["Environment"] == env


@pytest.mark.parametrize("env", ENVS)
def test_notifies_the_alerts_topic_at_80_percent_forecast_and_100_percent_actual(synthesized, env):
    template = synthesized[env]
    _, budget = _budget(template)
    topic = ref(_topic_id(template))
    notifications = budget["Properties"]["NotificationsWithSubscribers"]
    assert sorted((n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in notifications) == [("ACTUAL", 100), ("FORECASTED", 80)]
    for n in notifications:
        assert n["Notification"]["ComparisonOperator"] == "GREATER_THAN"
        assert n["Notification"]["ThresholdType"] == "PERCENTAGE"
        assert n["Subscribers"] == [{"SubscriptionType": "SNS", "Address": topic}]


@pytest.mark.parametrize("env", ENVS)
def test_budgets_may_publish_to_the_encrypted_topic_before_the_budget_exists(synthesized, env):
    template = synthesized[env]
    topic_id = _topic_id(template)
    policy_id, policy = one(template, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    budgets = [s for s in statements if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]
    assert len(budgets) == 1
    statement = budgets[0]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Allow", "sns:Publish", ref(topic_id))
    # AWS's documented conditions for Budgets -> SNS: this account, any of its budgets.
    account = {"Ref": "AWS::AccountId"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": {"Fn::Join": ["", ["arn:aws:budgets::", account, ":*"]]}}
    # The topic's TLS-only deny still holds for everyone else.
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)

    # The topic's key (PROD: the environment's key; the audit trail has a key of its own).
    key_id = template["Resources"][topic_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_id]
    grants = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if "budgets.amazonaws.com" in json.dumps(s.get("Principal"))]
    # Its own statement, apart from CloudWatch's grant (which the alerts tests audit).
    assert [(g["Sid"], g["Effect"], g["Principal"], sorted(g["Action"])) for g in grants] == [
        ("BudgetsUseKey", "Allow", {"Service": "budgets.amazonaws.com"}, ["kms:Decrypt", "kms:GenerateDataKey*"])
    ]

    # Budgets checks its permission when the notification is created: policy and key come first.
    _, budget = _budget(template)
    assert {policy_id, key_id} <= set(budget["DependsOn"])


@pytest.mark.parametrize("env", ENVS)
def test_the_budget_is_a_zero_dollar_line_on_the_bill(synthesized, env):
    spec = load_spec(env)
    bill = compute_bill(synthesized[env], spec, load_prices(), spec.usage)
    lines = [line for line in bill.lines if line.resource_type == "AWS::Budgets::Budget"]
    assert len(lines) == 1
    line = lines[0]
    assert line.name == f"rentaliq-{env}-monthly"
    assert line.component == "Budget without actions (free)"
    assert line.quantity == pytest.approx(730 / 24)  # budget-days in AWS's 730-hour month
    assert (line.price.usd, line.price.unit) == (0.0, "budget-day")
    assert line.monthly_usd == 0.0


def test_a_budget_with_an_action_is_billed_per_day(synthesized):
    template = copy.deepcopy(synthesized["lab"])
    template["Resources"]["StopAction"] = {
        "Type": "AWS::Budgets::BudgetsAction",
        "Properties": {"BudgetName": "rentaliq-lab-monthly"},
    }
    spec = load_spec("lab")
    with pytest.raises(Exception, match="AWS::Budgets::BudgetsAction"):  # the action itself has no price yet: named, not dropped
        compute_bill(template, spec, load_prices(), spec.usage)
    from rentaliq.cost.budgets import budget
    from rentaliq.cost.lines import PricingContext

    lid, resource = _budget(template)
    (line,) = budget(lid, resource, PricingContext(template, spec, spec.usage, load_prices()))
    # $0.10 per action-enabled budget-day (the account's first two such budgets are free, not subtracted here)
    assert line.component == "Action-enabled budget"
    assert line.monthly_usd == pytest.approx(0.10 * 730 / 24)


def test_a_region_without_budgets_in_cloudformation_needs_cost_budget_off():
    from rentaliq.environments import build_spec
    from rentaliq.spec.errors import SpecError

    with pytest.raises(SpecError, match=r"cost.budget=True is invalid; allowed: false in eu-north-1: CloudFormation has no AWS::Budgets::Budget there"):
        build_spec("lab", {"region": "eu-north-1"})
    assert build_spec("lab", {"region": "eu-north-1", "cost": {"budget": False}}).cost.budget is False
    assert build_spec("lab", {"region": "eu-west-1"}).cost.budget is True


def test_cost_budget_off_synthesizes_no_budget_and_no_budgets_permissions(tmp_path):
    from rentaliq.environments import build_spec
    from rentaliq.infra.app import build_app

    app = build_app([build_spec("lab", {"cost": {"budget": False}})], tmp_path)
    template = app.synth().get_stack_by_name("rentaliq-lab").template
    assert of_type(template, "AWS::Budgets::Budget") == {}
    assert "budgets.amazonaws.com" not in json.dumps(template)
