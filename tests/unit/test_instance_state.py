"""The runtime SDK's stopped-database check without a server: what it asks, when, and what it falls back to.

boto3 clients with botocore's Stubber stand in for RDS and Scheduler only where a real answer cannot be had here:
a least-privilege role that AWS denies. The functional tests (tests/functional/test_offhours_sdk.py) cover the
real servers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from rentaliq.ops.wake import parse_duration
from rentaliq.runtime import DatabaseStopped, RuntimeConfig, Secrets
from rentaliq.runtime.instance_state import InstanceProbe, LiveSchedule, next_start_text
from rentaliq.runtime.secret_values import SecretValue

PASSWORD = "s3cret-Passw0rd-never-shown"


class _FixedSecrets(Secrets):
    """The credentials secret as Secrets Manager returns it, without a Secrets Manager."""

    def __init__(self) -> None:
        super().__init__(RuntimeConfig(env="lab"), client=object())

    def get(self, name: str) -> SecretValue:
        data = {"username": "rentaliq_admin", "password": PASSWORD, "host": "h", "port": 5432, "dbname": "rentaliq", "dbInstanceIdentifier": "rentaliq-lab-db"}
        return SecretValue(name, "rentaliq/lab/db/credentials", "v1", data)


def _client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _stopped(stub: Stubber) -> None:
    stub.add_response(
        "describe_db_instances",
        {"DBInstances": [{"DBInstanceIdentifier": "rentaliq-lab-db", "DBInstanceStatus": "stopped"}]},
        {"DBInstanceIdentifier": "rentaliq-lab-db"},
    )


def test_denied_rds_falls_back_to_the_connection_error_and_asks_again_only_after_the_ttl():
    rds, clock = _client("rds"), _Clock()
    probe = InstanceProbe(_FixedSecrets(), ttl_s=30, rds_client=rds, scheduler_client=_client("scheduler"), clock=clock)
    with Stubber(rds) as stub:
        stub.add_client_error("describe_db_instances", "AccessDenied", "not authorized to perform rds:DescribeDBInstances", 403)
        probe.ensure_available()  # unknown: no error of its own
        probe.ensure_available()  # cached: no second request (the Stubber would fail on an unexpected call)
        clock.t += 31
        _stopped(stub)
        with pytest.raises(DatabaseStopped):
            probe.ensure_available()
        stub.assert_no_pending_responses()


def test_denied_scheduler_still_says_stopped_and_how_to_wake_it():
    rds, scheduler = _client("rds"), _client("scheduler")
    probe = InstanceProbe(_FixedSecrets(), rds_client=rds, scheduler_client=scheduler, clock=_Clock())
    with Stubber(rds) as rds_stub, Stubber(scheduler) as scheduler_stub:
        _stopped(rds_stub)
        scheduler_stub.add_client_error("get_schedule", "AccessDeniedException", "denied", 403)
        with pytest.raises(DatabaseStopped) as caught:
            probe.ensure_available()
    assert str(caught.value) == (
        "database rentaliq-lab-db is stopped; its start schedule could not be read (AccessDeniedException); to start it now: rentaliq wake lab"
    )
    assert PASSWORD not in str(caught.value)


def test_next_start_text_names_both_clocks_or_says_nothing_will_start_it():
    start = LiveSchedule("rentaliq-lab-db-start", "cron(0 7 ? * MON,TUE,WED,THU,FRI *)", "America/New_York", True)
    saturday_noon = datetime(2026, 12, 5, 17, tzinfo=UTC)  # Sat 12:00 EST
    assert next_start_text(start, saturday_noon) == "the schedule rentaliq-lab-db-start starts it Mon 2026-12-07 07:00 America/New_York (12:00 UTC)"
    disabled = LiveSchedule(start.name, start.expression, start.timezone, False)
    assert next_start_text(disabled, saturday_noon).startswith("no schedule will start it")
    held = LiveSchedule(start.name, start.expression, start.timezone, True, start_date=datetime(2026, 12, 8, 12, tzinfo=UTC))
    assert held.next_fire(saturday_noon) == datetime(2026, 12, 8, 12, tzinfo=UTC)  # a fire at the start date itself counts


@pytest.mark.parametrize(
    ("text", "expected"), [("2h", timedelta(hours=2)), ("90m", timedelta(minutes=90)), ("1h30m", timedelta(minutes=90)), ("7d", timedelta(days=7))]
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "two hours", "8d", "0m", "-1h"])
def test_bad_durations_name_the_value_and_what_is_allowed(text):
    with pytest.raises(ValueError, match=f"--for {text!r} is invalid; allowed: "):
        parse_duration(text)
