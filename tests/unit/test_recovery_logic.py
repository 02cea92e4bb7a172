"""Pure logic of the recovery commands: names, times, source choice, secret rewriting, plans, argument refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, urlsplit

import pytest

from rentaliq.environments import load_spec
from rentaliq.ops.recovery import names
from rentaliq.ops.recovery.cutover import CutoverState, point_url, pointed
from rentaliq.ops.recovery.errors import RecoveryError, require_prod_confirmation
from rentaliq.ops.recovery.restore import Source
from rentaliq.ops.recovery.scale import ScalePlan
from rentaliq.ops.recovery.times import check_in_window, parse_time, utc


def test_manual_snapshot_names_follow_the_spec_then_take_a_suffix():
    candidates = list(names.manual_snapshots("prod", date(2025, 11, 8)))
    assert candidates[:3] == ["rentaliq-prod-manual-20251108", "rentaliq-prod-manual-20251108-2", "rentaliq-prod-manual-20251108-3"]
    assert len(candidates) == names.MAX_SUFFIX and len(set(candidates)) == len(candidates)


def test_default_restored_and_replica_names():
    at = datetime(2025, 11, 8, 14, 30, 59, tzinfo=UTC)
    assert list(names.restored_instances("qa", at))[:2] == ["rentaliq-qa-db-restored-202511081430", "rentaliq-qa-db-restored-202511081430-2"]
    assert list(names.replicas("lab"))[:2] == ["rentaliq-lab-db-replica", "rentaliq-lab-db-replica-2"]
    for name in [*list(names.restored_instances("prod", at))[-1:], *list(names.replicas("prod"))[-1:]]:
        assert names.instance_identifier(name, "--as") == name


@pytest.mark.parametrize("good", ["my-copy", "A1", "x" * 63, "Prod-Copy-2"])
def test_valid_identifiers_are_lowercased(good):
    assert names.instance_identifier(good, "--as") == good.lower()


@pytest.mark.parametrize("bad", ["", "1copy", "my--copy", "copy-", "x" * 64, "my_copy", "my copy", "-x"])
def test_invalid_identifiers_are_refused_naming_value_and_rule(bad):
    with pytest.raises(RecoveryError) as caught:
        names.instance_identifier(bad, "--as")
    message = str(caught.value)
    assert repr(bad) in message and "allowed: 1-63 letters, digits and hyphens" in message and "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-08T14:30:00Z", datetime(2025, 11, 8, 14, 30, tzinfo=UTC)),
        ("2025-11-08T14:30:00+00:00", datetime(2025, 11, 8, 14, 30, tzinfo=UTC)),
        ("2025-11-08T16:30:00+02:00", datetime(2025, 11, 8, 14, 30, tzinfo=UTC)),
        ("2025-11-08T14:30:00", datetime(2025, 11, 8, 14, 30, tzinfo=UTC)),
        ("2025-11-08 14:30", datetime(2025, 11, 8, 14, 30, tzinfo=UTC)),
        ("2025-11-08t14:30:00.250z", datetime(2025, 11, 8, 14, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_times_parse_to_utc(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01T00:00:00Z", "14:30", "2025-11-08", "", "1700000000"])
def test_bad_times_are_one_line_naming_the_value_and_the_format(bad):
    with pytest.raises(RecoveryError) as caught:
        parse_time(bad)
    assert repr(bad) in str(caught.value) and "2025-11-08T14:30:00Z" in str(caught.value)


def test_a_time_outside_the_window_is_refused_with_the_window():
    earliest, latest = datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 11, 8, 12, tzinfo=UTC)
    check_in_window(datetime(2025, 11, 5, tzinfo=UTC), earliest, latest, "rentaliq-qa-db")  # inside: no error
    check_in_window(latest, earliest, latest, "rentaliq-qa-db")
    for outside in (earliest - timedelta(seconds=1), latest + timedelta(seconds=1)):
        with pytest.raises(RecoveryError) as caught:
            check_in_window(outside, earliest, latest, "rentaliq-qa-db")
        assert utc(outside) in str(caught.value) and utc(earliest if outside < earliest else latest) in str(caught.value)


@pytest.mark.parametrize(
    ("snapshot", "to_time", "latest", "got"),
    [
        ("snap", None, True, "--snapshot and --latest"),
        ("snap", datetime(2025, 1, 1, tzinfo=UTC), False, "--snapshot and --to-time"),
        (None, datetime(2025, 1, 1, tzinfo=UTC), True, "--to-time and --latest"),
        (None, None, False, "none"),
    ],
)
def test_exactly_one_restore_source(snapshot, to_time, latest, got):
    with pytest.raises(RecoveryError) as caught:
        Source.from_options(snapshot, to_time, latest)
    assert f"got {got}" in str(caught.value) and "exactly one of --snapshot ID, --to-time T, --latest" in str(caught.value)
    assert Source.from_options("snap", None, False).snapshot == "snap"
    assert Source.from_options(None, None, True).latest


def test_point_url_moves_host_and_port_and_keeps_an_encoded_password():
    password = "p@ss:w/rd?#%[]"
    url = f"postgresql://rentaliq_admin:{quote(password, safe='')}@old.example:5432/rentaliq?sslmode=require"
    moved = point_url(url, "127.0.0.1", 41234)
    parts = urlsplit(moved)
    assert (parts.hostname, parts.port, parts.path, parts.query) == ("127.0.0.1", 41234, "/rentaliq", "sslmode=require")
    assert moved.split("@")[0] == url.split("@")[0]  # userinfo byte for byte
    jdbc = point_url("jdbc:postgresql://old.example:5432/rentaliq?sslmode=require", "db.internal", 6543)
    assert jdbc == "jdbc:postgresql://db.internal:6543/rentaliq?sslmode=require"


def test_pointed_secrets_change_only_what_locates_the_instance():
    creds = {
        "username": "u",
        "password": "secret-value",
        "engine": "postgres",
        "host": "a",
        "port": 5432,
        "dbname": "rentaliq",
        "dbInstanceIdentifier": "rentaliq-qa-db",
    }
    new = pointed("db/credentials", creds, "rentaliq-qa-db-restored-202511081430", "b", 6000)
    assert new == {**creds, "host": "b", "port": 6000, "dbInstanceIdentifier": "rentaliq-qa-db-restored-202511081430"}
    conn = {"DATABASE_URL": "postgresql://u:pw@a:5432/rentaliq?sslmode=require", "JDBC_URL": "jdbc:postgresql://a:5432/rentaliq?sslmode=require"}
    moved = pointed("db/connection-string", conn, "x", "b", 6000)
    assert moved == {"DATABASE_URL": "postgresql://u:pw@b:6000/rentaliq?sslmode=require", "JDBC_URL": "jdbc:postgresql://b:6000/rentaliq?sslmode=require"}


def test_cutover_line_names_instance_and_undo_and_no_value():
    line = CutoverState("qa", "rentaliq-qa-db-restored-202511081430", "2025-11-08T14:31:00Z", ("rentaliq/qa/db/credentials",)).describe()
    assert "rentaliq-qa-db-restored-202511081430" in line and "rentaliq-qa-db" in line and "--rollback-cutover" in line and "deliberate" in line


def test_prod_needs_confirmation_and_other_envs_do_not():
    with pytest.raises(RecoveryError, match="pass --confirm-prod"):
        require_prod_confirmation(load_spec("prod"), False, "restore x")
    require_prod_confirmation(load_spec("prod"), True, "restore x")
    require_prod_confirmation(load_spec("qa"), False, "restore x")


def test_scale_plan_says_how_to_keep_a_change_the_spec_does_not_hold():
    plan = ScalePlan("qa", "rentaliq-qa-db", "db.t3.small", 50, "db.t3.large", None, False, "sun:04:00-sun:05:00", "db.t3.small", 50)
    lines = plan.lines()
    assert "db.t3.small → db.t3.large" in lines[0] and "maintenance window (sun:04:00-sun:05:00)" in lines[0]
    assert 'instance_class = "db.t3.large" in config/qa.toml' in lines[1]
    now = ScalePlan("qa", "rentaliq-qa-db", "db.t3.small", 50, None, 100, True, None, "db.t3.small", 100)
    assert now.lines() == ["scale qa: rentaliq-qa-db storage 50 → 100 GiB, applied now (the instance restarts)"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # An unreachable local cloud: every refusal below must come before any call to it.
    env = {**os.environ, "RENTALIQ_LOCAL_PORT": "1", "RENTALIQ_HOME": "/nonexistent/rentaliq-unit"}
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["restore", "staging", "--latest"], "unknown environment 'staging'; allowed: lab, qa, prod"),
        (["restore", "lab", "--snapshot", "s", "--latest"], "exactly one of --snapshot ID, --to-time T, --latest (got --snapshot and --latest)"),
        (["restore", "lab"], "(got none)"),
        (["restore", "lab", "--to-time", "noon"], "--to-time 'noon' is not a time"),
        (["restore", "lab", "--rollback-cutover", "--latest"], "--rollback-cutover takes none of --latest"),
        (["replica", "clone", "lab"], "replica action 'clone' is unknown; allowed: create, promote, delete"),
        (["backup", "dev"], "unknown environment 'dev'"),
    ],
)
def test_bad_arguments_are_refused_in_one_line_before_any_call(args, needle):
    result = _cli(*args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], result.stderr


def test_a_deviation_is_counted_apart_never_as_a_pass_or_a_failure():
    from rentaliq.ops.verify.checks import DEVIATION, Recorder, summary

    record = Recorder()
    record.add("Secrets", "a", 1, 1)
    record.deviation("Secrets", "DB secrets point at the environment's instance", "rentaliq-qa-db", "qa-copy", detail="deliberate")
    assert [c.status for c in record.checks] == ["pass", DEVIATION]
    assert summary(record.checks) == {"passed": 1, "failed": 0, "not_checkable": 0, "deviations": 1}
