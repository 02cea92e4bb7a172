"""The ``[encryption]`` table: whether an environment's data is under its own customer-managed KMS key.

Kept apart from :mod:`rentaliq.spec.models` so the key's one switch and its documentation live together. The
spec allows AWS-managed keys (LAB and QA keep them, for cost: a customer-managed key is $1 a month plus its
requests); PROD turns the key on (issue 12 section 4, the spec's Phase 2).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

_Frozen = ConfigDict(frozen=True, extra="forbid", strict=True, use_attribute_docstrings=True)


class EncryptionSpec(BaseModel):
    """Encryption at rest: AWS-managed keys, or one customer-managed KMS key ``alias/rentaliq-{env}`` per environment."""

    model_config = _Frozen

    customer_managed_key: bool = False
    """A KMS key ``alias/rentaliq-{env}`` (rotation on, a key policy limited to the environment's services and
    its app role) that encrypts the RDS storage (KmsKeyId), the files bucket (SSE-KMS with bucket keys), the
    four secrets, the alerts topic and the flow-log group. Off, each service uses its AWS-managed key and the
    alerts topic keeps its own key. RDS cannot change the key of a live instance: switching it on a deployed
    environment is refused (a new key means a new, empty instance). Default: false (PROD's built-in spec: true)."""
