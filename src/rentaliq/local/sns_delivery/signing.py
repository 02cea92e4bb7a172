"""SNS message signatures as AWS makes them, with a certificate the local cloud serves.

AWS signs every HTTP(S) and email-json message: SignatureVersion "1" is RSA with SHA1 (the default), "2" RSA with
SHA256 (the topic attribute ``SignatureVersion``), over a canonical string of selected fields, each as
``name\\nvalue\\n`` in this order (Amazon SNS Developer Guide, "Verifying the signatures of Amazon SNS messages"):

- Notification: Message, MessageId, Subject (if present), Timestamp, TopicArn, Type
- SubscriptionConfirmation and UnsubscribeConfirmation: Message, MessageId, SubscribeURL, Timestamp, Token,
  TopicArn, Type

The key and its self-signed certificate (CN sns.amazonaws.com) are made once per state directory (the key 0600) so
subscribers can keep trusting the certificate across restarts; the certificate is served at
``<endpoint>/SimpleNotificationService-<digest>.pem``, AWS's path shape.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def canonical(message: dict[str, Any]) -> str:
    """The string AWS signs for ``message`` (its ``Type`` chooses the fields)."""
    fields = NOTIFICATION_FIELDS if message.get("Type") == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None)


class Signer:
    """The local cloud's SNS signing key and certificate, kept under ``<state_dir>/sns``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path, cert_path = directory / "signing-key.pem", directory / "signing-cert.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            self.key = key
            self.cert_pem = cert_path.read_bytes()
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.cert_pem = self._certificate()
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            cert_path.write_bytes(self.cert_pem)
        self.cert_name = f"SimpleNotificationService-{hashlib.sha256(self.cert_pem).hexdigest()[:32]}.pem"

    def _certificate(self) -> bytes:
        now = datetime.now(UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        issuer = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RentalIQ local cloud"),
                x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def cert_url(self, endpoint: str) -> str:
        return f"{endpoint.rstrip('/')}/{self.cert_name}"

    def sign(self, message: dict[str, Any], endpoint: str, version: str = "1") -> dict[str, Any]:
        """``message`` with SignatureVersion, Signature and SigningCertURL added."""
        digest = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self.key.sign(canonical(message).encode("utf-8"), padding.PKCS1v15(), digest)
        return {
            **message,
            "SignatureVersion": "2" if version == "2" else "1",
            "Signature": base64.b64encode(signature).decode("ascii"),
            "SigningCertURL": self.cert_url(endpoint),
        }
