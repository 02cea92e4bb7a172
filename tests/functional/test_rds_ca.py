"""``CACertificateIdentifier`` through the RDS API of the local cloud, and the certificate behind it: an instance
reports the RDS CA whose part the local CA plays, its server verifies against that CA under its endpoint's
names, and an identifier that names no RDS CA is refused as RDS refuses it."""

from __future__ import annotations

import botocore.exceptions
import psycopg
import pytest

from rentaliq.local.postgres.ca import local_cloud_ca
from tests.functional.rds_client import SMALL_POSTGRES

PASSWORD = "ca-Pass_word1"


def test_an_instance_reports_the_local_ca_and_its_server_verifies_against_it(rds, cloud) -> None:
    rds.made.append("ca-check-db")
    db = rds.create_db_instance(DBInstanceIdentifier="ca-check-db", MasterUserPassword=PASSWORD, **SMALL_POSTGRES)["DBInstance"]
    assert db["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"  # RDS's default for new instances, which the local CA plays
    described = rds.describe_db_instances(DBInstanceIdentifier="ca-check-db")["DBInstances"][0]
    assert described["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    endpoint = described["Endpoint"]
    bundle = str(local_cloud_ca(cloud.state_dir).path)
    params = {"host": endpoint["Address"], "port": endpoint["Port"], "user": "appadmin", "password": PASSWORD, "dbname": "appdb"}
    with psycopg.connect(**params, sslmode="verify-full", sslrootcert=bundle, connect_timeout=5) as conn:
        assert conn.pgconn.ssl_in_use
    with psycopg.connect(**{**params, "host": "ca-check-db", "hostaddr": endpoint["Address"]}, sslmode="verify-full", sslrootcert=bundle, connect_timeout=5):
        pass  # the certificate also carries the instance's name


def test_the_identifier_can_be_chosen_and_changed(rds) -> None:
    rds.made.append("ca-chosen-db")
    db = rds.create_db_instance(DBInstanceIdentifier="ca-chosen-db", MasterUserPassword=PASSWORD, CACertificateIdentifier="rds-ca-rsa4096-g1", **SMALL_POSTGRES)
    assert db["DBInstance"]["CACertificateIdentifier"] == "rds-ca-rsa4096-g1"
    modified = rds.modify_db_instance(DBInstanceIdentifier="ca-chosen-db", CACertificateIdentifier="rds-ca-rsa2048-g1", ApplyImmediately=True)
    assert modified["DBInstance"]["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"


def test_an_unknown_identifier_is_refused_and_nothing_is_created(rds) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        rds.create_db_instance(DBInstanceIdentifier="ca-typo-db", MasterUserPassword=PASSWORD, CACertificateIdentifier="rds-ca-rsa2048-g2", **SMALL_POSTGRES)
    error = caught.value.response["Error"]
    assert error["Code"] == "CertificateNotFound" and "rds-ca-rsa2048-g2" in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(rds.exceptions.DBInstanceNotFoundFault):
        rds.describe_db_instances(DBInstanceIdentifier="ca-typo-db")


def test_describe_certificates_describes_the_local_ca(rds, cloud) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    answer = rds.describe_certificates()
    assert answer["DefaultCertificateForNewLaunches"] == "rds-ca-rsa2048-g1"
    (cert,) = answer["Certificates"]
    ca = x509.load_pem_x509_certificate(local_cloud_ca(cloud.state_dir).pem)
    assert cert["CertificateIdentifier"] == "rds-ca-rsa2048-g1" and cert["CertificateType"] == "CA"
    assert cert["Thumbprint"] == ca.fingerprint(hashes.SHA1()).hex()
    assert cert["ValidFrom"] == ca.not_valid_before_utc and cert["ValidTill"] == ca.not_valid_after_utc
    assert rds.describe_certificates(CertificateIdentifier="rds-ca-rsa2048-g1")["Certificates"] == [cert]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        rds.describe_certificates(CertificateIdentifier="rds-ca-nope")
    assert caught.value.response["Error"]["Code"] == "CertificateNotFound"
