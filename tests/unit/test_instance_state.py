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


def test_denied_rds_falls_back_to_the_connection_error_and_asks_again_only_a_minute_later():
    rds, clock = _client("rds"), _Clock()
    probe = InstanceProbe(_FixedSecrets(), ttl_s=30, rds_client=rds, scheduler_client=_client("scheduler"), clock=clock)
    with Stubber(rds) as stub:
        stub.add_client_error("describe_db_instances", "AccessDenied", "not authorized to perform rds:DescribeDBInstances", 403)
        probe.ensure_available()  # unknown: no error of its own
        probe.ensure_available()  # cached: no second request (the Stubber would fail on an unexpected call)
        clock.t += 5
        probe.ensure_available(max_age_s=1.0)  # even after a failed connection: an unanswerable probe must not add a timeout
        clock.t += 56
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


def _state(status: str | None, *, held_until: datetime | None = None):
    from rentaliq.ops.schedules import OffHoursState

    stop = LiveSchedule("rentaliq-lab-db-stop", "cron(0 20 ? * MON,TUE,WED,THU,FRI *)", "America/New_York", True, held_until)
    start = LiveSchedule("rentaliq-lab-db-start", "cron(0 7 ? * MON,TUE,WED,THU,FRI *)", "America/New_York", True)
    return OffHoursState("lab", stop, start, status)


def test_status_lines_name_the_schedule_and_the_transition_that_changes_the_instance():
    monday_10 = datetime(2026, 11, 30, 15, tzinfo=UTC)  # Mon 10:00 EST
    assert _state("available").lines(monday_10) == [
        "schedule: stop 20:00 MON-FRI, start 07:00 MON-FRI (America/New_York)",
        "  rentaliq-lab-db is available; stops today 20:00 America/New_York (01:00 UTC tomorrow)",
    ]
    # Stopped by hand in working hours: what matters is when it starts, not this evening's stop.
    assert _state("stopped").lines(monday_10)[1] == "  rentaliq-lab-db is stopped; starts tomorrow 07:00 America/New_York (12:00 UTC)"
    friday_21 = datetime(2026, 12, 5, 2, tzinfo=UTC)  # Fri 21:00 EST: the weekend's stop lasts until Monday
    assert _state("stopped").to_dict(friday_21)["next_transition"] == {
        "action": "start",
        "at_utc": "2026-12-07T12:00:00+00:00",
        "text": "starts Mon 2026-12-07 07:00 America/New_York (12:00 UTC)",
    }


def test_a_held_stop_schedule_is_shown_and_its_next_stop_moves():
    monday_19 = datetime(2026, 12, 1, 0, tzinfo=UTC)  # Mon 19:00 EST
    held = _state("available", held_until=datetime(2026, 12, 1, 3, tzinfo=UTC))  # until Mon 22:00 EST
    lines = held.lines(monday_19)
    assert lines[1] == "  stop held by `rentaliq wake --for` until today 22:00 America/New_York (03:00 UTC tomorrow)"
    assert lines[2] == "  rentaliq-lab-db is available; stops tomorrow 20:00 America/New_York (01:00 UTC Wed 2026-12-02)"


def test_a_pooled_request_asks_rds_once_and_then_only_while_it_waits():
    """The request path does not pay for a DescribeDBInstances every TTL: a pooled connection at hand is proof enough."""
    rds, clock = _client("rds"), _Clock()
    probe = InstanceProbe(_FixedSecrets(), ttl_s=30, rds_client=rds, scheduler_client=_client("scheduler"), clock=clock)

    class Pool:
        def getconn(self, timeout: float) -> str:
            return "connection"

    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", {"DBInstances": [{"DBInstanceStatus": "available"}]}, {"DBInstanceIdentifier": "rentaliq-lab-db"})
        assert probe.getconn(Pool(), 30) == "connection"
        clock.t += 3600
        assert probe.getconn(Pool(), 30) == "connection"  # an hour later: no second request (the Stubber has none)
        stub.assert_no_pending_responses()
