"""Credential rotation on the local cloud (issue 12 section 5): RotateSecret changes the real PostgreSQL password,
keeps the connection-string secret in step, survives kill -9 between steps, and the SDK serves through it.

Each test looks at the data itself: it connects with what the secrets say, and with the old password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from rentaliq import naming
from rentaliq.contract import SSLMODE
from rentaliq.local.cloud import LocalCloud
from rentaliq.local.postgres.ca import local_cloud_ca
from rentaliq.local.secrets_rotation.steps import CRASH_ENV
from tests.clouds import cli_env, own_cloud, private_cloud
from tests.functional.rds_client import SMALL_POSTGRES

ENV = "lab"
USER, DBNAME, FIRST_PASSWORD = "rentaliq_admin", "rentaliq", "first-Password-1234567890"
CREDS, CONN = naming.secret_path(ENV, "db/credentials"), naming.secret_path(ENV, "db/connection-string")

rotation_cloud = own_cloud("rotation", "The cloud whose lab database these tests rotate.")


def _seed(cloud: LocalCloud) -> None:
    """The lab database and its two secrets, in the deployed layout (what DatabaseSecret + SecretTargetAttachment and
    the stack's connection-string secret hold)."""
    rds, sm = cloud.client("rds"), cloud.client("secretsmanager")
    db_id = naming.db_instance_id(ENV)
    rds.create_db_instance(DBInstanceIdentifier=db_id, MasterUserPassword=FIRST_PASSWORD, **{**SMALL_POSTGRES, "MasterUsername": USER, "DBName": DBNAME})
    endpoint = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]["Endpoint"]
    host, port = endpoint["Address"], endpoint["Port"]
    creds = {"username": USER, "password": FIRST_PASSWORD, "engine": "postgres", "host": host, "port": port, "dbname": DBNAME, "dbInstanceIdentifier": db_id}
    sm.create_secret(Name=CREDS, SecretString=json.dumps(creds))
    url = f"postgresql://{USER}:{quote(FIRST_PASSWORD, safe='')}@{host}:{port}/{DBNAME}?sslmode={SSLMODE}"
    sm.create_secret(Name=CONN, SecretString=json.dumps({"DATABASE_URL": url, "JDBC_URL": f"jdbc:postgresql://{host}:{port}/{DBNAME}?sslmode={SSLMODE}"}))


@pytest.fixture(scope="module")
def seeded(rotation_cloud: LocalCloud) -> LocalCloud:
    _seed(rotation_cloud)
    return rotation_cloud


def _bundle(cloud: LocalCloud) -> str:
    return str(local_cloud_ca(cloud.state_dir).path)


def _stages(sm: Any) -> dict[str, list[str]]:
    return sm.describe_secret(SecretId=CREDS)["VersionIdsToStages"]


def _wait_current(sm: Any, version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stages = _stages(sm)
        except Exception:  # noqa: BLE001 - the cloud may be restarting
            stages = {}
        if "AWSCURRENT" in stages.get(version, []) and not any("AWSPENDING" in s for s in stages.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"version {version} did not become AWSCURRENT: {stages}")


def _creds(sm: Any, **where: str) -> dict[str, Any]:
    return json.loads(sm.get_secret_value(SecretId=CREDS, **where)["SecretString"])


def _connect_with(creds: dict[str, Any], bundle: str) -> psycopg.Connection:
    return psycopg.connect(
        host=creds["host"],
        port=creds["port"],
        user=creds["username"],
        password=creds["password"],
        dbname=creds["dbname"],
        sslmode="verify-full",
        sslrootcert=bundle,
        connect_timeout=5,
    )


def _assert_rotated(cloud: LocalCloud, old_password: str) -> dict[str, Any]:
    """AWSCURRENT and the connection string both work, the old password does not."""
    sm, bundle = cloud.client("secretsmanager"), _bundle(cloud)
    current = _creds(sm)
    assert current["password"] != old_password and len(current["password"]) == 32
    with _connect_with(current, bundle) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (USER,)
    url = json.loads(sm.get_secret_value(SecretId=CONN)["SecretString"])["DATABASE_URL"]
    assert f":{quote(current['password'], safe='')}@" in url and url.endswith(f"?sslmode={SSLMODE}")
    with psycopg.connect(url, sslrootcert=bundle, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect_with({**current, "password": old_password}, bundle).close()
    return current


def test_rotate_secret_changes_the_real_password_and_the_connection_string(seeded: LocalCloud) -> None:
    sm = seeded.client("secretsmanager")
    before = _creds(sm)
    old_version = sm.describe_secret(SecretId=CREDS)["VersionIdsToStages"]
    answer = sm.rotate_secret(SecretId=CREDS)
    version = answer["VersionId"]
    assert answer["Name"] == CREDS and version not in old_version
    _wait_current(sm, version)
    current = _assert_rotated(seeded, before["password"])
    assert _creds(sm, VersionStage="AWSPREVIOUS")["password"] == before["password"]
    assert {k: v for k, v in current.items() if k != "password"} == {k: v for k, v in before.items() if k != "password"}
    assert sm.describe_secret(SecretId=CREDS).get("LastRotatedDate")


def test_rotation_rules_are_kept_and_out_of_range_days_are_refused(seeded: LocalCloud) -> None:
    sm = seeded.client("secretsmanager")
    with pytest.raises(sm.exceptions.InvalidParameterException, match="1-1000"):
        sm.rotate_secret(SecretId=CREDS, RotationRules={"AutomaticallyAfterDays": 1001})
    before = _creds(sm)
    version = sm.rotate_secret(SecretId=CREDS, RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    _wait_current(sm, version)
    described = sm.describe_secret(SecretId=CREDS)
    assert described["RotationEnabled"] is True and described["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert 29 * 86400 < described["NextRotationDate"].timestamp() - time.time() <= 30 * 86400
    _assert_rotated(seeded, before["password"])


def test_the_sdk_serves_through_rotations_under_load_with_no_failure(seeded: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    from rentaliq.runtime.config import RuntimeConfig
    from rentaliq.runtime.database import Database
    from rentaliq.runtime.secrets import Secrets

    for name, value in seeded.env(write_profile=False).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    # Short pooled lives, so new connections (which need the new password) are opened during the rotations.
    config = RuntimeConfig(env=ENV, ca_bundle=_bundle(seeded), pool_max_size=6, pool_max_lifetime_s=1.0, pool_max_idle_s=1.0)
    sm = seeded.client("secretsmanager")
    failures: list[str] = []
    done = threading.Event()
    served = [0]

    with Database(Secrets(config), config=config) as db:

        def worker() -> None:
            while not done.is_set():
                try:
                    assert db.query("SELECT count(*) FROM pg_stat_activity")[0][0] >= 1
                    with db.connect() as conn:  # a fresh, unpooled connection each time: the new password at once
                        conn.execute("SELECT 1")
                    served[0] += 1
                except Exception as error:  # noqa: BLE001 - counted, the assertion below shows them
                    failures.append(f"{type(error).__name__}: {error}")

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        passwords = {_creds(sm)["password"]}
        try:
            for _ in range(3):
                time.sleep(1.0)
                version = sm.rotate_secret(SecretId=CREDS)["VersionId"]
                _wait_current(sm, version)
                passwords.add(_creds(sm)["password"])
            time.sleep(1.5)
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=30)
    assert failures == [], failures[:5]
    assert served[0] > 50 and len(passwords) == 4
    for old in passwords - {_creds(sm)["password"]}:
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _connect_with({**_creds(sm), "password": old}, _bundle(seeded)).close()


@pytest.mark.slow
@pytest.mark.parametrize("step", ["createSecret", "setSecret", "finishSecret"])
def test_kill_9_between_steps_then_a_restart_completes_the_rotation(step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CRASH_ENV, step)
    with private_cloud(f"rotation-crash-{step.lower()}") as cloud:
        _seed(cloud)
        sm = cloud.client("secretsmanager")
        version = sm.rotate_secret(SecretId=CREDS)["VersionId"]
        pid = cloud.status().pid
        _wait_dead(pid)
        monkeypatch.delenv(CRASH_ENV)
        cloud.start(timeout=60)
        sm = cloud.client("secretsmanager")
        _wait_current(sm, version)
        _assert_rotated(cloud, FIRST_PASSWORD)


def _wait_dead(pid: int | None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    if pid:
        raise AssertionError(f"the local cloud (pid {pid}) did not die after the injected crash")


def _cli(cloud: LocalCloud, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], env=cli_env(cloud), capture_output=True, text=True, timeout=180)


def test_rentaliq_rotate_dry_run_changes_nothing(seeded: LocalCloud) -> None:
    sm = seeded.client("secretsmanager")
    before = _stages(sm)
    done = _cli(seeded, "rotate", ENV, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"rotate {CREDS} now" in done.stdout and "dry run: nothing changed" in done.stdout
    assert _stages(sm) == before


def test_rentaliq_rotate_rotates_and_prints_the_version_never_a_value(seeded: LocalCloud) -> None:
    sm = seeded.client("secretsmanager")
    before = _creds(sm)
    done = _cli(seeded, "rotate", ENV, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["secret"] == CREDS and "AWSCURRENT" in _stages(sm)[result["version_id"]]
    current = _assert_rotated(seeded, before["password"])
    for secret in (before["password"], current["password"], quote(current["password"], safe="")):
        assert secret not in done.stdout + done.stderr
    assert f"rotation started: new version {result['version_id']}" in done.stderr and "finishSecret" in done.stderr  # createSecret may pass unseen


def test_rentaliq_rotate_of_an_environment_not_deployed_is_one_line(seeded: LocalCloud) -> None:
    done = _cli(seeded, "rotate", "qa")
    assert done.returncode == 1 and "rentaliq/qa/db/credentials does not exist" in done.stderr and "Traceback" not in done.stderr


def test_a_rotation_schedule_in_a_stack_sets_the_rules_and_its_deletion_cancels_them(seeded: LocalCloud) -> None:
    """The template CDK writes for a hosted single-user rotation (transform + HostedRotationLambda), deployed locally."""
    cfn, sm = seeded.client("cloudformation"), seeded.client("secretsmanager")
    template = {
        "Transform": "AWS::SecretsManager-2024-09-16",
        "Resources": {
            "Schedule": {
                "Type": "AWS::SecretsManager::RotationSchedule",
                "Properties": {
                    "SecretId": CREDS,
                    "RotationRules": {"ScheduleExpression": "rate(30 days)"},
                    "HostedRotationLambda": {"RotationType": "PostgreSQLSingleUser", "RotationLambdaName": "rentaliq-lab-db-rotation"},
                },
            }
        },
    }
    before = _stages(sm)
    cfn.create_stack(StackName="rotation-schedule", TemplateBody=json.dumps(template))
    cfn.get_waiter("stack_create_complete").wait(StackName="rotation-schedule", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    described = sm.describe_secret(SecretId=CREDS)
    assert described["RotationEnabled"] is True and described["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert described["RotationLambdaARN"].endswith(":function:rentaliq-lab-db-rotation")
    assert _stages(sm) == before  # no rotation at deploy time
    cfn.delete_stack(StackName="rotation-schedule")
    cfn.get_waiter("stack_delete_complete").wait(StackName="rotation-schedule", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert sm.describe_secret(SecretId=CREDS).get("RotationEnabled") is False


@pytest.mark.slow
def test_rotation_rules_make_the_local_cloud_rotate_on_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A day lasts 2 s on this cloud and the schedule is checked every second: AutomaticallyAfterDays 1 rotates again
    by itself, with no call, and each scheduled rotation changes the real password."""
    monkeypatch.setenv("RENTALIQ_LOCAL_ROTATION_DAY_SECONDS", "2")
    monkeypatch.setenv("RENTALIQ_LOCAL_ROTATION_SECONDS", "1")
    with private_cloud("rotation-schedule") as cloud:
        _seed(cloud)
        sm = cloud.client("secretsmanager")
        first = sm.rotate_secret(SecretId=CREDS, RotationRules={"AutomaticallyAfterDays": 1})["VersionId"]
        _wait_current(sm, first)
        after_first = _creds(sm)["password"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "AWSCURRENT" in _stages(sm).get(first, []):
            time.sleep(0.2)
        current = next(v for v, s in _stages(sm).items() if "AWSCURRENT" in s)
        assert current != first, "no scheduled rotation within 30 s"
        _wait_current(sm, current)
        sm.rotate_secret(SecretId=CREDS, RotationRules={"AutomaticallyAfterDays": 1000}, RotateImmediately=False)  # hold still
        time.sleep(1.5)  # a scheduled one that had just started ends
        _wait_current(sm, next(v for v, s in _stages(sm).items() if "AWSCURRENT" in s))
        _assert_rotated(cloud, after_first)
