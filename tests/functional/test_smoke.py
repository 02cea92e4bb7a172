"""`rentaliq smoke ENV` against each deployed environment, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

EXPECTED_STEPS = {
    "lab": ["credentials", "tls connection", "row round-trip", "object upload/download/delete"],
    "qa": ["credentials", "tls connection", "row round-trip", "object upload/download/delete", "version restore"],
    "prod": ["credentials", "tls connection", "row round-trip", "object upload/download/delete", "version restore", "access logging"],
}


def secret_values(target, env):
    sm = target.client("secretsmanager")
    values = []
    for name in ("db/credentials", "api/keys"):
        values += [
            v for v in json.loads(sm.get_secret_value(SecretId=f"rentaliq/{env}/{name}")["SecretString"]).values() if isinstance(v, str) and len(v) >= 16
        ]
    return values


@pytest.mark.parametrize("env", ["lab", "qa", "prod"])
def test_smoke_runs_every_step_and_leaks_nothing(deployed, target, cloud_env, env):
    result = subprocess.run([sys.executable, "-m", "rentaliq.cli", "smoke", env, "--json"], capture_output=True, text=True, env=cloud_env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]] == EXPECTED_STEPS[env]
    assert all(s["ok"] and s["milliseconds"] > 0 for s in report["steps"])
    assert "TLSv1" in report["steps"][1]["detail"]
    # PROD's upload is under its customer-managed key (s3/config names it); LAB and QA keep SSE-S3.
    assert ("SSE aws:kms" if env == "prod" else "SSE AES256") in report["steps"][3]["detail"]
    for value in secret_values(target, env):
        assert value not in result.stdout and value not in result.stderr


def test_smoke_fails_when_the_database_is_down(deployed, target, cloud_env):
    rds = target.client("rds")
    rds.stop_db_instance(DBInstanceIdentifier="rentaliq-qa-db")
    try:
        result = subprocess.run([sys.executable, "-m", "rentaliq.cli", "smoke", "qa"], capture_output=True, text=True, env=cloud_env, timeout=300)
    finally:
        rds.start_db_instance(DBInstanceIdentifier="rentaliq-qa-db")
    assert result.returncode == 1
    assert "✗ tls connection" in result.stdout and "failed" in result.stdout.splitlines()[-1]
