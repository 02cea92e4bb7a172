"""Local clouds the tests start for themselves: each in its own temp dir on a free port, removed afterwards.

/tmp, because the PostgreSQL servers run as the postgres user when the tests run as root, and that user must
be able to traverse the state dir.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rentaliq.deploy.target import Target
from rentaliq.local.cloud import LocalCloud
from tests.ports import free_port


@contextlib.contextmanager
def private_cloud(name: str) -> Iterator[LocalCloud]:
    home = Path(tempfile.mkdtemp(prefix=f"rentaliq-{name}-", dir="/tmp"))
    home.chmod(0o755)
    instance = LocalCloud(state_dir=home / "state", port=free_port())
    try:
        instance.start(timeout=60)
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(home, ignore_errors=True)


def own_cloud(name: str, why: str) -> Callable[[], Iterator[LocalCloud]]:
    """A module-scoped fixture: a ``private_cloud`` of the module's own, for tests that kill their cloud or break and
    destroy what the session's deployed environments must keep; ``why`` is its docstring."""

    @pytest.fixture(scope="module")
    def cloud() -> Iterator[LocalCloud]:
        with private_cloud(name) as instance:
            yield instance

    cloud.__doc__ = why
    return cloud


def cli_env(cloud: LocalCloud) -> dict[str, str]:
    """Environment variables for a `rentaliq` subprocess that should use ``cloud`` (unwrapped at 200 columns)."""
    return {**os.environ, "RENTALIQ_HOME": str(cloud.state_dir), "RENTALIQ_LOCAL_PORT": str(cloud.port), "COLUMNS": "200"}


def own_cloud_fixtures(name: str, why: str) -> tuple[Any, Any, Any]:
    """``cloud, cloud_env, target = own_cloud_fixtures(...)``: a module's own cloud (``own_cloud``) with the
    subprocess environment and the deploy target that use it, replacing the session's fixtures of those names
    (session-scoped ones cannot use a module-scoped cloud). The target holds its locks in the cloud's state dir,
    as the CLI's does."""

    @pytest.fixture(scope="module")
    def cloud_env(cloud: LocalCloud) -> dict[str, str]:
        return cli_env(cloud)

    @pytest.fixture(scope="module")
    def target(cloud: LocalCloud) -> Target:
        return Target.local(cloud.endpoint_url, state_dir=cloud.state_dir)

    return own_cloud(name, why), cloud_env, target
