"""What the local Scheduler refuses, named as Scheduler names it, and which targets it can invoke."""

from __future__ import annotations

import pytest

from rentaliq.local.scheduler.api_fixes import ValidationException, validate
from rentaliq.local.scheduler.targets import InvocationFailed, _action, _instance_id

OK_TARGET = {"Arn": "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance", "RoleArn": "arn:aws:iam::123456789012:role/r"}


def test_a_valid_definition_passes():
    validate("cron(0 20 ? * MON-FRI *)", "America/New_York", "ENABLED", {"Mode": "OFF"}, OK_TARGET)
    validate("rate(5 minutes)", None, None, {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": "15"}, OK_TARGET)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("cron(0 25 ? * MON *)", None, None, {"Mode": "OFF"}, OK_TARGET), "cron(0 25 ? * MON *)"),
        (("cron(0 1 * * ? *)", "Mars/Olympus", None, {"Mode": "OFF"}, OK_TARGET), "Mars/Olympus"),
        (("cron(0 1 * * ? *)", None, "PAUSED", {"Mode": "OFF"}, OK_TARGET), "PAUSED"),
        (("cron(0 1 * * ? *)", None, None, {"Mode": "SOMETIMES"}, OK_TARGET), "SOMETIMES"),
        (("cron(0 1 * * ? *)", None, None, {"Mode": "FLEXIBLE"}, OK_TARGET), "MaximumWindowInMinutes"),
        (("cron(0 1 * * ? *)", None, None, {"Mode": "OFF"}, {"Arn": OK_TARGET["Arn"]}), "RoleArn"),
    ],
)
def test_bad_definitions_are_validation_exceptions_naming_the_value(args, named):
    with pytest.raises(ValidationException) as refused:
        validate(*args)
    assert named in refused.value.message


def test_the_universal_rds_targets_and_nothing_else():
    assert _action("arn:aws:scheduler:::aws-sdk:rds:stopDBInstance") == ("rds", "stopDBInstance")
    assert _action("arn:aws:scheduler:::aws-sdk:rds:startDBInstance") == ("rds", "startDBInstance")
    for other in (
        "arn:aws:scheduler:::aws-sdk:rds:deleteDBInstance",
        "arn:aws:lambda:us-east-1:123456789012:function:f",
        "arn:aws:scheduler:::aws-sdk:ec2:stopInstances",
    ):
        with pytest.raises(InvocationFailed) as refused:
            _action(other)
        assert refused.value.code == "ValidationException" and other in refused.value.message


def test_the_input_must_name_the_instance():
    assert _instance_id({"Input": '{"DbInstanceIdentifier": "rentaliq-lab-db"}'}) == "rentaliq-lab-db"
    for bad in ({}, {"Input": "not json"}, {"Input": '{"DBInstanceIdentifier": "x"}'}, {"Input": "[]"}):
        with pytest.raises(InvocationFailed):
            _instance_id(bad)
