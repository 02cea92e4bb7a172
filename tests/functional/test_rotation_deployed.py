"""Rotation end to end on a deployed PROD (issue 12 section 5): the stack's hosted rotation schedule deploys on the
local cloud, `verify` checks it against the spec, `rentaliq rotate prod --confirm-prod` rotates the real password,
and afterwards every secrets check (the connection string's password included) still passes."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from rentaliq import naming
from rentaliq.deploy.lifecycle import up
from rentaliq.deploy.target import Target
from rentaliq.environments import load_spec
from rentaliq.local.postgres.ca import local_cloud_ca
from rentaliq.ops.verify import FAIL, verify
from tests.clouds import cli_env, own_cloud

pytestmark = pytest.mark.slow

rotation_deployed_cloud = own_cloud("rotation-deployed", "A cloud with PROD deployed, whose credentials these tests rotate.")
CREDS = naming.secret_path("prod", "db/credentials")


def _failures(target: Target) -> list[str]:
    return [f"{c.area} {c.name}: expected {c.expected}, got {c.actual}" for c in verify(target, load_spec("prod")) if c.status == FAIL]


def test_prod_rotation_schedule_verify_and_rentaliq_rotate(rotation_deployed_cloud, tmp_path) -> None:
    cloud = rotation_deployed_cloud
    target = Target.local(cloud.endpoint_url, state_dir=cloud.state_dir)
    up(target, [load_spec("prod")], tmp_path / "cdk.out")
    sm = cloud.client("secretsmanager", region=load_spec("prod").region)
    described = sm.describe_secret(SecretId=CREDS)
    assert described["RotationEnabled"] is True and described["RotationRules"]["AutomaticallyAfterDays"] == 30
    checks = {c.name: c for c in verify(target, load_spec("prod")) if c.name.startswith(f"{CREDS} rotation")}
    assert {c.status for c in checks.values()} == {"pass"}, checks
    assert len(checks) == 3
    before = json.loads(sm.get_secret_value(SecretId=CREDS)["SecretString"])["password"]

    refused = subprocess.run([sys.executable, "-m", "rentaliq.cli", "rotate", "prod"], env=cli_env(cloud), capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "--confirm-prod" in refused.stderr
    done = subprocess.run(
        [sys.executable, "-m", "rentaliq.cli", "rotate", "prod", "--confirm-prod"], env=cli_env(cloud), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    creds = json.loads(sm.get_secret_value(SecretId=CREDS)["SecretString"])
    assert creds["password"] != before and before not in done.stdout + done.stderr and creds["password"] not in done.stdout + done.stderr
    url = json.loads(sm.get_secret_value(SecretId=naming.secret_path("prod", "db/connection-string"))["SecretString"])["DATABASE_URL"]
    with psycopg.connect(url, sslrootcert=str(local_cloud_ca(cloud.state_dir).path), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (creds["username"],)
    assert _failures(target) == []
