"""Name rules, instance metadata and certificates of the local PostgreSQL package, without a server."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rentaliq.local.postgres import self_signed_cert
from rentaliq.local.postgres.model import (
    META_FILE,
    Meta,
    PostgresEngineError,
    check_db_name,
    check_instance_id,
    check_password,
    check_port,
    check_role_name,
    meta_json,
    read_meta,
)


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", "-x", "1db", "a" * 64, "db_1", "db.1"])
def test_instance_ids_that_are_not_safe_directory_names_are_refused(bad: str) -> None:
    with pytest.raises(PostgresEngineError, match="invalid DB instance identifier"):
        check_instance_id(bad)


@pytest.mark.parametrize("good", ["d", "db-1", "A" * 63])
def test_rds_shaped_instance_ids_are_accepted(good: str) -> None:
    check_instance_id(good)


@pytest.mark.parametrize("reserved", ["rdsadmin", "RDS_SUPERUSER", "public", "pg_monitor"])
def test_reserved_master_usernames_are_refused(reserved: str) -> None:
    with pytest.raises(PostgresEngineError, match="reserved"):
        check_role_name(reserved)


def test_role_and_database_names_are_limited_to_63_bytes() -> None:
    check_role_name("é" * 31)  # 62 bytes
    with pytest.raises(PostgresEngineError, match="1-63 bytes"):
        check_role_name("é" * 32)  # 64 bytes, 32 characters
    with pytest.raises(PostgresEngineError, match="1-63 bytes"):
        check_db_name("x" * 64)
    with pytest.raises(PostgresEngineError, match="reserved"):
        check_db_name("template1")


def test_a_bad_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(PostgresEngineError) as excinfo:
        check_password("db-1", "secret\x00tail")
    assert "secret" not in str(excinfo.value) and "'db-1'" in str(excinfo.value)


@pytest.mark.parametrize("port", [80, 1023, 65536])
def test_ports_outside_1024_65535_are_refused(port: int) -> None:
    with pytest.raises(PostgresEngineError, match=f"port {port} is outside 1024-65535"):
        check_port("db-1", port)
    check_port("db-1", None)


def test_metadata_round_trips_and_ignores_keys_a_newer_writer_added(tmp_path: Path) -> None:
    meta = Meta(instance_id="db-1", port=24567, force_ssl=True, master_username="postgres", dbname=None, ready=True)
    raw = json.loads(meta_json(meta))
    assert raw["port"] == 24567 and "password" not in " ".join(raw)
    (tmp_path / META_FILE).write_text(json.dumps({**raw, "from_the_future": 1}))
    assert read_meta(tmp_path, "db-1") == meta
    assert read_meta(tmp_path / "absent", "db-1") is None


def test_unreadable_metadata_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / META_FILE).write_text("{not json")
    with pytest.raises(PostgresEngineError, match=f"'db-1': unreadable {META_FILE}"):
        read_meta(tmp_path, "db-1")


def test_certificate_names_the_endpoint_and_matches_its_key() -> None:
    cert_pem, key_pem = self_signed_cert("db-1")
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.IPv4Address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.subject == cert.issuer  # self-signed: clients trust it through sslrootcert
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
