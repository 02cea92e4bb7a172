"""The runtime SDK verifies whom it talks to: ``verify-full`` against a CA bundle, by default.

The bundle is the local cloud's CA here (``$PGSSLROOTCERT``, as ``rentaliq local env`` exports it) or a
path in ``RuntimeConfig.ca_bundle`` (on AWS, the RDS bundle). Each way to get it wrong is refused: no
bundle, a bundle of another CA, a host name the certificate does not carry.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from rentaliq.local.postgres import self_signed_cert
from rentaliq.runtime import ConfigError, Credentials, Database, RuntimeConfig, Secrets, connection_kwargs
from rentaliq.runtime.config import RDS_CA_BUNDLE_URL
from tests.functional.runtime.seeded_cloud import TRICKY_PASSWORD, SeededCloud

pytestmark = pytest.mark.functional


def test_default_is_verify_full_against_the_exported_ca(db: Database, seeded_cloud: SeededCloud) -> None:
    status = db.tls_status()
    assert (status.ssl, status.sslmode) == (True, "verify-full")
    with db.connect() as conn:
        params = conn.info.get_parameters()
        assert params.get("sslmode", "verify-full") == "verify-full"
        assert conn.pgconn.ssl_in_use
    kwargs = connection_kwargs(db.secrets.credentials(), db.config)
    assert (kwargs["sslmode"], kwargs["sslrootcert"]) == ("verify-full", str(seeded_cloud.engine.ca_bundle_path))


def test_a_ca_bundle_from_the_config_as_on_aws(seeded_cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PGSSLROOTCERT")
    bundle = tmp_path / "global-bundle.pem"  # AWS's bundle holds many CAs: ours among others verifies the same way
    bundle.write_bytes(self_signed_cert("some-other-ca")[0] + seeded_cloud.engine.ca_bundle_path.read_bytes())
    with Database(Secrets(RuntimeConfig(env="lab", ca_bundle=str(bundle)))) as db:
        assert db.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [(True,)]
        assert db.tls_status().sslmode == "verify-full"


def test_without_a_ca_bundle_the_sdk_refuses_and_says_where_to_get_one(seeded_cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGSSLROOTCERT")
    with pytest.raises(ConfigError) as caught:
        Database(Secrets(RuntimeConfig(env="lab")))
    message = str(caught.value)
    assert "\n" not in message and RDS_CA_BUNDLE_URL in message and "$PGSSLROOTCERT" in message and "ca_bundle" in message
    assert TRICKY_PASSWORD not in message


def test_a_missing_bundle_file_is_named(seeded_cloud: SeededCloud, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=f"ca_bundle='{missing}' is not a readable file"):
        Database(Secrets(RuntimeConfig(env="lab", ca_bundle=str(missing))))


def test_a_server_signed_by_another_ca_is_refused(seeded_cloud: SeededCloud, secrets: Secrets, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(self_signed_cert("not-the-server")[0])
    with Database(secrets, config=RuntimeConfig(env="lab", ca_bundle=str(other_ca))) as db:
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed") as caught:
            db.connect()
    assert TRICKY_PASSWORD not in str(caught.value)


def test_a_host_name_the_certificate_does_not_carry_is_refused(secrets: Secrets) -> None:
    """``localhost`` reaches the very same server, but its certificate names 127.0.0.1 and the instance only."""
    creds = secrets.credentials()
    wrong = Credentials(username=creds.username, password=creds.password, host="localhost", port=creds.port, dbname=creds.dbname)
    with pytest.raises(psycopg.OperationalError, match='does not match host name "localhost"'):
        psycopg.connect(**connection_kwargs(wrong, RuntimeConfig(env="lab"))).close()
    # The same address under the name the certificate carries passes: it is the name that was refused.
    kwargs = connection_kwargs(creds, RuntimeConfig(env="lab"))
    with psycopg.connect(**{**kwargs, "host": creds.db_instance_identifier, "hostaddr": creds.host}) as conn:
        assert conn.pgconn.ssl_in_use


def test_require_is_an_explicit_opt_out_that_still_encrypts(seeded_cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGSSLROOTCERT")
    with Database(Secrets(RuntimeConfig(env="lab", sslmode="require"))) as db:
        status = db.tls_status()
        assert (status.ssl, status.sslmode) == (True, "require")
