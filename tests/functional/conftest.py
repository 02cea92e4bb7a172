"""The local cloud, started once per test session on a free port in a temp dir, and deployed environments.

Real components only: a moto server process (with our extensions) and real PostgreSQL servers on loopback.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rentaliq.deploy.target import Target
from rentaliq.environments import load_spec
from tests.functional.rds_client import recording_client
from tests.ports import free_port


@pytest.fixture(scope="session", autouse=True)
def server_errors_file(tmp_path_factory) -> Path:
    """Every local cloud the tests start (directly or through the CLI) reports its HTTP 5xx answers here."""
    from rentaliq.local.server import SERVER_ERRORS_ENV

    path = tmp_path_factory.getbasetemp() / "server-errors.log"
    path.touch()
    os.environ[SERVER_ERRORS_ENV] = str(path)
    return path


@pytest.fixture(autouse=True)
def no_server_errors(server_errors_file):
    """A 500 from the local cloud is a bug, even when botocore's retries hid it from the test: fail the test."""
    before = server_errors_file.stat().st_size
    yield
    with server_errors_file.open(encoding="utf-8") as errors:
        errors.seek(before)
        new = errors.read().strip()
    if new:
        pytest.fail(f"the local cloud answered HTTP 5xx during this test:\n{new}", pytrace=False)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/functional" in str(item.fspath):
            item.add_marker(pytest.mark.functional)


@pytest.fixture(scope="session")
def cloud_home():
    # /tmp, traversable by the postgres user that runs the servers when the tests run as root.
    home = Path(tempfile.mkdtemp(prefix="rentaliq-test-", dir="/tmp"))
    os.chmod(home, 0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def cloud(cloud_home):
    from rentaliq.local.cloud import LocalCloud

    os.environ.setdefault("RENTALIQ_LOCAL_ARCHIVE_SECONDS", "1")  # tests wait seconds, not a minute, for the WAL archive
    os.environ.setdefault("RENTALIQ_LOCAL_METRICS_SECONDS", "1")  # ... for metrics from the servers
    os.environ.setdefault("RENTALIQ_LOCAL_ALARM_SECONDS", "1")  # ... and for alarm evaluations
    instance = LocalCloud(state_dir=cloud_home / "state", port=free_port())
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def cloud_env(cloud, cloud_home):
    """Environment variables for a `rentaliq` subprocess that should use this session's cloud."""
    return {**os.environ, "RENTALIQ_HOME": str(cloud.state_dir), "RENTALIQ_LOCAL_PORT": str(cloud.port), "COLUMNS": "200"}


@pytest.fixture(scope="session")
def target(cloud) -> Target:
    return Target.local(cloud.endpoint_url)


@pytest.fixture(scope="session")
def outdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def deployed(target, outdir):
    """All three environments, deployed once through `up`; returns {env: UpResult}."""
    from rentaliq.deploy.lifecycle import up

    specs = [load_spec(e) for e in ("lab", "qa", "prod")]
    return {r.spec.name.value: r for r in up(target, specs, outdir)}


@pytest.fixture
def rds(cloud):
    """An RDS client without retries that records every HTTP 5xx; a test that met one fails."""
    client, server_errors = recording_client(cloud)
    client.made = []
    yield client
    for name in client.made:
        try:
            client.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
        except client.exceptions.DBInstanceNotFoundFault:
            pass
    assert not server_errors, server_errors
