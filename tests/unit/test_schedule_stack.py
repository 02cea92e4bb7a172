"""The off-hours schedules on the synthesized templates: LAB and QA have them, PROD has none, and the role may
stop and start exactly one instance."""

from __future__ import annotations

import json

import pytest

from tests.unit.templates import of_type, one, ref, tags

INSTANCE = "DatabaseInstanceAA8A5FDE"  # pinned in test_templates.py
INSTANCE_ARN = {"Fn::Join": ["", ["arn:aws:rds:us-east-1:", {"Ref": "AWS::AccountId"}, ":db:", ref(INSTANCE)]]}
INPUT = {"Fn::Join": ["", ['{"DbInstanceIdentifier":"', ref(INSTANCE), '"}']]}
# The spec's default schedule, written out: 20:00 and 07:00 New York time, Monday to Friday.
WEEKDAYS = "MON,TUE,WED,THU,FRI"
EXPECTED = {
    "stop": ("cron(0 20 ? * MON,TUE,WED,THU,FRI *)", "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance"),
    "start": ("cron(0 7 ? * MON,TUE,WED,THU,FRI *)", "arn:aws:scheduler:::aws-sdk:rds:startDBInstance"),
}


@pytest.mark.parametrize("env", ["lab", "qa"])
@pytest.mark.parametrize("action", ["stop", "start"])
def test_lab_and_qa_schedule_their_instance(synthesized, env, action):
    template = synthesized[env]
    expression, target_arn = EXPECTED[action]
    _, schedule = one(template, "AWS::Scheduler::Schedule", Name=f"rentaliq-{env}-db-{action}")
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == expression
    assert props["ScheduleExpressionTimezone"] == "America/New_York"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["State"] == "ENABLED"
    assert props.get("GroupName", "default") == "default"
    target = props["Target"]
    assert target["Arn"] == target_arn
    assert target["Input"] == INPUT  # the instance's identifier, by reference: the schedule follows the instance
    role_id, _ = one(template, "AWS::IAM::Role", RoleName=f"rentaliq-{env}-scheduler-role")
    assert target["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    retry = target["RetryPolicy"]
    assert 0 < retry["MaximumEventAgeInSeconds"] <= 86400 and 0 <= retry["MaximumRetryAttempts"] <= 185


@pytest.mark.parametrize("env", ["lab", "qa"])
def test_scheduler_role_is_limited_to_one_instance(synthesized, env):
    template = synthesized[env]
    role_id, role = one(template, "AWS::IAM::Role", RoleName=f"rentaliq-{env}-scheduler-role")
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    assert "Policies" not in role["Properties"] and "ManagedPolicyArns" not in role["Properties"]
    # Every policy attached to the role, whatever its kind: one statement, two actions, one ARN.
    attached = [
        r
        for r in template["Resources"].values()
        if r["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and ref(role_id) in r["Properties"].get("Roles", [])
    ]
    assert len(attached) == 1
    statements = attached[0]["Properties"]["PolicyDocument"]["Statement"]
    assert len(statements) == 1
    assert statements[0]["Effect"] == "Allow" and "Condition" not in statements[0]
    assert sorted(statements[0]["Action"]) == ["rds:StartDBInstance", "rds:StopDBInstance"]
    assert statements[0]["Resource"] == INSTANCE_ARN
    assert tags(role) == {
        "Project": "RentalIQ",
        "Environment": env,
        "ManagedBy": "CDK",
        "Owner": "Keith Perez",
        "Application": "rentaliq",
    }


@pytest.mark.parametrize("env", ["lab", "qa"])
def test_schedules_wait_for_the_role_policy(synthesized, env):
    template = synthesized[env]
    policy_id, _ = one(template, "AWS::IAM::ManagedPolicy", ManagedPolicyName=f"rentaliq-{env}-scheduler-policy")
    for schedule in of_type(template, "AWS::Scheduler::Schedule").values():
        assert policy_id in schedule.get("DependsOn", [])


def test_prod_has_no_schedule(synthesized):
    template = synthesized["prod"]
    assert of_type(template, "AWS::Scheduler::Schedule") == {}
    names = [r["Properties"].get("RoleName") for r in of_type(template, "AWS::IAM::Role").values()]
    assert "rentaliq-prod-scheduler-role" not in names
    assert "scheduler.amazonaws.com" not in json.dumps(template)


def test_a_custom_schedule_reaches_the_template(tmp_path):
    """The spec's times, days and zone, not the defaults, end up in the expressions."""
    from rentaliq.environments import load_specs
    from rentaliq.infra.app import synthesize

    (lab,) = load_specs(["lab"])
    custom = lab.model_copy(
        update={"schedule": lab.schedule.model_copy(update={"stop_at": "18:30", "start_at": "06:15", "days": ("MON", "WED"), "timezone": "Europe/Berlin"})}
    )
    (result,) = synthesize([custom], tmp_path, nag=False)
    template = json.loads(result.template_path.read_text())
    _, stop = one(template, "AWS::Scheduler::Schedule", Name="rentaliq-lab-db-stop")
    _, start = one(template, "AWS::Scheduler::Schedule", Name="rentaliq-lab-db-start")
    assert stop["Properties"]["ScheduleExpression"] == "cron(30 18 ? * MON,WED *)"
    assert start["Properties"]["ScheduleExpression"] == "cron(15 6 ? * MON,WED *)"
    assert stop["Properties"]["ScheduleExpressionTimezone"] == start["Properties"]["ScheduleExpressionTimezone"] == "Europe/Berlin"
