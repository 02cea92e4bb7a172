"""Fixtures for the runtime SDK's functional tests: one local cloud (moto + PostgreSQL 15) per session.

The cloud is started once (about 2 s) and seeded with the ``lab`` (unversioned) and ``qa``
(versioned) environments; tests that change shared state (rotation, restart) put it back.  The
standard AWS variables are set per test with monkeypatch, so nothing leaks into other tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rentaliq.runtime import Database, Files, RuntimeConfig, Secrets
from tests.functional.runtime.seeded_cloud import SeededCloud
from tests.postgres_dirs import require_postgres


@pytest.fixture(scope="session")
def seeded_cloud() -> Iterator[SeededCloud]:
    require_postgres()
    local = SeededCloud(moto_mode="thread").start()
    try:
        local.seed_env("lab")
        local.seed_env("qa")
        yield local
    finally:
        local.stop()


@pytest.fixture(autouse=True)
def aws_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the standard AWS configuration at the local cloud for tests that use it."""
    if "seeded_cloud" not in request.fixturenames:
        return
    local: SeededCloud = request.getfixturevalue("seeded_cloud")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in local.env_vars().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RENTALIQ_ENV", "lab")


@pytest.fixture
def secrets(seeded_cloud: SeededCloud) -> Secrets:
    return Secrets(RuntimeConfig(env="lab"))


@pytest.fixture
def db(secrets: Secrets) -> Iterator[Database]:
    database = Database(secrets)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def files(secrets: Secrets) -> Iterator[Files]:
    with Files(secrets) as f:
        yield f


@pytest.fixture
def qa_files(seeded_cloud: SeededCloud) -> Iterator[Files]:
    with Files(Secrets(RuntimeConfig(env="qa"))) as f:
        yield f
