"""Issue 11 section 4 on the local cloud: LAB's AWS Budget deployed through CloudFormation, read back through the
Budgets API (the data itself: limit, filter, notifications, subscribers, tags), audited by `verify`, broken live and
caught, never adopted, and kept across a restart and a ``kill -9``.

The module has a cloud of its own: it kills it, and it breaks what the session's deployed environments must keep.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rentaliq.deploy.lifecycle import up
from rentaliq.deploy.target import Target
from rentaliq.environments import build_spec, load_spec
from rentaliq.local.cloud import LocalCloud
from rentaliq.ops.verify import FAIL, PASS, verify
from tests.clouds import private_cloud

pytestmark = pytest.mark.slow

ACCOUNT = "123456789012"  # the local cloud's account
NAME = "rentaliq-lab-monthly"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:rentaliq-lab-alerts"
FORECAST_80 = {"NotificationType": "FORECASTED", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0, "ThresholdType": "PERCENTAGE"}
ACTUAL_100 = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 100.0, "ThresholdType": "PERCENTAGE"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[tuple[LocalCloud, Target, Path]]:
    with private_cloud("budgets") as cloud:
        target = Target.local(cloud.endpoint_url, state_dir=cloud.state_dir)
        outdir = tmp_path_factory.mktemp("cdk.out")
        up(target, [load_spec("lab")], outdir)
        yield cloud, target, outdir


def _budgets(lab):
    return lab[0].client("budgets")


def _notifications(budgets) -> list[dict]:
    found = budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName=NAME)["Notifications"]
    return sorted(found, key=lambda n: n["NotificationType"])


def _budget_checks(target: Target) -> list:
    return [c for c in verify(target, load_spec("lab")) if c.area == "Budget"]


def _failed(checks: list) -> list:
    return [c for c in checks if c.status == FAIL]


def test_the_budget_reads_back_as_the_spec_says(lab):
    budgets = _budgets(lab)
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName=NAME)["Budget"]
    assert budget["BudgetLimit"] == {"Amount": "18", "Unit": "USD"}  # LAB's upper bound, ~$16-18
    assert (budget["BudgetType"], budget["TimeUnit"]) == ("COST", "MONTHLY")
    assert budget["CostFilters"] == {"TagKeyValue": ["user:Environment$lab"]}
    assert _notifications(budgets) == [{**ACTUAL_100, "NotificationState": "OK"}, {**FORECAST_80, "NotificationState": "OK"}]
    for notification in (FORECAST_80, ACTUAL_100):
        subscribers = budgets.describe_subscribers_for_notification(AccountId=ACCOUNT, BudgetName=NAME, Notification=notification)["Subscribers"]
        assert subscribers == [{"SubscriptionType": "SNS", "Address": TOPIC}]
    tags = budgets.list_tags_for_resource(ResourceARN=f"arn:aws:budgets::{ACCOUNT}:budget/{NAME}")["ResourceTags"]
    assert {t["Key"]: t["Value"] for t in tags}.items() >= {"Environment": "lab", "Project": "RentalIQ", "ManagedBy": "CDK"}.items()
    # The stack knows it by its name (Ref), as CloudFormation does.
    resources = lab[0].client("cloudformation").describe_stack_resources(StackName="rentaliq-lab")["StackResources"]
    assert [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Budgets::Budget"] == [NAME]


def test_the_topic_and_its_key_let_budgets_publish(lab):
    cloud = lab[0]
    attributes = cloud.client("sns").get_topic_attributes(TopicArn=TOPIC)["Attributes"]
    statements = json.loads(attributes["Policy"])["Statement"]
    (budgets,) = [s for s in statements if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]
    assert (budgets["Effect"], budgets["Action"], budgets["Resource"]) == ("Allow", "sns:Publish", TOPIC)
    assert budgets["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{ACCOUNT}:*"}}
    kms = cloud.client("kms")
    key_policy = json.loads(kms.get_key_policy(KeyId=attributes["KmsMasterKeyId"], PolicyName="default")["Policy"])
    grants = [s for s in key_policy["Statement"] if "budgets.amazonaws.com" in json.dumps(s.get("Principal"))]
    assert len(grants) == 1 and sorted(grants[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_verify_passes_on_the_deployed_budget(lab):
    checks = _budget_checks(lab[1])
    assert not _failed(checks), "\n".join(map(str, _failed(checks)))
    assert all(c.status == PASS for c in checks) and len(checks) >= 10
    names = {c.name for c in checks}
    assert {f"{NAME} limit (the spec's monthly upper bound)", f"{NAME} notifications", "rentaliq-lab-alerts policy lets Budgets publish"} <= names


def test_a_budget_broken_live_fails_verify_naming_what_changed(lab):
    budgets, target = _budgets(lab), lab[1]
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName=NAME)["Budget"]
    new = {k: budget[k] for k in ("BudgetName", "BudgetType", "TimeUnit", "CostFilters")} | {"BudgetLimit": {"Amount": "500", "Unit": "USD"}}
    budgets.update_budget(AccountId=ACCOUNT, NewBudget=new)
    budgets.delete_notification(AccountId=ACCOUNT, BudgetName=NAME, Notification=FORECAST_80)
    try:
        failed = {c.name: c for c in _failed(_budget_checks(target))}
        assert set(failed) == {f"{NAME} limit (the spec's monthly upper bound)", f"{NAME} notifications"}
        limit = failed[f"{NAME} limit (the spec's monthly upper bound)"]
        assert (limit.expected, limit.actual) == ("18 USD", "500 USD")
        notifications = failed[f"{NAME} notifications"]
        assert notifications.expected == ["ACTUAL GREATER_THAN 100 PERCENTAGE", "FORECASTED GREATER_THAN 80 PERCENTAGE"]
        assert notifications.actual == ["ACTUAL GREATER_THAN 100 PERCENTAGE"]
    finally:
        budgets.update_budget(AccountId=ACCOUNT, NewBudget=new | {"BudgetLimit": {"Amount": "18", "Unit": "USD"}})
        budgets.create_notification(AccountId=ACCOUNT, BudgetName=NAME, Notification=FORECAST_80, Subscribers=[{"SubscriptionType": "SNS", "Address": TOPIC}])
    assert not _failed(_budget_checks(target))


def test_a_topic_policy_without_budgets_fails_verify(lab):
    sns, target = lab[0].client("sns"), lab[1]
    original = sns.get_topic_attributes(TopicArn=TOPIC)["Attributes"]["Policy"]
    document = json.loads(original)
    document["Statement"] = [s for s in document["Statement"] if s.get("Principal") != {"Service": "budgets.amazonaws.com"}]
    sns.set_topic_attributes(TopicArn=TOPIC, AttributeName="Policy", AttributeValue=json.dumps(document))
    try:
        failed = _failed(_budget_checks(target))
        assert [(c.name, c.expected, c.actual) for c in failed] == [("rentaliq-lab-alerts policy lets Budgets publish", True, False)]
    finally:
        sns.set_topic_attributes(TopicArn=TOPIC, AttributeName="Policy", AttributeValue=original)


def test_a_missing_budget_fails_verify_with_budgets_own_error(lab):
    spec = load_spec("qa")  # QA is not deployed on this cloud
    failed = [c for c in verify(lab[1], spec) if c.area == "Budget" and c.status == FAIL]
    # One line for the missing budget (not one per notification or tag it lacks), and QA's own topic is missing too.
    assert [c.name for c in failed] == ["rentaliq-qa-monthly exists", "rentaliq-qa-alerts policy lets Budgets publish"]
    assert failed[0].detail == "describe_budget: NotFoundException: Unable to get budget: rentaliq-qa-monthly - the budget doesn't exist."


def test_a_budget_left_behind_when_the_spec_turns_it_off_fails_verify(lab):
    checks = [c for c in verify(lab[1], build_spec("lab", {"cost": {"budget": False}})) if c.area == "Budget"]
    assert [(c.name, c.status, c.actual) for c in checks] == [(f"{NAME} absent (cost.budget = false)", FAIL, NAME)]
    qa = [c for c in verify(lab[1], build_spec("qa", {"cost": {"budget": False}})) if c.area == "Budget"]
    assert [(c.name, c.status) for c in qa] == [("rentaliq-qa-monthly absent (cost.budget = false)", PASS)]


def test_the_budgets_api_answers_as_aws_documents(lab):
    """What moto 5.2.5 lacked or answered with a 500 (local/budgets_fixes.py), on a budget of the test's own."""
    budgets = _budgets(lab)
    name, email = "rentaliq-api-check", {"SubscriptionType": "EMAIL", "Address": "ops@example.com"}
    sns = {"SubscriptionType": "SNS", "Address": TOPIC}
    limit = {"BudgetName": name, "BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": "10", "Unit": "USD"}}
    budgets.create_budget(AccountId=ACCOUNT, Budget=limit, NotificationsWithSubscribers=[{"Notification": ACTUAL_100, "Subscribers": [sns]}])
    try:
        missing = {"AccountId": ACCOUNT, "BudgetName": "rentaliq-no-such-budget"}
        for call, message in (
            (lambda: budgets.describe_notifications_for_budget(**missing), "Unable to get notifications - the budget doesn't exist."),
            (
                lambda: budgets.update_budget(AccountId=ACCOUNT, NewBudget={**limit, "BudgetName": "rentaliq-no-such-budget"}),
                "Unable to update budget: rentaliq-no-such-budget - the budget doesn't exist.",
            ),
            (
                lambda: budgets.delete_notification(AccountId=ACCOUNT, BudgetName=name, Notification=FORECAST_80),
                "Unable to delete notification - the notification doesn't exist.",
            ),
        ):
            with pytest.raises(budgets.exceptions.NotFoundException, match=re.escape(message)):
                call()
        with pytest.raises(budgets.exceptions.DuplicateRecordException):
            budgets.create_notification(AccountId=ACCOUNT, BudgetName=name, Notification={**ACTUAL_100, "Threshold": 100}, Subscribers=[sns])
        for amount in ("abc", "-5", "NaN"):  # a limit is a decimal amount of at least 0; the stored one is untouched
            with pytest.raises(budgets.exceptions.InvalidParameterException, match="Invalid budget limit amount"):
                budgets.update_budget(AccountId=ACCOUNT, NewBudget={**limit, "BudgetLimit": {"Amount": amount, "Unit": "USD"}})
        assert budgets.describe_budget(AccountId=ACCOUNT, BudgetName=name)["Budget"]["BudgetLimit"]["Amount"] in ("10", "10.0")
        # Subscribers: added, listed, removed; a notification is found by its values (80 and 80.0 alike).
        budgets.create_subscriber(AccountId=ACCOUNT, BudgetName=name, Notification=ACTUAL_100, Subscriber=email)
        listed = budgets.describe_subscribers_for_notification(AccountId=ACCOUNT, BudgetName=name, Notification=ACTUAL_100)["Subscribers"]
        assert sorted(s["SubscriptionType"] for s in listed) == ["EMAIL", "SNS"]
        budgets.delete_subscriber(AccountId=ACCOUNT, BudgetName=name, Notification=ACTUAL_100, Subscriber=email)
        assert budgets.describe_subscribers_for_notification(AccountId=ACCOUNT, BudgetName=name, Notification=ACTUAL_100)["Subscribers"] == [sns]
        budgets.update_notification(AccountId=ACCOUNT, BudgetName=name, OldNotification=ACTUAL_100, NewNotification=FORECAST_80)
        assert budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName=name)["Notifications"] == [{**FORECAST_80, "NotificationState": "OK"}]
        account = budgets.describe_budget_notifications_for_account(AccountId=ACCOUNT)["BudgetNotificationsForAccount"]
        assert {"BudgetName": name, "Notifications": [{**FORECAST_80, "NotificationState": "OK"}]} in account
        history = budgets.describe_budget_performance_history(AccountId=ACCOUNT, BudgetName=name)["BudgetPerformanceHistory"]
        (period,) = history["BudgetedAndActualAmountsList"]
        assert (period["BudgetedAmount"], period["ActualAmount"]) == ({"Amount": "10", "Unit": "USD"}, {"Amount": "0", "Unit": "USD"})
        arn = f"arn:aws:budgets::{ACCOUNT}:budget/{name}"
        budgets.tag_resource(ResourceARN=arn, ResourceTags=[{"Key": "Team", "Value": "ops"}])
        budgets.untag_resource(ResourceARN=arn, ResourceTagKeys=["Team"])
        assert budgets.list_tags_for_resource(ResourceARN=arn)["ResourceTags"] == []
        with pytest.raises(budgets.exceptions.NotFoundException):
            budgets.list_tags_for_resource(ResourceARN=f"arn:aws:budgets::{ACCOUNT}:budget/rentaliq-no-such-budget")
    finally:
        budgets.delete_budget(AccountId=ACCOUNT, BudgetName=name)


def test_a_create_never_adopts_a_budget_of_the_same_name(lab):
    """A budget made by hand keeps its limit: the stack's create fails on it and the rollback leaves it alone."""
    cloud = lab[0]
    budgets, cfn = cloud.client("budgets"), cloud.client("cloudformation")
    mine = {"BudgetName": "rentaliq-handmade-monthly", "BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": "7", "Unit": "USD"}}
    budgets.create_budget(AccountId=ACCOUNT, Budget=mine)
    template = {
        "Resources": {
            "Budget": {
                "Type": "AWS::Budgets::Budget",
                "Properties": {"Budget": {**mine, "BudgetLimit": {"Amount": 99, "Unit": "USD"}}},
            }
        }
    }
    cfn.create_stack(StackName="budget-adoption", TemplateBody=json.dumps(template))
    status = _wait_stack(cfn, "budget-adoption")
    assert status == "ROLLBACK_COMPLETE"
    failed = [e for e in cfn.describe_stack_events(StackName="budget-adoption")["StackEvents"] if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed and failed[0]["ResourceStatusReason"] == "rentaliq-handmade-monthly already exists"
    assert budgets.describe_budget(AccountId=ACCOUNT, BudgetName="rentaliq-handmade-monthly")["Budget"]["BudgetLimit"] == {"Amount": "7", "Unit": "USD"}
    cfn.delete_stack(StackName="budget-adoption")
    budgets.delete_budget(AccountId=ACCOUNT, BudgetName="rentaliq-handmade-monthly")


def test_a_changed_notification_of_a_named_budget_is_refused_as_aws_refuses_it(lab):
    """NotificationsWithSubscribers is create-only (AWS's schema): a change replaces the budget, which CloudFormation
    refuses for a budget with a custom name. The update rolls back and the budget keeps its notification."""
    cloud = lab[0]
    budgets, cfn = cloud.client("budgets"), cloud.client("cloudformation")

    def template(threshold: int) -> str:
        notification = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": threshold, "ThresholdType": "PERCENTAGE"}
        budget = {"BudgetName": "rentaliq-named-monthly", "BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": 5, "Unit": "USD"}}
        properties = {
            "Budget": budget,
            "NotificationsWithSubscribers": [{"Notification": notification, "Subscribers": [{"SubscriptionType": "SNS", "Address": TOPIC}]}],
        }
        return json.dumps({"Resources": {"Budget": {"Type": "AWS::Budgets::Budget", "Properties": properties}}})

    cfn.create_stack(StackName="budget-named", TemplateBody=template(100))
    assert _wait_stack(cfn, "budget-named") == "CREATE_COMPLETE"
    cfn.update_stack(StackName="budget-named", TemplateBody=template(90))
    assert _wait_stack(cfn, "budget-named") == "UPDATE_ROLLBACK_COMPLETE"
    reasons = [
        e.get("ResourceStatusReason") for e in cfn.describe_stack_events(StackName="budget-named")["StackEvents"] if e["ResourceStatus"] == "UPDATE_FAILED"
    ]
    assert (
        "CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename rentaliq-named-monthly and update the stack again."
        in reasons
    )
    (kept,) = budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="rentaliq-named-monthly")["Notifications"]
    assert kept["Threshold"] == 100
    cfn.delete_stack(StackName="budget-named")
    _wait_gone(cfn, "budget-named")
    with pytest.raises(budgets.exceptions.NotFoundException):  # the stack's delete deleted it
        budgets.describe_budget(AccountId=ACCOUNT, BudgetName="rentaliq-named-monthly")


def test_a_budget_an_interrupted_create_made_is_found_again(lab, monkeypatch):
    """Crash recovery looks for what a cut-off create made: a budget without a name, by its generated one."""
    from rentaliq.local.cfn.base import Context
    from rentaliq.local.cfn.engine import REGISTRY

    monkeypatch.setenv("RENTALIQ_LOCAL_ENDPOINT", lab[0].endpoint_url)
    provider = REGISTRY["AWS::Budgets::Budget"]
    props = {"Budget": {"BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": 3, "Unit": "USD"}}}
    ctx = Context(ACCOUNT, "us-east-1", "rentaliq-locate", "Budget")
    name = provider.create(props, ctx)
    assert name.startswith("rentaliq-locate-Budget-")
    again = Context(ACCOUNT, "us-east-1", "rentaliq-locate", "Budget", suffix=ctx.suffix)
    assert provider.locate(props, again) == [name]
    assert provider.locate(props, Context(ACCOUNT, "us-east-1", "rentaliq-locate", "Budget")) == []  # another create's name
    tags = lab[0].client("budgets").list_tags_for_resource(ResourceARN=f"arn:aws:budgets::{ACCOUNT}:budget/{name}")["ResourceTags"]
    assert {"Key": "aws:cloudformation:logical-id", "Value": "Budget"} in tags
    provider.delete(name, props, again)
    assert provider.locate(props, again) == []


def test_a_new_limit_in_the_spec_updates_the_budget_in_place(lab):
    cloud, target, outdir = lab
    up(target, [build_spec("lab", {"cost": {"monthly_usd_low": 16, "monthly_usd_high": 25}})], outdir)
    budgets = cloud.client("budgets")
    assert budgets.describe_budget(AccountId=ACCOUNT, BudgetName=NAME)["Budget"]["BudgetLimit"] == {"Amount": "25", "Unit": "USD"}
    assert len(_notifications(budgets)) == 2  # updated, not replaced: the notifications are the same two
    events = cloud.client("cloudformation").describe_stack_events(StackName="rentaliq-lab")["StackEvents"]
    budget_events = [e["ResourceStatus"] for e in events if e["ResourceType"] == "AWS::Budgets::Budget"]
    assert budget_events[:2] == ["UPDATE_COMPLETE", "UPDATE_IN_PROGRESS"]  # newest first
    up(target, [load_spec("lab")], outdir)
    assert budgets.describe_budget(AccountId=ACCOUNT, BudgetName=NAME)["Budget"]["BudgetLimit"] == {"Amount": "18", "Unit": "USD"}


@pytest.mark.parametrize("how", ["stop", "kill -9"])
def test_the_budget_survives_a_restart(lab, how):
    cloud = lab[0]
    budgets = cloud.client("budgets")
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName=NAME)["Budget"]
    limit = "19" if how == "stop" else "21"
    changed = {k: budget[k] for k in ("BudgetName", "BudgetType", "TimeUnit", "CostFilters")} | {"BudgetLimit": {"Amount": limit, "Unit": "USD"}}
    budgets.update_budget(AccountId=ACCOUNT, NewBudget=changed)  # acknowledged: must survive
    if how == "stop":
        cloud.stop()
    else:
        pid = cloud.status().pid
        assert pid
        os.kill(pid, signal.SIGKILL)
        _wait_dead(pid)
    cloud.start(timeout=60)
    budgets = cloud.client("budgets")
    after = budgets.describe_budget(AccountId=ACCOUNT, BudgetName=NAME)["Budget"]
    assert after["BudgetLimit"] == {"Amount": limit, "Unit": "USD"}
    assert after["CostFilters"] == {"TagKeyValue": ["user:Environment$lab"]}
    assert _notifications(budgets) == [{**ACTUAL_100, "NotificationState": "OK"}, {**FORECAST_80, "NotificationState": "OK"}]
    subscribers = budgets.describe_subscribers_for_notification(AccountId=ACCOUNT, BudgetName=NAME, Notification=ACTUAL_100)["Subscribers"]
    assert subscribers == [{"SubscriptionType": "SNS", "Address": TOPIC}]
    tags = budgets.list_tags_for_resource(ResourceARN=f"arn:aws:budgets::{ACCOUNT}:budget/{NAME}")["ResourceTags"]
    assert {"Key": "Environment", "Value": "lab"} in tags
    budgets.update_budget(AccountId=ACCOUNT, NewBudget=changed | {"BudgetLimit": {"Amount": "18", "Unit": "USD"}})


def _wait_stack(cfn, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return str(status)
        time.sleep(0.2)
    raise AssertionError(f"{name} still in progress after {timeout} s")


def _wait_gone(cfn, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        except cfn.exceptions.ClientError as error:
            assert "does not exist" in str(error)
            return
        assert status in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE"), status
        if status == "DELETE_COMPLETE":
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} not deleted after {timeout} s")


def _wait_dead(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive")
