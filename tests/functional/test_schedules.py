"""Off-hours schedules on real servers: LAB deployed with its two EventBridge Scheduler schedules, fired through the
local cloud's control call, stops and starts the real PostgreSQL server; RDS's 7-day rule starts a stopped
instance; a kill -9 of the local cloud loses no schedule and no invocation record, and never fires twice.

One private cloud for the module: it stops LAB's database and kills the cloud, which the session's shared
environments must not see."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from rentaliq.deploy.lifecycle import up
from rentaliq.deploy.target import Target
from rentaliq.environments import build_spec
from rentaliq.local import scheduler_calls as control
from rentaliq.local.cloud import LocalCloud
from tests.clouds import private_cloud
from tests.functional.test_local_cloud import _wait_dead

pytestmark = pytest.mark.slow

DB = "rentaliq-lab-db"
STOP, START = "rentaliq-lab-db-stop", "rentaliq-lab-db-start"
ROLE_ARN = "arn:aws:iam::123456789012:role/rentaliq-lab-scheduler-role"
STOPPED_EVENT = "DB instance stopped."
STARTED_EVENT = "DB instance started."
SEVEN_DAYS_EVENT = "DB instance is being started due to it exceeding the maximum allowed time being stopped."
PERIOD_ENV = "RENTALIQ_LOCAL_SCHEDULER_SECONDS"


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[tuple[LocalCloud, Target]]:
    previous = os.environ.get(PERIOD_ENV)
    os.environ[PERIOD_ENV] = "1"  # this cloud's executor passes every second (its restarts inherit it too)
    try:
        with private_cloud("schedules") as cloud:
            target = Target.local(cloud.endpoint_url)
            up(target, [build_spec("lab", {})], tmp_path_factory.mktemp("cdk.out"))
            yield cloud, target
    finally:
        if previous is None:
            os.environ.pop(PERIOD_ENV, None)
        else:
            os.environ[PERIOD_ENV] = previous


def creds(target: Target) -> dict:
    return json.loads(target.client("secretsmanager").get_secret_value(SecretId="rentaliq/lab/db/credentials")["SecretString"])


def connect(target: Target) -> psycopg.Connection:
    c = creds(target)
    return psycopg.connect(
        host=c["host"], port=c["port"], user=c["username"], password=c["password"], dbname=c["dbname"], sslmode="require", autocommit=True, connect_timeout=5
    )


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def status(target: Target) -> str:
    return str(target.client("rds").describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]["DBInstanceStatus"])


def messages(target: Target) -> list[str]:
    events = target.client("rds").describe_events(SourceIdentifier=DB, SourceType="db-instance", Duration=60)["Events"]
    return [e["Message"] for e in events]


def ensure_running(target: Target) -> None:
    if status(target) == "stopped":
        target.client("rds").start_db_instance(DBInstanceIdentifier=DB)


def test_deployed_schedules_read_back(lab):
    _, target = lab
    scheduler = target.client("scheduler")
    names = sorted(s["Name"] for s in scheduler.list_schedules()["Schedules"])
    assert names == [START, STOP]
    for name, expression, action in (
        (STOP, "cron(0 20 ? * MON,TUE,WED,THU,FRI *)", "stopDBInstance"),
        (START, "cron(0 7 ? * MON,TUE,WED,THU,FRI *)", "startDBInstance"),
    ):
        schedule = scheduler.get_schedule(Name=name)
        assert schedule["ScheduleExpression"] == expression
        assert schedule["ScheduleExpressionTimezone"] == "America/New_York"
        assert schedule["State"] == "ENABLED" and schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert schedule["Target"]["Arn"] == f"arn:aws:scheduler:::aws-sdk:rds:{action}"
        assert json.loads(schedule["Target"]["Input"]) == {"DbInstanceIdentifier": DB}
        assert schedule["Target"]["RoleArn"] == ROLE_ARN


def test_fired_stop_stops_the_server_and_start_brings_the_data_back(lab):
    cloud, target = lab
    ensure_running(target)
    port = int(creds(target)["port"])
    with connect(target) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS before_stop (note text)")
        conn.execute("INSERT INTO before_stop VALUES ('written before the off-hours stop')")

    stopped = control.fire_schedule(cloud.endpoint_url, STOP)
    assert stopped["Status"] == "SUCCEEDED", stopped
    assert stopped["DBInstanceIdentifier"] == DB
    assert status(target) == "stopped"
    assert not listening(port)  # the PostgreSQL server is gone, not only the API's status
    with pytest.raises(psycopg.OperationalError):
        connect(target).close()
    assert STOPPED_EVENT in messages(target)

    again = control.fire_schedule(cloud.endpoint_url, STOP)  # Scheduler records a failed invocation; nothing crashes
    assert again["Status"] == "FAILED" and again["ErrorCode"] == "InvalidDBInstanceState", again
    assert status(target) == "stopped"

    started = control.fire_schedule(cloud.endpoint_url, START)
    assert started["Status"] == "SUCCEEDED", started
    assert status(target) == "available" and listening(port)
    with connect(target) as conn:
        assert conn.execute("SELECT note FROM before_stop").fetchall() == [("written before the off-hours stop",)]
    assert STARTED_EVENT in messages(target)
    recorded = control.invocations(cloud.endpoint_url, STOP)["Invocations"]
    assert [i["Status"] for i in recorded[-2:]] == ["SUCCEEDED", "FAILED"]


def test_seven_day_rule_starts_a_stopped_instance(lab):
    cloud, target = lab
    ensure_running(target)
    port = int(creds(target)["port"])
    with pytest.raises(control.ControlCallError) as refused:  # only a stopped instance has a 7-day clock
        control.expire_stop(cloud.endpoint_url, DB)
    assert refused.value.code == "InvalidDBInstanceState"
    target.client("rds").stop_db_instance(DBInstanceIdentifier=DB)  # a user's stop, not a schedule's
    assert not listening(port)
    assert control.run_pass(cloud.endpoint_url) == []  # stopped for seconds: nothing to start yet
    assert status(target) == "stopped"

    results = control.expire_stop(cloud.endpoint_url, DB)
    assert [r["Status"] for r in results] == ["STARTED"]
    assert status(target) == "available" and listening(port)
    with connect(target) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    found = messages(target)
    assert SEVEN_DAYS_EVENT in found and found.index(SEVEN_DAYS_EVENT) < len(found) - 1 - found[::-1].index(STARTED_EVENT)


def test_the_executor_fires_a_schedule_at_its_time_by_itself(lab):
    """No control call: the cloud's own clock thread invokes the target when the time comes."""
    cloud, target = lab
    ensure_running(target)
    scheduler = target.client("scheduler")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    scheduler.create_schedule(
        Name="stop-at-its-time",
        ScheduleExpression=f"at({due.astimezone(ZoneInfo('America/New_York')).strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="America/New_York",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance", "RoleArn": ROLE_ARN, "Input": json.dumps({"DbInstanceIdentifier": DB})},
    )
    try:
        assert control.invocations(cloud.endpoint_url, "stop-at-its-time")["Invocations"] == []
        deadline = time.monotonic() + 20
        while not (fired := control.invocations(cloud.endpoint_url, "stop-at-its-time")["Invocations"]):
            assert time.monotonic() < deadline, "the schedule did not fire by itself"
            time.sleep(0.2)
        assert [(i["Status"], i["Trigger"], i["ScheduledTime"]) for i in fired] == [("SUCCEEDED", "schedule", due.isoformat())]
        assert datetime.fromisoformat(fired[0]["InvokedAt"]) >= due  # never early
        assert status(target) == "stopped"
    finally:
        scheduler.delete_schedule(Name="stop-at-its-time")
        ensure_running(target)


def test_the_role_allows_only_its_instance(lab):
    """Scheduler acts with the schedule's role: the LAB role cannot stop another instance (IAM evaluated)."""
    cloud, target = lab
    scheduler = target.client("scheduler")
    scheduler.create_schedule(
        Name="stop-someone-else",
        ScheduleExpression="cron(0 3 ? * SUN *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance", "RoleArn": ROLE_ARN, "Input": json.dumps({"DbInstanceIdentifier": "rentaliq-qa-db"})},
    )
    try:
        outcome = control.fire_schedule(cloud.endpoint_url, "stop-someone-else")
        assert outcome["Status"] == "FAILED" and outcome["ErrorCode"] == "AccessDeniedException", outcome
        assert "rds:StopDBInstance" in outcome["ErrorMessage"]
    finally:
        scheduler.delete_schedule(Name="stop-someone-else")


def _kill9(cloud: LocalCloud) -> None:
    pid = cloud.status().pid
    assert pid
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)


def _kill9_and_restart(cloud: LocalCloud) -> None:
    _kill9(cloud)
    cloud.start(timeout=90)


def test_kill9_loses_no_schedule_no_record_and_never_fires_twice(lab):
    cloud, target = lab
    ensure_running(target)
    scheduler = target.client("scheduler")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    scheduler.create_schedule(
        Name="one-time-stop",
        ScheduleExpression=f"at({due.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance", "RoleArn": ROLE_ARN, "Input": json.dumps({"DbInstanceIdentifier": DB})},
    )
    try:
        while datetime.now(UTC) <= due:  # the executor computes due fires from the clock; its period only bounds latency
            time.sleep(0.2)
        fired = [i for i in control.run_pass(cloud.endpoint_url) if i.get("Name") == "one-time-stop"]
        if not fired:  # the executor's own pass got there first
            fired = control.invocations(cloud.endpoint_url, "one-time-stop")["Invocations"]
        assert [(i["Status"], i["Trigger"], i["ScheduledTime"]) for i in fired] == [("SUCCEEDED", "schedule", due.isoformat())]
        assert status(target) == "stopped"
        stopped_by = datetime.now(UTC)
        before = control.invocations(cloud.endpoint_url, "one-time-stop")

        _kill9_and_restart(cloud)

        assert sorted(s["Name"] for s in scheduler.list_schedules()["Schedules"]) == sorted([START, STOP, "one-time-stop"])
        after = control.invocations(cloud.endpoint_url, "one-time-stop")
        assert after["Invocations"] == before["Invocations"]  # the record, exactly
        assert datetime.fromisoformat(after["EvaluatedAt"]) >= due  # the fire is decided: it cannot fire again
        assert [i for i in control.run_pass(cloud.endpoint_url) if i.get("Name") == "one-time-stop"] == []  # not fired again
        assert status(target) == "stopped"  # stays stopped across the restart, as RDS keeps it
        # the moment of the stop survived too (the 7-day clock does not restart with the cloud)
        (started,) = control.expire_stop(cloud.endpoint_url, DB)
        assert started["Status"] == "STARTED" and due <= datetime.fromisoformat(started["StoppedAt"]) <= stopped_by
        assert status(target) == "available"
    finally:
        scheduler.delete_schedule(Name="one-time-stop")
        ensure_running(target)


def test_a_fire_missed_while_the_cloud_was_down_fires_once_after_restart(lab):
    cloud, target = lab
    ensure_running(target)
    scheduler = target.client("scheduler")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    scheduler.create_schedule(
        Name="missed-stop",
        ScheduleExpression=f"at({due.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance",
            "RoleArn": ROLE_ARN,
            "Input": json.dumps({"DbInstanceIdentifier": DB}),
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3},
        },
    )
    try:
        _kill9(cloud)  # down before the fire
        while datetime.now(UTC) <= due + timedelta(seconds=1):
            time.sleep(0.2)
        cloud.start(timeout=90)
        control.run_pass(cloud.endpoint_url)
        control.run_pass(cloud.endpoint_url)
        fired = control.invocations(cloud.endpoint_url, "missed-stop")["Invocations"]
        assert [(i["Status"], i["ScheduledTime"]) for i in fired] == [("SUCCEEDED", due.isoformat())]  # late, once
        assert status(target) == "stopped"
    finally:
        scheduler.delete_schedule(Name="missed-stop")
        ensure_running(target)


def test_cloudformation_never_adopts_a_schedule_and_rolls_back_only_its_own(lab):
    _, target = lab
    scheduler, cfn = target.client("scheduler"), target.client("cloudformation")
    definition = {
        "ScheduleExpression": "cron(0 5 ? * SAT *)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": "arn:aws:scheduler:::aws-sdk:rds:startDBInstance", "RoleArn": ROLE_ARN, "Input": json.dumps({"DbInstanceIdentifier": DB})},
    }
    scheduler.create_schedule(Name="made-by-hand", **definition)
    template = {
        "Resources": {
            "Taken": {"Type": "AWS::Scheduler::Schedule", "Properties": {"Name": "made-by-hand", **definition, "ScheduleExpression": "cron(0 6 ? * SAT *)"}}
        }
    }
    try:
        cfn.create_stack(StackName="schedule-collision", TemplateBody=json.dumps(template))
        deadline = time.monotonic() + 60
        while (stack_status := cfn.describe_stacks(StackName="schedule-collision")["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert stack_status == "ROLLBACK_COMPLETE"
        events = cfn.describe_stack_events(StackName="schedule-collision")["StackEvents"]
        failed = [e for e in events if e["LogicalResourceId"] == "Taken" and e["ResourceStatus"] == "CREATE_FAILED"]
        assert failed and "already exists" in failed[0]["ResourceStatusReason"]
        assert scheduler.get_schedule(Name="made-by-hand")["ScheduleExpression"] == "cron(0 5 ? * SAT *)"  # untouched, still there
    finally:
        cfn.delete_stack(StackName="schedule-collision")
        scheduler.delete_schedule(Name="made-by-hand")


def test_cloudformation_creates_updates_and_deletes_a_schedule(lab):
    _, target = lab
    scheduler, cfn = target.client("scheduler"), target.client("cloudformation")

    def template(expression: str) -> str:
        target_doc = {"Arn": "arn:aws:scheduler:::aws-sdk:rds:startDBInstance", "RoleArn": ROLE_ARN, "Input": json.dumps({"DbInstanceIdentifier": DB})}
        props = {
            "Name": "cfn-made",
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": "Europe/Berlin",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target_doc,
        }
        return json.dumps(
            {"Resources": {"Made": {"Type": "AWS::Scheduler::Schedule", "Properties": props}}, "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Made", "Arn"]}}}}
        )

    cfn.create_stack(StackName="schedule-lifecycle", TemplateBody=template("cron(0 6 ? * MON *)"))
    cfn.get_waiter("stack_create_complete").wait(StackName="schedule-lifecycle", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    made = scheduler.get_schedule(Name="cfn-made")
    assert made["ScheduleExpression"] == "cron(0 6 ? * MON *)" and made["ScheduleExpressionTimezone"] == "Europe/Berlin"
    outputs = cfn.describe_stacks(StackName="schedule-lifecycle")["Stacks"][0]["Outputs"]
    assert outputs == [{"OutputKey": "Arn", "OutputValue": made["Arn"]}]
    cfn.update_stack(StackName="schedule-lifecycle", TemplateBody=template("cron(30 6 ? * MON *)"))
    cfn.get_waiter("stack_update_complete").wait(StackName="schedule-lifecycle", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    updated = scheduler.get_schedule(Name="cfn-made")
    assert updated["ScheduleExpression"] == "cron(30 6 ? * MON *)" and updated["Arn"] == made["Arn"]
    cfn.delete_stack(StackName="schedule-lifecycle")
    cfn.get_waiter("stack_delete_complete").wait(StackName="schedule-lifecycle", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name="cfn-made")


def test_scheduler_api_answers_as_aws_does(lab):
    _, target = lab
    scheduler = target.client("scheduler")
    good = {"FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance", "RoleArn": ROLE_ARN}}
    with pytest.raises(scheduler.exceptions.ConflictException) as conflict:
        scheduler.create_schedule(Name=STOP, ScheduleExpression="cron(0 1 * * ? *)", **good)
    assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.create_schedule(Name="x", GroupName="no-such-group", ScheduleExpression="cron(0 1 * * ? *)", **good)
    with pytest.raises(scheduler.exceptions.ValidationException) as bad:
        scheduler.create_schedule(Name="x", ScheduleExpression="cron(61 1 * * ? *)", **good)
    assert "cron(61 1 * * ? *)" in str(bad.value)
    with pytest.raises(scheduler.exceptions.ValidationException):
        scheduler.create_schedule(Name="x", ScheduleExpression="cron(0 1 * * ? *)", ScheduleExpressionTimezone="Mars/Olympus", **good)
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name="no-such-schedule")
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.update_schedule(Name="no-such-schedule", ScheduleExpression="cron(0 1 * * ? *)", **good)
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.delete_schedule(Name="no-such-schedule")
    assert "x" not in [s["Name"] for s in scheduler.list_schedules()["Schedules"]]  # nothing half-created
    assert [s["Name"] for s in scheduler.list_schedules(NamePrefix="rentaliq-lab-db-st", State="ENABLED")["Schedules"]] in ([START, STOP], [STOP, START])
    with pytest.raises(control.ControlCallError) as missing:
        control.fire_schedule(target.endpoint_url or "", "no-such-schedule")
    assert missing.value.code == "ResourceNotFoundException"


def test_fire_schedule_cli(lab, tmp_path: Path):
    from tests.cli_runs import ok, one_line_error, rentaliq
    from tests.clouds import cli_env

    cloud, target = lab
    ensure_running(target)
    env = cli_env(cloud)
    try:
        result = ok(rentaliq(env, "local", "fire-schedule", STOP, "--json"))
        assert json.loads(result.stdout)["Status"] == "SUCCEEDED"
        assert status(target) == "stopped"
        assert "no-such" in one_line_error(rentaliq(env, "local", "fire-schedule", "no-such"))
    finally:
        ensure_running(target)


def test_verify_checks_the_schedules_against_the_spec(lab):
    from rentaliq.ops.verify import FAIL, PASS, verify

    _, target = lab
    spec = build_spec("lab", {})
    checks = [c for c in verify(target, spec) if c.area == "Scheduler"]
    assert checks and all(c.status == PASS for c in checks), [c for c in checks if c.status != PASS]
    by_name = {c.name: c for c in checks}
    assert by_name[f"{STOP} expression"].actual == "cron(0 20 ? * MON,TUE,WED,THU,FRI *)"
    assert by_name["rentaliq-lab-scheduler-role resources"].actual == [f"arn:aws:rds:us-east-1:123456789012:db:{DB}"]

    scheduler = target.client("scheduler")
    live = scheduler.get_schedule(Name=STOP)
    changed = {k: live[k] for k in ("ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target")}
    scheduler.update_schedule(Name=STOP, ScheduleExpression="cron(0 23 ? * MON-FRI *)", **changed)  # changed by hand
    try:
        drifted = {c.name: c for c in verify(target, spec) if c.area == "Scheduler"}
        assert drifted[f"{STOP} expression"].status == FAIL and drifted[f"{STOP} expression"].actual == "cron(0 23 ? * MON-FRI *)"
    finally:
        scheduler.update_schedule(Name=STOP, ScheduleExpression=live["ScheduleExpression"], **changed)

    disabled = {c.name: c for c in verify(target, build_spec("lab", {"schedule": {"enabled": False}})) if c.area == "Scheduler"}
    assert disabled["off-hours schedules"].status == FAIL and disabled["off-hours schedules"].expected == []
    assert disabled["rentaliq-lab-scheduler-role exists"].status == FAIL
