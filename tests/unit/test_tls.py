"""TLS that verifies: the local CA and its server certificates, the stack's CA identifier and connection URLs,
and the runtime SDK's choice of CA bundle (no server needed for any of these)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding

from rentaliq.contract import RDS_CA_IDENTIFIER, SSLMODE
from rentaliq.local.postgres import self_signed_cert
from rentaliq.local.postgres.ca import CA_DIR, ensure_ca, is_current, issue_server_cert, key_matches
from rentaliq.runtime import ConfigError, Credentials, RuntimeConfig, connection_kwargs
from rentaliq.runtime.config import RDS_CA_BUNDLE_URL
from tests.unit.templates import one

ENVS = ("lab", "qa", "prod")


def test_server_certificate_is_signed_by_the_ca_and_names_only_the_endpoint(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    cert_pem, _ = issue_server_cert(ca, "rentaliq-lab-db")
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.issuer == ca.cert.subject and cert.subject != ca.cert.subject
    assert cert.signature_hash_algorithm is not None
    ca.cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)  # type: ignore[union-attr]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["rentaliq-lab-db"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert RDS_CA_IDENTIFIER in ca.cert.subject.rfc4514_string()


def test_is_current_only_for_this_ca_and_this_instance(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "one")
    cert_pem, _ = issue_server_cert(ca, "db-a")
    assert is_current(cert_pem, ca, "db-a")
    assert not is_current(cert_pem, ca, "db-b")  # renamed, or the standby swapped in by a failover
    assert not is_current(self_signed_cert("db-a")[0], ca, "db-a")  # an older state dir's certificate
    assert not is_current(cert_pem, ensure_ca(tmp_path / "two"), "db-a")  # another state dir's CA
    assert not is_current(b"not a certificate", ca, "db-a")


def test_key_matches_only_the_certificate_issued_with_it(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    cert_pem, key_pem = issue_server_cert(ca, "db-a")
    other_cert, other_key = issue_server_cert(ca, "db-a")
    assert key_matches(cert_pem, key_pem) and key_matches(other_cert, other_key)
    assert not key_matches(cert_pem, other_key) and not key_matches(cert_pem, b"garbage")


def test_one_ca_per_state_dir_even_when_processes_race_to_create_it(tmp_path: Path) -> None:
    made: list[bytes] = []
    threads = [threading.Thread(target=lambda: made.append(ensure_ca(tmp_path).pem)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 1 and len(made) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [CA_DIR]  # no staging directory left behind
    assert (tmp_path / CA_DIR / "ca.key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("env", ENVS)
def test_the_stack_names_its_rds_ca_and_urls_that_verify(synthesized, env) -> None:
    _, db = one(synthesized[env], "AWS::RDS::DBInstance", DBInstanceIdentifier=f"rentaliq-{env}-db")
    assert db["Properties"]["CACertificateIdentifier"] == RDS_CA_IDENTIFIER == "rds-ca-rsa2048-g1"
    assert SSLMODE == "verify-full"
    text = json.dumps(synthesized[env])
    assert text.count("?sslmode=verify-full") == 2 and "sslmode=require" not in text  # DATABASE_URL and JDBC_URL


CREDS = Credentials(username="u", password="pw", host="db.example.com", port=5432, dbname="rentaliq")


def test_sdk_defaults_to_verify_full_with_pgsslrootcert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "global-bundle.pem"
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("PGSSLROOTCERT", str(bundle))
    kwargs = connection_kwargs(CREDS, RuntimeConfig(env="lab"))
    assert (kwargs["sslmode"], kwargs["sslrootcert"]) == ("verify-full", str(bundle))
    other = tmp_path / "from-config.pem"
    other.write_bytes(b"x")
    assert connection_kwargs(CREDS, RuntimeConfig(env="lab", ca_bundle=str(other)))["sslrootcert"] == str(other)  # config wins


def test_sdk_without_a_bundle_names_where_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    with pytest.raises(ConfigError) as caught:
        connection_kwargs(CREDS, RuntimeConfig(env="lab"))
    assert RDS_CA_BUNDLE_URL in str(caught.value) and "$PGSSLROOTCERT" in str(caught.value)
    kwargs = connection_kwargs(CREDS, RuntimeConfig(env="lab", sslmode="require"))  # the explicit opt-out
    assert kwargs["sslmode"] == "require" and "sslrootcert" not in kwargs


def test_sdk_refuses_tls_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="sslmode='disable' is invalid"):
        RuntimeConfig(env="lab", sslmode="disable")
