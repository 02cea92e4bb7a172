"""The local cloud's certificate authority: it plays the part of AWS's RDS CA bundle.

On AWS every RDS server certificate chains to an RDS CA (``rds-ca-rsa2048-g1`` by default), and
clients verify with ``sslmode=verify-full`` against the bundle AWS publishes. Here one CA per
state directory signs every local PostgreSQL server's certificate, with the instance's endpoint
names in its SAN, so the same clients (libpq, psycopg, Node's ``pg``, JDBC) verify the same way
with ``PGSSLROOTCERT`` / ``NODE_EXTRA_CA_CERTS`` pointing at :func:`bundle_path`.

Layout, beside the instance directories (a dot name is never an instance identifier)::

    <root_dir>/.ca/
        ca.pem   the CA certificate: the bundle clients trust (0644)
        ca.key   its private key (0600, never leaves this directory)

The CA is created once, atomically (built in a temporary directory, then renamed into place), so
two processes that race to create it agree on one CA and a crash never leaves half of one.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rentaliq.contract import RDS_CA_IDENTIFIER
from rentaliq.local.postgres.model import HOST

CA_DIR = ".ca"
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CA_IDENTIFIER = RDS_CA_IDENTIFIER
"""The RDS CA whose part the local CA plays: what DescribeDBInstances reports as CACertificateIdentifier."""
CA_COMMON_NAME = f"RentalIQ local cloud CA ({CA_IDENTIFIER})"
_CA_YEARS = 20
_SERVER_YEARS = 10
_BACKDATE = datetime.timedelta(minutes=5)  # a client clock slightly behind still accepts a brand-new certificate


@dataclass(frozen=True)
class LocalCA:
    """The CA of one state directory: its certificate (the trust bundle) and its signing key."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    path: Path
    """The PEM bundle clients trust (sslrootcert=, PGSSLROOTCERT, NODE_EXTRA_CA_CERTS)."""

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def local_cloud_ca(state_dir: Path) -> LocalCA:
    """The CA of the local cloud whose state dir this is (its engine's root is ``<state>/postgres``, see
    ``rentaliq.local.rds_postgres.install``); created when the cloud has not made it yet."""
    return ensure_ca(Path(state_dir) / "postgres")


def bundle_path(root_dir: Path) -> Path:
    """Where the CA bundle of the engine under ``root_dir`` lives (whether or not it exists yet)."""
    return Path(root_dir) / CA_DIR / CA_CERT_FILE


def ensure_ca(root_dir: Path) -> LocalCA:
    """The CA under ``root_dir``, created on first use; every later call (any process) loads the same one."""
    root_dir = Path(root_dir)
    final = root_dir / CA_DIR
    if not (final / CA_KEY_FILE).exists():
        _create(root_dir, final)
    return _load(final)


def _create(root_dir: Path, final: Path) -> None:
    if not root_dir.exists():
        root_dir.mkdir(parents=True)
        os.chmod(root_dir, 0o755)  # the server user (postgres, when run as root) traverses it to its instances
    staging = Path(tempfile.mkdtemp(prefix=".ca-new-", dir=root_dir))
    try:
        os.chmod(staging, 0o755)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RentalIQ"), x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=365 * _CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        key_file = staging / CA_KEY_FILE
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (staging / CA_CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        os.chmod(staging / CA_CERT_FILE, 0o644)
        try:
            staging.rename(final)  # atomic; fails when another process got there first
        except OSError:
            if not (final / CA_KEY_FILE).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load(directory: Path) -> LocalCA:
    cert = x509.load_pem_x509_certificate((directory / CA_CERT_FILE).read_bytes())
    key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{directory / CA_KEY_FILE}: not an RSA key")
    return LocalCA(cert, key, directory / CA_CERT_FILE)


def server_names(instance_id: str) -> list[x509.GeneralName]:
    """The endpoint's names: the address DescribeDBInstances reports (127.0.0.1) and the instance's own name
    (``host=rentaliq-lab-db hostaddr=127.0.0.1`` checks which server answers).  Not ``localhost``: like an RDS
    certificate, it names the endpoint and nothing else, so a client that dials another name is refused."""
    return [
        x509.DNSName(instance_id.lower()),
        x509.IPAddress(ipaddress.IPv4Address(HOST)),
    ]


def issue_server_cert(ca: LocalCA, instance_id: str) -> tuple[bytes, bytes]:
    """(certificate PEM, unencrypted PKCS#8 key PEM) for the instance's server, signed by the CA.

    A P-256 key is generated in ~1 ms (RSA-2048 costs ~100 ms), keeping create() and restores fast.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, instance_id.lower())]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + datetime.timedelta(days=365 * _SERVER_YEARS), ca.cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(server_names(instance_id)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def is_current(cert_pem: bytes, ca: LocalCA, instance_id: str) -> bool:
    """Whether a server certificate was signed by this CA for this instance's names and is not about to expire.

    False for the self-signed certificates of older state directories and after a rename, so the
    server gets a new one on its next start.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        public_key = ca.key.public_key()
        if cert.issuer != ca.cert.subject or cert.signature_hash_algorithm is None:
            return False
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, InvalidSignature, x509.ExtensionNotFound):
        return False
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    return set(server_names(instance_id)) <= set(san) and cert.not_valid_after_utc > soon


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether the private key is the certificate's (a server refuses to start with a mismatched pair)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    pem = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(cert.public_key().public_bytes(*pem) == key.public_key().public_bytes(*pem))
