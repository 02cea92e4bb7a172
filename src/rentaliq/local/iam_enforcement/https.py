"""The enforcing local cloud's TLS listener certificate, issued by the local cloud's own CA.

The CA (``rentaliq.local.postgres.ca``, one per state dir) already plays the part of AWS's RDS bundle for the
PostgreSQL servers; signing the API listener's certificate with it too means one trust bundle for every client:
``AWS_CA_BUNDLE`` (boto3, the AWS CLI) and ``PGSSLROOTCERT`` / ``NODE_EXTRA_CA_CERTS`` name the same file. The
listener's certificate names 127.0.0.1, ::1 and localhost; it is issued afresh at every start (clients trust the CA,
never the leaf), into ``<state>/tls/``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path


def certificate(state_dir: Path) -> tuple[Path, Path, Path]:
    """(the CA bundle clients trust, the listener's certificate chain, its key) for the server at ``state_dir``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from rentaliq.local.postgres.ca import local_cloud_ca

    ca = local_cloud_ca(state_dir)
    folder = state_dir / "tls"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RentalIQ local cloud API")]))
        .issuer_name(ca.cert.subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=397), ca.cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    cert, key = folder / "api.pem", folder / "api.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.pem)
    return ca.path, cert, key
