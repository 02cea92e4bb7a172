"""Issue 11 section 3: what an off-hours schedule in the template does to the bill, worked out by hand.

The default LAB and QA schedule runs the database 07:00-20:00 New York time, Monday to Friday: 13 h x 5 days = 65 h
of the week's 168. A month is 730 h (prices.toml), so the instance runs 730 x 65 / 168 = 282.44 h and is stopped
for 447.56 h: 61.3 % of its hours, above the issue's 55 %. Prices from rentaliq/cost/prices.toml (us-east-1):
db.t3.micro $0.018/h, db.t3.small $0.036/h, EventBridge Scheduler $1.00 per million invocations.

The templates here are written out by hand in the shape the stack's schedule construct emits (names from naming.py,
targets offhours.STOP_TARGET / START_TARGET, Input {"DbInstanceIdentifier": ...}), so the arithmetic is tested
whatever the synthesized stacks hold today.
"""

from __future__ import annotations

import copy
import json

import pytest

from rentaliq.cost import compute_bill, load_prices
from rentaliq.offhours import START_TARGET, STOP_TARGET
from rentaliq.spec.loader import load_spec

WEEKDAYS = "MON,TUE,WED,THU,FRI"
RUNNING_HOURS = 730 * 65 / 168  # 282.440476...
INVOCATIONS = 5 * 730 / 168  # each schedule fires 5 times a week: 21.73 times in a 730-hour month


def _template(env: str, instance_class: str, *, multi_az: bool = False, state: str = "ENABLED", input_value=None) -> dict:
    instance = f"rentaliq-{env}-db"
    target_input = input_value if input_value is not None else json.dumps({"DbInstanceIdentifier": instance})

    def schedule(action: str, hour: int, arn: str) -> dict:
        return {
            "Type": "AWS::Scheduler::Schedule",
            "Properties": {
                "Name": f"rentaliq-{env}-db-{action}",
                "ScheduleExpression": f"cron(0 {hour} ? * {WEEKDAYS} *)",
                "ScheduleExpressionTimezone": "America/New_York",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "State": state,
                "Target": {"Arn": arn, "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]}, "Input": target_input},
            },
        }

    return {
        "Resources": {
            "Database": {
                "Type": "AWS::RDS::DBInstance",
                "Properties": {
                    "DBInstanceIdentifier": instance,
                    "DBInstanceClass": instance_class,
                    "AllocatedStorage": "20",
                    "StorageType": "gp3",
                    "BackupRetentionPeriod": 7,
                    "MultiAZ": multi_az,
                },
            },
            "SchedulerRole": {"Type": "AWS::IAM::Role", "Properties": {}},
            "DbStopSchedule": schedule("stop", 20, STOP_TARGET),
            "DbStartSchedule": schedule("start", 7, START_TARGET),
        }
    }


def _bill(template: dict, env: str = "lab"):
    return compute_bill(template, load_spec(env), load_prices())


def _line(bill, resource: str, component_start: str):
    (line,) = [line for line in bill.lines if line.resource == resource and line.component.startswith(component_start)]
    return line


def _saving(bill):
    (alternative,) = [alt for alt in bill.alternatives if alt.name == "without the off-hours schedule"]
    return alternative


def test_lab_default_schedule_bills_282_hours_and_saves_61_percent():
    bill = _bill(_template("lab", "db.t3.micro"))
    hours = _line(bill, "Database", "Instance hours")
    assert hours.quantity == pytest.approx(282.44, abs=0.005)
    assert hours.monthly_usd == pytest.approx(282.44 * 0.018, abs=0.001)  # $5.08 instead of 730 x 0.018 = $13.14
    assert "off-hours schedule: runs 282.44 of 730 h" in hours.component
    saving = _saving(bill)
    assert saving.monthly_delta == pytest.approx((730 - 282.44) * 0.018, abs=0.001)  # 447.56 h x $0.018 = $8.06
    assert saving.lines[0].quantity == 730 and saving.lines[0].component == "Instance hours (db.t3.micro, Single-AZ)"
    percent = 447.56 / 730 * 100  # 61.3 %: the same share of hours and of dollars, at one hourly price
    assert saving.details["schedule_saving_percent_of_instance"] == pytest.approx(percent, abs=0.05) and percent >= 55
    assert saving.details["schedule_saving_usd"] == 8.06 and saving.details["instance_usd_without_schedule"] == 13.14
    assert "(rentaliq-lab-db-stop / rentaliq-lab-db-start) saves $8.06 a month, 61.3 % of the instance cost" in saving.description
    as_json = bill.to_dict()["alternatives"]
    assert {"name": "without the off-hours schedule", "schedule_saving_usd": 8.06}.items() <= as_json[0].items()


def test_qa_default_schedule_saves_at_least_55_percent():
    bill = _bill(_template("qa", "db.t3.small"), "qa")
    assert _line(bill, "Database", "Instance hours").monthly_usd == pytest.approx(282.44 * 0.036, abs=0.001)  # $10.17
    saving = _saving(bill)
    assert saving.monthly_delta == pytest.approx(447.56 * 0.036, abs=0.001)  # $16.11 of $26.28
    assert saving.details["schedule_saving_percent_of_instance"] >= 55


def test_each_schedule_bills_its_invocations():
    bill = _bill(_template("lab", "db.t3.micro"))
    for lid in ("DbStopSchedule", "DbStartSchedule"):
        line = _line(bill, lid, "Invocations")
        assert line.quantity == pytest.approx(INVOCATIONS / 1_000_000)  # 21.73 invocations, in millions
        assert line.price.usd == 1.00 and line.price.unit == "1M invocations"
        assert "21.7 a month" in line.component
    # The whole bill: the instance's scheduled hours, its storage, and two schedules' invocations.
    expected = RUNNING_HOURS * 0.018 + 20 * 0.115 + 0 * 0.095 + 2 * INVOCATIONS / 1_000_000 * 1.00
    assert bill.total == pytest.approx(expected, abs=1e-9)


def test_multi_az_doubles_the_scheduled_hours_and_the_saving():
    bill = _bill(_template("qa", "db.t3.small", multi_az=True), "qa")
    assert _line(bill, "Database", "Instance hours").quantity == pytest.approx(2 * RUNNING_HOURS)
    assert _saving(bill).monthly_delta == pytest.approx(2 * (730 - RUNNING_HOURS) * 0.036)


def test_a_disabled_or_half_schedule_bills_the_whole_month():
    disabled = _bill(_template("lab", "db.t3.micro", state="DISABLED"))
    assert _line(disabled, "Database", "Instance hours").quantity == 730
    assert _line(disabled, "DbStopSchedule", "Invocations").quantity == 0
    assert not [alt for alt in disabled.alternatives if alt.name == "without the off-hours schedule"]
    stop_only = _template("lab", "db.t3.micro")
    del stop_only["Resources"]["DbStartSchedule"]
    assert _line(_bill(stop_only), "Database", "Instance hours").quantity == 730


def test_a_schedule_of_another_instance_does_not_change_this_one():
    other = _bill(_template("lab", "db.t3.micro", input_value=json.dumps({"DbInstanceIdentifier": "rentaliq-qa-db"})))
    assert _line(other, "Database", "Instance hours").quantity == 730


def test_input_built_with_a_ref_to_the_instance_is_followed():
    template = _template("lab", "db.t3.micro", input_value={"Fn::Join": ["", ['{"DbInstanceIdentifier":"', {"Ref": "Database"}, '"}']]})
    assert _line(_bill(copy.deepcopy(template)), "Database", "Instance hours").quantity == pytest.approx(RUNNING_HOURS)


def test_a_reservation_bills_every_hour_so_on_a_scheduled_database_it_costs_more():
    # PROD (critical: the RI alternative applies) with a schedule: 2 x 282.44 h on demand at $0.072 = $40.67, while
    # the reservation bills 2 x 730 h at $0.050 = $73.00: the alternative is +$32.33, not a saving.
    bill = _bill(_template("prod", "db.t3.medium", multi_az=True), "prod")
    (reserved,) = [alt for alt in bill.alternatives if alt.name == "1-year reserved instance"]
    assert reserved.lines[0].quantity == 2 * 730
    assert reserved.monthly_delta == pytest.approx(2 * 730 * 0.050 - 2 * RUNNING_HOURS * 0.072)
    # Bought anyway (cost.reserved_instance): the bill has every hour reserved, and on demand would be $32.33 less.
    spec = load_spec("prod")
    spec = spec.model_copy(update={"cost": spec.cost.model_copy(update={"reserved_instance": True})})
    bought = compute_bill(_template("prod", "db.t3.medium", multi_az=True), spec, load_prices())
    assert _line(bought, "Database", "Reserved instance hours").quantity == 2 * 730
    (on_demand,) = bought.alternatives
    assert on_demand.name == "on demand" and on_demand.monthly_delta == pytest.approx(2 * RUNNING_HOURS * 0.072 - 2 * 730 * 0.050)
