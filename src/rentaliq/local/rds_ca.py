"""``CACertificateIdentifier`` on the local cloud's RDS DB instances, as RDS reports it.

RDS names the CA that signed an instance's server certificate; a new instance gets the account's default,
``rds-ca-rsa2048-g1`` (moto says ``rds-ca-default``, which RDS never reports). Here the local CA
(``rentaliq.local.postgres.ca``) plays that CA's part, so instances report its identifier unless the caller
chose another. An identifier that names no RDS CA is refused as RDS refuses it (CertificateNotFound), so a
typo in a stack fails on the local cloud as it would on AWS. ``DescribeCertificates`` (which moto lacks)
describes the local CA, the one certificate authority this cloud has.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.hazmat.primitives import hashes
from moto.core.responses import ActionResult
from moto.rds import models as rds_models
from moto.rds.exceptions import RDSClientError
from moto.rds.responses import RDSResponse

from rentaliq.local.postgres import CA_IDENTIFIER

# The CAs RDS offers (RDS User Guide, "Certificate authorities"); rds-ca-2019 expired in 2024 but still exists.
RDS_CAS = ("rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1", "rds-ca-2019")
_KEY = "ca_certificate_identifier"
_installed = False


class CertificateNotFound(RDSClientError):
    """RDS's CertificateNotFoundFault (HTTP 404, from the service model)."""

    def __init__(self, identifier: str) -> None:
        super().__init__("CertificateNotFound", f"CertificateIdentifier {identifier} doesn't refer to an existing certificate.")


def _check(db_kwargs: dict[str, Any]) -> None:
    identifier = db_kwargs.get(_KEY)
    if identifier and identifier not in RDS_CAS:
        raise CertificateNotFound(str(identifier))


def _describe_certificates(self: Any) -> ActionResult:
    """The local CA under the identifier it plays; AWS answers CertificateNotFound for an identifier it lacks."""
    from rentaliq.local import rds_postgres
    from rentaliq.local.postgres.ca import ensure_ca

    ca = ensure_ca(rds_postgres.engine().root_dir).cert
    certificate = {
        "CertificateIdentifier": CA_IDENTIFIER,
        "CertificateType": "CA",
        "Thumbprint": ca.fingerprint(hashes.SHA1()).hex(),  # a thumbprint is the SHA-1 of the DER, as RDS reports it
        "ValidFrom": ca.not_valid_before_utc,
        "ValidTill": ca.not_valid_after_utc,
        "CertificateArn": f"arn:aws:rds:{self.region}::cert:{CA_IDENTIFIER}",
        "CustomerOverride": False,
    }
    wanted = self._get_param("CertificateIdentifier")
    if wanted and wanted != CA_IDENTIFIER:
        raise CertificateNotFound(str(wanted))
    return ActionResult({"DefaultCertificateForNewLaunches": CA_IDENTIFIER, "Certificates": [certificate]})


def install() -> None:
    global _installed
    if _installed:
        return
    original_init = rds_models.DBInstance.__init__

    @functools.wraps(original_init)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if not kwargs.get(_KEY) or kwargs[_KEY] == "rds-ca-default":
            kwargs[_KEY] = CA_IDENTIFIER
        original_init(self, *args, **kwargs)

    rds_models.DBInstance.__init__ = init  # type: ignore[method-assign]

    create = rds_models.RDSBackend.create_db_instance

    @functools.wraps(create)
    def create_db_instance(self: Any, db_kwargs: dict[str, Any]) -> Any:
        _check(db_kwargs)
        return create(self, db_kwargs)

    modify = rds_models.RDSBackend.modify_db_instance

    @functools.wraps(modify)
    def modify_db_instance(self: Any, db_instance_identifier: str, db_kwargs: dict[str, Any]) -> Any:
        _check(db_kwargs)
        return modify(self, db_instance_identifier, db_kwargs)

    rds_models.RDSBackend.create_db_instance = create_db_instance  # type: ignore[method-assign]
    rds_models.RDSBackend.modify_db_instance = modify_db_instance  # type: ignore[method-assign]
    RDSResponse.describe_certificates = _describe_certificates  # type: ignore[attr-defined]
    _installed = True
