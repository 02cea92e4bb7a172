"""Issue 11 section 3, what users see of the off-hours schedule, on real servers (moto + PostgreSQL 15):
the runtime SDK's DatabaseStopped, `rentaliq wake` and `rentaliq status`.

LAB is deployed once through `up`. Its two schedules are the stack's when the stack makes them; until then the
fixture creates them through the Scheduler API with exactly the names, expressions and targets the stack uses.
The instance is stopped through the RDS API (as the stop schedule's target does). Expected times are worked out
from the calendar in the test (New York: UTC-5 in winter, UTC-4 in summer), not with the code under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rentaliq.environments import load_spec
from rentaliq.local.postgres.ca import local_cloud_ca
from rentaliq.offhours import START_TARGET, STOP_TARGET

pytestmark = pytest.mark.slow

NEW_YORK = ZoneInfo("America/New_York")
INSTANCE = "rentaliq-lab-db"
ROLE = "arn:aws:iam::123456789012:role/rentaliq-lab-scheduler-role"


@pytest.fixture(scope="module")
def lab(target, outdir):
    from rentaliq.deploy.lifecycle import up

    up(target, [load_spec("lab")], outdir)
    scheduler = target.client("scheduler")
    for name, expression, arn in (
        ("rentaliq-lab-db-stop", "cron(0 20 ? * MON,TUE,WED,THU,FRI *)", STOP_TARGET),
        ("rentaliq-lab-db-start", "cron(0 7 ? * MON,TUE,WED,THU,FRI *)", START_TARGET),
    ):
        try:
            scheduler.get_schedule(Name=name)
        except scheduler.exceptions.ResourceNotFoundException:
            scheduler.create_schedule(
                Name=name,
                ScheduleExpression=expression,
                ScheduleExpressionTimezone="America/New_York",
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={"Arn": arn, "RoleArn": ROLE, "Input": json.dumps({"DbInstanceIdentifier": INSTANCE})},
            )
    return target


@pytest.fixture
def sdk_env(lab, cloud, monkeypatch):
    """The standard AWS configuration a service has, pointing at the local cloud."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ENDPOINT_URL": cloud.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "RENTALIQ_ENV": "lab",
        "PGSSLROOTCERT": str(local_cloud_ca(cloud.state_dir).path),  # the CA `rentaliq local env` exports: the SDK verifies
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def stopped(lab):
    rds = lab.client("rds")
    rds.stop_db_instance(DBInstanceIdentifier=INSTANCE)
    yield rds
    if rds.describe_db_instances(DBInstanceIdentifier=INSTANCE)["DBInstances"][0]["DBInstanceStatus"] == "stopped":
        rds.start_db_instance(DBInstanceIdentifier=INSTANCE)


def _password(target) -> str:
    return json.loads(target.client("secretsmanager").get_secret_value(SecretId="rentaliq/lab/db/credentials")["SecretString"])["password"]


def _next_weekday_start(now: datetime) -> datetime:
    """07:00 New York time on the next weekday whose 07:00 is still ahead, by walking the calendar."""
    day = now.astimezone(NEW_YORK).date()
    while True:
        candidate = datetime(day.year, day.month, day.day, 7, tzinfo=NEW_YORK)
        if day.weekday() < 5 and candidate > now:
            return candidate
        day += timedelta(days=1)


def _cli(cloud_env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, env=cloud_env, timeout=300)


def test_sdk_raises_database_stopped_within_a_second_naming_the_next_start(sdk_env, lab, stopped):
    from rentaliq.runtime import Database, DatabaseStopped, RuntimeConfig, Secrets

    now = datetime.now(UTC)
    start = _next_weekday_start(now)
    with Database(Secrets(RuntimeConfig(env="lab"))) as db:
        began = time.monotonic()
        with pytest.raises(DatabaseStopped) as caught:
            db.query("SELECT 1")
        elapsed = time.monotonic() - began
        began = time.monotonic()
        with pytest.raises(DatabaseStopped):
            db.connect().close()
        assert time.monotonic() - began < 1.0
    assert elapsed < 1.5, f"DatabaseStopped took {elapsed:.2f}s"
    message = str(caught.value)
    assert caught.value.instance == INSTANCE and caught.value.status == "stopped"
    assert f"database {INSTANCE} is stopped; the schedule rentaliq-lab-db-start starts it" in message
    assert f"{start:%H:%M} America/New_York ({start.astimezone(UTC):%H:%M} UTC" in message
    assert f"{start:%Y-%m-%d}" in message or "today" in message or "tomorrow" in message
    assert message.endswith("to start it now: rentaliq wake lab")
    assert _password(lab) not in message and _password(lab) not in repr(caught.value)


def test_a_pool_whose_database_stops_fails_fast_instead_of_waiting_for_the_pool_timeout(sdk_env, lab):
    from rentaliq.runtime import Database, DatabaseStopped, RuntimeConfig, Secrets

    rds = lab.client("rds")
    with Database(Secrets(RuntimeConfig(env="lab", pool_timeout_s=20))) as db:
        assert db.query("SELECT 41 + 1") == [(42,)]
        rds.stop_db_instance(DBInstanceIdentifier=INSTANCE)
        try:
            began = time.monotonic()
            with pytest.raises(DatabaseStopped, match="rentaliq-lab-db is stopped"):
                db.query("SELECT 1")
            assert time.monotonic() - began < 2.0
        finally:
            rds.start_db_instance(DBInstanceIdentifier=INSTANCE)
        time.sleep(1.1)  # a "stopped" answer is trusted for a second (one DescribeDBInstances a second at most)
        began = time.monotonic()
        assert db.query("SELECT 1") == [(1,)]  # started again: the same pool works without a restart
        print(f"first query after the start: {time.monotonic() - began:.2f}s")


def test_wake_starts_it_and_a_query_works(sdk_env, lab, stopped, cloud_env):
    from rentaliq.runtime import Database, RuntimeConfig, Secrets

    result = _cli(cloud_env, "wake", "lab")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{INSTANCE} started, now available; the schedule rentaliq-lab-db-stop stops it" in " ".join(result.stdout.split())
    assert stopped.describe_db_instances(DBInstanceIdentifier=INSTANCE)["DBInstances"][0]["DBInstanceStatus"] == "available"
    with Database(Secrets(RuntimeConfig(env="lab"))) as db:
        assert db.query("SELECT current_setting('server_version_num')::int / 10000") == [(15,)]
    again = _cli(cloud_env, "wake", "lab")
    assert again.returncode == 0 and f"{INSTANCE} is already available" in again.stdout


def test_wake_refuses_prod_without_confirmation_and_bad_durations(cloud_env):
    prod = _cli(cloud_env, "wake", "prod")
    assert prod.returncode == 1 and "refusing to start rentaliq-prod-db in PROD: pass --confirm-prod" in prod.stderr
    assert "Traceback" not in prod.stderr
    bad = _cli(cloud_env, "wake", "lab", "--for", "2 weeks")
    assert bad.returncode == 1 and "--for '2 weeks' is invalid; allowed: a duration like 2h, 90m, 1h30m or 1d (at most 7d)" in bad.stderr


@pytest.fixture
def scheduler(lab):
    """The Scheduler client; afterwards the stop schedule has no StartDate and no wake-stop schedule is left."""
    client = lab.client("scheduler")
    yield client
    definition = client.get_schedule(Name="rentaliq-lab-db-stop")
    keep = ("Name", "ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target", "State")
    client.update_schedule(**{k: definition[k] for k in keep})
    try:
        client.delete_schedule(Name="rentaliq-lab-db-wake-stop")
    except client.exceptions.ResourceNotFoundException:
        pass


def test_wake_for_holds_the_evening_stop_and_leaves_a_one_time_stop(lab, scheduler):
    from rentaliq.ops import wake

    # Monday 2030-01-07 18:30 New York (EST, UTC-5) = 23:30 UTC; for 2 h: until 20:30 New York = 01:30 UTC Tuesday.
    now = datetime(2030, 1, 7, 23, 30, tzinfo=UTC)
    result = wake.wake(lab, wake.plan(lab, "lab", wake.parse_duration("2h"), now=now), lambda message: None)
    hold = datetime(2030, 1, 8, 1, 30, tzinfo=UTC)
    assert scheduler.get_schedule(Name="rentaliq-lab-db-stop")["StartDate"] == hold  # Monday's 20:00 stop is skipped
    one_time = scheduler.get_schedule(Name="rentaliq-lab-db-wake-stop")
    assert one_time["ScheduleExpression"] == "at(2030-01-08T01:30:00)" and one_time["ScheduleExpressionTimezone"] == "UTC"
    assert one_time["Target"]["Arn"] == STOP_TARGET and json.loads(one_time["Target"]["Input"]) == {"DbInstanceIdentifier": INSTANCE}
    assert one_time["ActionAfterCompletion"] == "DELETE"
    assert result.next_stop == hold and "rentaliq-lab-db-wake-stop stops it" in result.next_stop_text
    # A shorter second hold does not shorten the first.
    assert wake.plan(lab, "lab", wake.parse_duration("30m"), now=now).hold_until == hold


def test_wake_for_in_the_night_stops_it_when_the_hold_ends_and_leaves_the_evening_stop_alone(lab, scheduler):
    from rentaliq.ops import wake

    # Tuesday 2030-01-08 02:00 New York = 07:00 UTC; for 2 h: until 04:00 New York (09:00 UTC), before the 07:00 start.
    now = datetime(2030, 1, 8, 7, 0, tzinfo=UTC)
    result = wake.wake(lab, wake.plan(lab, "lab", wake.parse_duration("2h"), now=now), lambda message: None)
    assert "StartDate" not in scheduler.get_schedule(Name="rentaliq-lab-db-stop")  # no regular stop inside the hold
    assert scheduler.get_schedule(Name="rentaliq-lab-db-wake-stop")["ScheduleExpression"] == "at(2030-01-08T09:00:00)"
    assert result.next_stop == datetime(2030, 1, 8, 9, 0, tzinfo=UTC)


def test_a_longer_second_wake_for_removes_the_first_ones_one_time_stop_and_status_shows_the_pending_one(lab, scheduler):
    from rentaliq.ops import wake
    from rentaliq.ops.schedules import read_state

    # Tuesday 2030-01-08 02:00 New York = 07:00 UTC: wake for 2 h leaves a one-time stop at 09:00 UTC (04:00 New York).
    now = datetime(2030, 1, 8, 7, 0, tzinfo=UTC)
    wake.wake(lab, wake.plan(lab, "lab", wake.parse_duration("2h"), now=now), lambda message: None)
    pending = read_state(lab, "lab")
    assert pending.next_stop(now) == datetime(2030, 1, 8, 9, 0, tzinfo=UTC)  # status names the one-time stop, not 20:00
    assert "rentaliq-lab-db-wake-stop" in pending.describe_next(now) and "04:00 America/New_York" in pending.describe_next(now)
    # Then for 30 h: until Wednesday 08:00 New York (13:00 UTC), in working hours. The 04:00 stop must not happen.
    result = wake.wake(lab, wake.plan(lab, "lab", wake.parse_duration("30h"), now=now), lambda message: None)
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name="rentaliq-lab-db-wake-stop")
    assert scheduler.get_schedule(Name="rentaliq-lab-db-stop")["StartDate"] == datetime(2030, 1, 9, 13, 0, tzinfo=UTC)
    # The next stop is Wednesday's 20:00 New York (01:00 UTC Thursday): Tuesday's is held.
    assert result.next_stop == datetime(2030, 1, 10, 1, 0, tzinfo=UTC) and result.wake_stop is None
    assert "rentaliq-lab-db-stop stops it" in result.next_stop_text


def test_status_shows_the_schedule_the_state_and_the_next_transition(lab, stopped, cloud_env):
    now = datetime.now(UTC)
    start = _next_weekday_start(now)
    result = _cli(cloud_env, "status", "lab")
    assert result.returncode == 0, result.stdout + result.stderr  # stopped off-hours is not a failure
    text = " ".join(result.stdout.split())
    assert "schedule: stop 20:00 MON-FRI, start 07:00 MON-FRI (America/New_York)" in text
    assert "rentaliq-lab-db is stopped; starts" in text and f"{start:%H:%M} America/New_York ({start.astimezone(UTC):%H:%M} UTC" in text
    assert "database: stopped (RDS: stopped; its start schedule starts it again, `" in text and "rentaliq wake lab` now)" in text
    as_json = json.loads(_cli(cloud_env, "status", "lab", "--json").stdout)
    schedule = as_json["schedule"]
    assert schedule["stop"] == {
        "name": "rentaliq-lab-db-stop",
        "expression": "cron(0 20 ? * MON,TUE,WED,THU,FRI *)",
        "timezone": "America/New_York",
        "enabled": True,
    }
    assert schedule["instance_status"] == "stopped"
    assert schedule["next_transition"]["action"] == "start" and schedule["next_transition"]["at_utc"] == start.astimezone(UTC).isoformat()


def test_up_at_night_deploys_and_leaves_the_stopped_database_stopped(lab, stopped, outdir):
    from rentaliq.deploy.lifecycle import up

    started = time.monotonic()
    (result,) = up(lab, [load_spec("lab")], outdir)  # the off-hours state: a deploy must not fail, nor start it
    assert "rentaliq-lab-db is stopped, so not waiting for it: `" in result.database and "rentaliq wake lab` starts it now" in result.database
    assert time.monotonic() - started < 60  # not the readiness check's full minute of retries
    assert stopped.describe_db_instances(DBInstanceIdentifier=INSTANCE)["DBInstances"][0]["DBInstanceStatus"] == "stopped"
