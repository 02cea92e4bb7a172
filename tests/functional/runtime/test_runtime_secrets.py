"""Secrets: reads by logical name, the cache (TTL, jitter, refresh, threads) and the documented errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from rentaliq import naming
from rentaliq.runtime import (
    ConfigError,
    Credentials,
    InvalidSecret,
    RuntimeConfig,
    S3Config,
    SecretNotFound,
    Secrets,
    SecretUnavailable,
    SecretValue,
    fetch_credentials,
)
from tests.functional.runtime.seeded_cloud import REGION, SeededCloud

pytestmark = pytest.mark.functional


def counting_client() -> tuple[Any, list[str]]:
    """A real client of the local cloud that records every GetSecretValue it sends."""
    client = boto3.client("secretsmanager")
    calls: list[str] = []
    client.meta.events.register("before-parameter-build.secrets-manager.GetSecretValue", lambda params, **_: calls.append(params["SecretId"]))
    return client, calls


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- reads


@pytest.mark.parametrize("name", naming.SECRET_NAMES)
def test_reads_each_secret_by_logical_name(seeded_cloud: SeededCloud, secrets: Secrets, name: str) -> None:
    value = secrets.get(name)
    assert isinstance(value, SecretValue)
    assert value.name == name
    assert value.secret_id == f"rentaliq/lab/{name}"
    assert value.version_id
    assert value.reveal() == seeded_cloud.read_secret("lab", name)


def test_typed_views(seeded_cloud: SeededCloud, secrets: Secrets) -> None:
    creds = secrets.credentials()
    assert isinstance(creds, Credentials)
    assert (creds.username, creds.dbname, creds.db_instance_identifier) == ("rentaliq_admin", "rentaliq", "rentaliq-lab-db")
    assert isinstance(creds.port, int) and creds.port == seeded_cloud.db_endpoint.port
    assert creds.password == seeded_cloud.password
    assert secrets.s3_config() == S3Config("rentaliq-lab-files", "arn:aws:s3:::rentaliq-lab-files", REGION)
    assert set(secrets.api_keys()) == {"api_key", "jwt_secret", "encryption_key"}
    assert secrets.credentials() is creds  # parsed once per fetched value


def test_environment_from_argument_or_variable(seeded_cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENTALIQ_ENV", "qa")
    assert Secrets().env == "qa"
    assert Secrets().s3_config().bucket_name == "rentaliq-qa-files"
    assert Secrets(RuntimeConfig(env="lab")).s3_config().bucket_name == "rentaliq-lab-files"  # the argument wins
    monkeypatch.delenv("RENTALIQ_ENV")
    with pytest.raises(ConfigError, match="RENTALIQ_ENV"):
        Secrets()
    with pytest.raises(ConfigError, match="env="):
        RuntimeConfig(env="Bad Env")


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(TypeError):
        RuntimeConfig(secret_ttl=5)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="unknown setting 'secret_ttl'; allowed: env, secret_ttl_s"):
        RuntimeConfig.from_mapping({"env": "lab", "secret_ttl": 5})
    with pytest.raises(ConfigError) as info:
        RuntimeConfig(secret_ttl_s=-1, sslmode="disable", pool_max_size=0)
    assert len(info.value.problems) >= 3
    assert RuntimeConfig(env="lab").replace(secret_ttl_s=5).secret_ttl_s == 5


def test_inventory_and_fetch_credentials(seeded_cloud: SeededCloud, secrets: Secrets) -> None:
    infos = secrets.inventory()
    assert [i.name for i in infos] == list(naming.SECRET_NAMES)
    assert infos[0].fields == ("dbInstanceIdentifier", "dbname", "engine", "host", "password", "port", "username")
    assert fetch_credentials("lab").host == "127.0.0.1"


# --------------------------------------------------------------------------- cache


def test_cached_reads_make_no_request(seeded_cloud: SeededCloud) -> None:
    client, calls = counting_client()
    secrets = Secrets(RuntimeConfig(env="lab"), client=client)
    first = secrets.get("api/keys")
    for _ in range(100):
        assert secrets.get("api/keys") is first
    assert calls == ["rentaliq/lab/api/keys"]


def test_ttl_with_jitter(seeded_cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    client, calls = counting_client()
    secrets = Secrets(RuntimeConfig(env="lab", secret_ttl_s=100, secret_ttl_jitter=0.2), client=client, clock=clock)
    secrets.get("s3/config")
    expiry = secrets._entries["s3/config"][1]
    assert clock.now + 80 <= expiry <= clock.now + 100  # up to 20 % early, never late
    clock.now = expiry - 0.01
    secrets.get("s3/config")
    assert len(calls) == 1
    clock.now = expiry + 0.01
    secrets.get("s3/config")
    assert len(calls) == 2
    expiries = set()
    for _ in range(20):
        secrets.refresh("s3/config")
        expiries.add(round(secrets._entries["s3/config"][1] - clock.now, 3))
    assert len(expiries) > 1  # jittered: replicas do not refresh in lock-step


def test_ttl_zero_disables_the_cache(seeded_cloud: SeededCloud) -> None:
    client, calls = counting_client()
    secrets = Secrets(RuntimeConfig(env="lab", secret_ttl_s=0), client=client)
    secrets.get("s3/config")
    secrets.get("s3/config")
    assert len(calls) == 2


def test_refresh_on_demand_sees_a_new_version(seeded_cloud: SeededCloud, secrets: Secrets) -> None:
    before = secrets.get("api/keys")
    original = seeded_cloud.read_secret("lab", "api/keys")
    try:
        seeded_cloud.put_secret("lab", "api/keys", {**original, "api_key": "ak_rotated_" + "0" * 20})
        assert secrets.get("api/keys") is before  # still cached
        after = secrets.refresh("api/keys")
        assert after["api_key"].startswith("ak_rotated_")
        assert after.version_id != before.version_id
        assert secrets.get("api/keys") is after
    finally:
        seeded_cloud.put_secret("lab", "api/keys", original)


def run_threads(n: int, target: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(target())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    return results


def test_concurrent_misses_cause_one_request(seeded_cloud: SeededCloud) -> None:
    client, calls = counting_client()
    secrets = Secrets(RuntimeConfig(env="lab"), client=client)
    results = run_threads(32, lambda: secrets.get("db/credentials"))
    assert len(calls) == 1
    assert all(r is results[0] for r in results)


def test_concurrent_refreshes_of_the_same_stale_value_cause_one_request(seeded_cloud: SeededCloud) -> None:
    client, calls = counting_client()
    secrets = Secrets(RuntimeConfig(env="lab"), client=client)
    stale = secrets.get("db/credentials")
    results = run_threads(16, lambda: secrets.refresh("db/credentials", stale=stale))
    assert len(calls) == 2  # the first read and one refresh
    assert all(r is results[0] and r is not stale for r in results)


def test_transient_failure_serves_the_cached_value(seeded_cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    client = boto3.client("secretsmanager")
    secrets = Secrets(RuntimeConfig(env="lab", secret_ttl_s=10), client=client, clock=clock)
    value = secrets.get("s3/config")
    clock.now += 11
    with Stubber(client) as stub:
        stub.add_client_error("get_secret_value", service_error_code="ServiceUnavailable", http_status_code=503)
        assert secrets.get("s3/config") is value  # served stale, with a warning
        stub.add_client_error("get_secret_value", service_error_code="ServiceUnavailable", http_status_code=503)
        with pytest.raises(SecretUnavailable, match="rentaliq/lab/s3/config"):
            secrets.refresh("s3/config")  # an explicit refresh does not hide the failure


# --------------------------------------------------------------------------- errors


def test_missing_secret_names_it(seeded_cloud: SeededCloud) -> None:
    secrets = Secrets(RuntimeConfig(env="prod"))  # never seeded
    with pytest.raises(SecretNotFound) as info:
        secrets.get("db/credentials")
    err = info.value
    assert (err.name, err.secret_id) == ("db/credentials", "rentaliq/prod/db/credentials")
    assert "'db/credentials'" in str(err) and "rentaliq/prod/db/credentials" in str(err) and "'prod'" in str(err)
    assert err.__cause__ is None and err.__context__ is None


# Access denied: a real denial by the enforcing local cloud, tests/functional/test_least_privilege.py
# (test_runtime_sdk_turns_a_denial_into_its_clear_error) replaces the Stubber-based test that stood here.


def test_malformed_secret_is_reported_without_its_value() -> None:
    client = boto3.client("secretsmanager", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    body = "not json: hunter2-very-secret"
    response = {
        "ARN": "arn:aws:secretsmanager:eu-west-3:123456789012:secret:rentaliq/lab/api/keys-AbCdEf",
        "Name": "rentaliq/lab/api/keys",
        "VersionId": "v" * 32,
        "SecretString": body,
    }
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", response, {"SecretId": "rentaliq/lab/api/keys"})
        with pytest.raises(InvalidSecret) as info:
            Secrets(RuntimeConfig(env="lab"), client=client).get("api/keys")
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)
    assert info.value.__context__ is None  # the JSON error (which keeps the document) is not chained

    missing = {**response, "SecretString": '{"username": "u", "password": "hunter2-very-secret"}'}
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", {**missing, "Name": "rentaliq/lab/db/credentials"}, {"SecretId": "rentaliq/lab/db/credentials"})
        with pytest.raises(InvalidSecret, match="missing field 'host'") as info:
            Secrets(RuntimeConfig(env="lab"), client=client).credentials()
    assert "hunter2" not in str(info.value)


def test_unknown_logical_name_is_refused(secrets: Secrets) -> None:
    with pytest.raises(ValueError, match="unknown secret 'db/password'"):
        secrets.get("db/password")


def test_values_are_masked(seeded_cloud: SeededCloud, secrets: Secrets) -> None:
    value = secrets.get("db/credentials")
    creds = secrets.credentials()
    for text in (repr(value), str(value), f"{value}", repr(creds), str(creds), f"{creds!r}", repr([value, creds])):
        assert seeded_cloud.password not in text
        assert "***" in text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(value)
