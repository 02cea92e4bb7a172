"""`rentaliq verify ENV`: the conformance audit against all three environments on the local cloud.

The library is driven directly; the command through a small Typer app that registers it (as cli/main.py does).
Tests that break an environment on purpose restore it in ``finally``, so the session's environments stay intact.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from urllib.parse import quote

import pytest
import typer
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from rentaliq import naming
from rentaliq.cli import output, verify_cmds
from rentaliq.deploy.target import Target
from rentaliq.environments import build_spec, load_spec
from rentaliq.ops.verify import FAIL, NOT_CHECKABLE, PASS, Check, summary, verify

pytestmark = pytest.mark.functional

ENVS = ("lab", "qa", "prod")


def find(checks: list[Check], area: str, name: str) -> Check:
    matches = [c for c in checks if c.area == area and c.name == name]
    assert len(matches) == 1, f"{area}/{name}: {len(matches)} checks; have {[c.name for c in checks if c.area == area]}"
    return matches[0]


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL]


@contextmanager
def secret_replaced(target: Target, secret_id: str, change):
    """Put ``change(current value)`` as the secret's value; put the original back afterwards."""
    sm = target.client("secretsmanager")
    original = sm.get_secret_value(SecretId=secret_id)["SecretString"]
    sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(change(json.loads(original))))
    try:
        yield
    finally:
        sm.put_secret_value(SecretId=secret_id, SecretString=original)


def secret_values(target: Target, env: str) -> list[str]:
    """Every value that must never be printed: passwords, URLs with credentials, API keys (also percent-encoded)."""
    sm, values = target.client("secretsmanager"), []
    for logical in ("db/credentials", "db/connection-string", "api/keys"):
        data = json.loads(sm.get_secret_value(SecretId=naming.secret_path(env, logical))["SecretString"])
        values += [str(data[k]) for k in ("password", "DATABASE_URL", "api_key", "jwt_secret", "encryption_key") if k in data]
    values += [quote(v, safe="") for v in values]
    assert all(len(v) >= 8 for v in values)
    return values


# ------------------------------------------------------------------------------------------- library


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_conforms_to_its_spec(deployed, target, env):
    checks = verify(target, load_spec(env))
    assert not failures(checks), "\n".join(map(str, failures(checks)))
    assert {c.area for c in checks} == {"Stack", "RDS", "S3", "Secrets", "IAM", "EC2", "CloudWatch", "Alerts", "Budget", "Scheduler", "Audit", "KMS"}
    # The local cloud implements every operation the audit needs: nothing is left "not checkable".
    assert summary(checks) == {"passed": len(checks), "failed": 0, "not_checkable": 0, "deviations": 0} and len(checks) > 100
    spec = load_spec(env)
    # Values straight from the spec, read back from the live resources.
    assert find(checks, "RDS", "instance class").actual == spec.database.instance_class
    assert find(checks, "RDS", "backup retention (days)").actual == spec.database.backup_retention_days
    assert find(checks, "RDS", "Multi-AZ").actual is spec.database.multi_az
    # The spec's egress: LAB none, QA one NAT instance, PROD two (issue 11 section 2).
    assert find(checks, "EC2", f"{naming.vpc(env)} NAT instances running").actual == (spec.network.nats if spec.network.nat == "instance" else 0)
    assert find(checks, "EC2", f"{naming.vpc(env)} NAT gateways").actual == (spec.network.nats if spec.network.nat == "gateway" else 0)
    assert find(checks, "Secrets", f"{naming.secret_path(env, 'db/connection-string')} DATABASE_URL password").actual == "matches"


def test_prod_only_resources_are_audited_in_prod_only(deployed, target):
    prod = {(c.area, c.name) for c in verify(target, load_spec("prod"))}
    lab = verify(target, load_spec("lab"))
    role = naming.rds_monitoring_role()
    assert ("IAM", f"{role} trusted by") in prod and ("IAM", f"{role} managed policies") in prod
    assert ("S3", f"{naming.access_logs_bucket()} policy allows log delivery") in prod
    assert not any(role in c.name or naming.access_logs_bucket() in c.name for c in lab)
    logging = find(lab, "S3", f"{naming.files_bucket('lab')} access logging target")
    assert logging.status == PASS and logging.expected is None and logging.actual is None


def test_a_changed_backup_retention_fails_its_check(deployed, target):
    spec = load_spec("lab")
    rds, db_id = target.client("rds"), naming.db_instance_id("lab")
    wanted = spec.database.backup_retention_days
    broken = wanted + 6
    try:
        rds.modify_db_instance(DBInstanceIdentifier=db_id, BackupRetentionPeriod=broken, ApplyImmediately=True)
        checks = verify(target, spec)
    finally:
        rds.modify_db_instance(DBInstanceIdentifier=db_id, BackupRetentionPeriod=wanted, ApplyImmediately=True)
    check = find(checks, "RDS", "backup retention (days)")
    assert (check.status, check.expected, check.actual) == (FAIL, wanted, broken)
    assert failures(checks) == [check]
    assert find(verify(target, spec), "RDS", "backup retention (days)").status == PASS


def test_an_alarm_with_another_threshold_fails_its_check(deployed, target):
    """The alarm table verify audits is the one the stacks are built from (contract.ALARMS)."""
    spec, cloudwatch, name = load_spec("qa"), target.client("cloudwatch"), naming.alarm("qa", "high-connections")
    alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    keys = (
        "AlarmName",
        "AlarmDescription",
        "MetricName",
        "Namespace",
        "Statistic",
        "Dimensions",
        "Period",
        "EvaluationPeriods",
        "Threshold",
        "ComparisonOperator",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "TreatMissingData",
    )
    original = {k: alarm[k] for k in keys if k in alarm}
    try:
        cloudwatch.put_metric_alarm(**{**original, "Threshold": original["Threshold"] + 7})
        checks = verify(target, spec)
    finally:
        cloudwatch.put_metric_alarm(**original)
    check = find(checks, "CloudWatch", f"{name} threshold")
    assert (check.status, check.expected, check.actual) == (FAIL, spec.monitoring.connections_threshold, original["Threshold"] + 7)
    assert failures(checks) == [check]
    assert find(verify(target, spec), "CloudWatch", f"{name} threshold").status == PASS


def test_a_secret_missing_a_key_fails_the_keys_check(deployed, target):
    spec, path = load_spec("qa"), naming.secret_path("qa", "api/keys")
    with secret_replaced(target, path, lambda v: {k: x for k, x in v.items() if k != "jwt_secret"}):
        checks = verify(target, spec)
    check = find(checks, "Secrets", f"{path} keys")
    assert check.status == FAIL
    assert check.expected == ["api_key", "encryption_key", "jwt_secret"] and check.actual == ["api_key", "encryption_key"]
    assert [c.name for c in failures(checks)] == [f"{path} keys"]
    assert find(verify(target, spec), "Secrets", f"{path} keys").status == PASS


def test_credentials_that_no_longer_match_the_instance_fail(deployed, target):
    spec = load_spec("lab")
    creds, conn = naming.secret_path("lab", "db/credentials"), naming.secret_path("lab", "db/connection-string")

    def other_password(value):
        prefix, rest = value["DATABASE_URL"].split("://", 1)
        user_password, where = rest.rsplit("@", 1)
        return {**value, "DATABASE_URL": f"{prefix}://{user_password.split(':', 1)[0]}:not-the-password@{where}"}

    with (
        secret_replaced(target, creds, lambda v: {**v, "port": str(v["port"] + 1), "dbInstanceIdentifier": "db-ABCDEF"}),
        secret_replaced(target, conn, other_password),
    ):
        checks = verify(target, spec)
        leaks = secret_values(target, "lab") + ["not-the-password"]
    failed = {c.name for c in failures(checks)}
    assert failed == {f"{creds} port", f"{creds} port is a number", f"{creds} dbInstanceIdentifier", f"{conn} DATABASE_URL password"}
    password = find(checks, "Secrets", f"{conn} DATABASE_URL password")
    assert (password.expected, password.actual) == ("matches db/credentials", "differs")
    dumped = json.dumps([c.to_dict() for c in checks])
    assert not [v for v in leaks if v in dumped]


def test_an_operation_declared_unimplemented_is_not_checkable_never_pass(deployed, target):
    """Only an operation on the local cloud's list of unimplemented ones gives "not checkable"; it says which."""
    checks = verify(target, load_spec("lab"), unimplemented={"rds:DescribeDBParameters"})
    check = find(checks, "RDS", "parameters readable")
    assert check.status == NOT_CHECKABLE and check.actual is None and "rds:DescribeDBParameters" in check.detail
    assert [c for c in checks if c.status == NOT_CHECKABLE] == [check]
    assert not any(c.name.startswith("parameter rds.") or c.name.startswith("parameter shared") for c in checks)
    assert not failures(checks)


def test_a_not_implemented_answer_for_an_operation_not_declared_is_a_failure(deployed, cloud):
    """An endpoint refusing an operation the local cloud is supposed to implement fails the check."""

    class NoParameters(Target):
        def client(self, service):
            real = super().client(service)
            if service != "rds":
                return real

            class Wrapped:
                def __getattr__(self, name):
                    if name == "describe_db_parameters":

                        def refuse(**_):
                            raise ClientError(
                                {"Error": {"Code": "NotImplemented", "Message": "not yet implemented"}, "ResponseMetadata": {"HTTPStatusCode": 501}},
                                "DescribeDBParameters",
                            )

                        return refuse
                    return getattr(real, name)

                def can_paginate(self, name):
                    return False

            return Wrapped()

    base = Target.local(cloud.endpoint_url)
    checks = verify(NoParameters(base.name, base.region, base.endpoint_url, base._session), load_spec("lab"))
    check = find(checks, "RDS", "parameters readable")
    assert check.status == FAIL and "NotImplemented" in check.detail
    assert failures(checks) == [check] and summary(checks)["not_checkable"] == 0


def test_a_bucket_that_answers_but_is_not_ours_fails_exists(deployed, cloud):
    """Another account sees LAB's bucket answer HeadBucket, but it is not among that account's buckets."""

    class OtherAccount(Target):
        def client(self, service):
            fresh = service not in self._clients
            client = super().client(service)
            if fresh:  # moto's way of choosing the account a request acts in
                client.meta.events.register("before-sign", lambda request, **_: request.headers.__setitem__("x-moto-account-id", "111122223333"))
            return client

    base = Target.local(cloud.endpoint_url)
    other = OtherAccount(base.name, base.region, base.endpoint_url, base._session)
    bucket = naming.files_bucket("lab")
    assert other.client("s3").head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    checks = verify(other, load_spec("lab"))
    exists = find(checks, "S3", f"{bucket} exists")
    assert (exists.status, exists.actual) == (FAIL, None)
    assert [c.name for c in checks if c.area == "S3"] == [f"{bucket} exists"]  # nothing read from a bucket not ours
    # Only what LAB's spec says must not exist (its 5xx alarm, NAT alarms, audit trail, environment key) is truly
    # absent in the other account too.
    assert [c.name for c in checks if c.status == "pass"] == [
        "rentaliq-lab-files-5xx-errors absent",
        "rentaliq-lab-nat-*-health alarms absent",
        "trail",  # the Audit area's checks that LAB (audit off) has no trail, recorder or rules
        "config recorder",
        "config rules",
        "alias/rentaliq-lab absent",  # no environment key in LAB
    ]


def test_an_environment_that_is_not_there_fails_without_crashing(deployed, cloud):
    """Nothing is deployed in us-west-2: every regional resource is reported missing."""
    spec = build_spec("lab", {"region": "us-west-2"})
    checks = verify(Target.local(cloud.endpoint_url, region="us-west-2"), spec)
    for area, name in (
        ("Stack", "stack exists"),
        ("RDS", "instance exists"),
        ("S3", f"{naming.files_bucket('lab')} region"),
        ("Secrets", f"{naming.secret_path('lab', 'api/keys')} exists"),
        ("EC2", f"{naming.vpc('lab')} exists"),
        ("CloudWatch", f"{naming.alarm('lab', 'high-cpu')} exists"),
    ):
        assert find(checks, area, name).status == FAIL
    assert not any(c.name.endswith("(audit error)") for c in checks)


# ----------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(cloud_env, monkeypatch):
    """`rentaliq verify` in a Typer app of its own, talking to this session's local cloud."""
    for key in ("RENTALIQ_HOME", "RENTALIQ_LOCAL_PORT"):
        monkeypatch.setenv(key, cloud_env[key])
    monkeypatch.setattr(output.console, "width", 1000)  # wide enough that no cell wraps
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:
        """Test app."""

    verify_cmds.register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["verify", *args])


def test_cli_prints_the_table_and_exits_0_when_everything_conforms(deployed, cli):
    result = cli("prod", "--target", "local")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "expected" in line)
    assert all(column in header for column in ("area", "check", "expected", "actual", "result"))
    as_json = cli("prod", "--json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    checks = [Check(**c) for c in data["checks"]]
    assert data["summary"] == summary(checks) and data["summary"]["failed"] == 0
    counts = data["summary"]
    assert f"{counts['passed']} passed, 0 failed, {counts['not_checkable']} not checkable" in result.stdout.splitlines()[-1]
    # Every check is a row; the instance class row shows the spec's value on both sides.
    row = next(line for line in result.stdout.splitlines() if "│ instance class " in line)
    assert [cell.strip() for cell in row.split("│")[1:6]] == ["RDS", "instance class", "db.t3.medium", "db.t3.medium", "pass"]
    assert sum("│" in line and line.split("│")[5].strip() in ("pass", "FAIL", "not checkable here") for line in result.stdout.splitlines()) == len(checks)
    assert counts["not_checkable"] == 0 and counts["passed"] == len(checks)


def test_cli_exits_1_and_shows_the_failing_check(deployed, target, cli):
    spec, rds, db_id = load_spec("lab"), target.client("rds"), naming.db_instance_id("lab")
    wanted = spec.database.backup_retention_days
    try:
        rds.modify_db_instance(DBInstanceIdentifier=db_id, BackupRetentionPeriod=wanted + 6, ApplyImmediately=True)
        table, as_json = cli("lab"), cli("lab", "--json")
    finally:
        rds.modify_db_instance(DBInstanceIdentifier=db_id, BackupRetentionPeriod=wanted, ApplyImmediately=True)
    assert table.exit_code == 1 and as_json.exit_code == 1
    row = next(line for line in table.stdout.splitlines() if "backup retention (days)" in line)
    assert [cell.strip() for cell in row.split("│")[1:6]] == ["RDS", "backup retention (days)", str(wanted), str(wanted + 6), "FAIL"]
    assert ", 1 failed, " in table.stdout.splitlines()[-1]
    data = json.loads(as_json.stdout)
    assert data["summary"]["failed"] == 1
    failed = [c for c in data["checks"] if c["status"] == "fail"]
    assert failed == [{"area": "RDS", "name": "backup retention (days)", "expected": wanted, "actual": wanted + 6, "status": "fail", "detail": ""}]


@pytest.mark.parametrize("env", ENVS)
def test_cli_never_prints_a_secret_value(deployed, target, cli, env):
    conn = naming.secret_path(env, "db/connection-string")
    leaks = secret_values(target, env)
    outputs = [cli(env), cli(env, "--json")]
    # Also when the password check fails, the failing row shows no value.
    with secret_replaced(target, conn, lambda v: {**v, "DATABASE_URL": v["DATABASE_URL"].replace("@", "x@", 1)}):
        outputs += [cli(env), cli(env, "--json")]
        leaks += secret_values(target, env)
    assert [r.exit_code for r in outputs] == [0, 0, 1, 1]
    for result in outputs:
        text = result.stdout + result.stderr
        assert not [v for v in leaks if v in text]
    assert "differs" in outputs[2].stdout
