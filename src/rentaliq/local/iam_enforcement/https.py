"""The enforcing local cloud's TLS listener certificate: self-signed, for 127.0.0.1, ::1 and localhost.

Made once per state dir (``<state>/tls/local-https.pem`` and ``.key``) and reused, so a client that trusts it
(``AWS_CA_BUNDLE``, boto3's ``verify=``) keeps trusting it across restarts. Requests over this listener are the
ones the enforcing cloud counts as ``aws:SecureTransport``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path


def certificate(state_dir: Path) -> tuple[Path, Path]:
    folder = state_dir / "tls"
    cert, key = folder / "local-https.pem", folder / "local-https.key"
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RentalIQ local cloud")])
    now = datetime.datetime.now(datetime.UTC)
    alt = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    )
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(alt, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(key, 0o600)
    cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    return cert, key
