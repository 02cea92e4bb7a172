"""The ``[audit]`` section: the spec's "Audit Trails" (CloudTrail, AWS Config), per environment; on in PROD.

Kept out of :mod:`rentaliq.spec.models` (already large) and imported there. Days are S3 lifecycle days after an
object (a trail's log file, a Config snapshot) was delivered; the rule that orders them is in
:mod:`rentaliq.spec.rules`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_Frozen = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True)


class AuditSpec(BaseModel):
    """Who did what, kept where nobody can quietly change it: a CloudTrail trail (``AWS::CloudTrail::Trail``
    ``rentaliq-{env}-trail``, multi-region, log file validation, SSE-KMS) into its own bucket
    ``rentaliq-{env}-trail-logs``, and an AWS Config recorder with managed rules matching the controls the
    stacks put in place (``AWS::Config::ConfigurationRecorder``, ``DeliveryChannel``, ``ConfigRule``)."""

    model_config = _Frozen

    cloudtrail: bool = False
    """The CloudTrail trail and its logs bucket. Default: off (PROD's built-in spec turns it on). The first
    copy of management events in an account is free; the bucket's storage is not."""
    config: bool = False
    """The AWS Config recorder, its delivery channel and the managed rules. Default: off (PROD turns it on).
    Billed per configuration item recorded and per rule evaluation. AWS allows one recorder per region and
    account: turn it on in one environment per account and region."""
    trail_logs_ia_after_days: int = Field(default=30, ge=30)
    """Days until log files move to S3 Standard-IA; S3 needs at least 30. Default: 30."""
    trail_logs_glacier_after_days: int = Field(default=90, ge=1)
    """Days until log files move to S3 Glacier Flexible Retrieval; after the Standard-IA transition. Default: 90."""
    trail_logs_expire_after_days: int = Field(default=2555, ge=1)
    """Days log files are kept before they are deleted; after the Glacier transition. Default: 2555 (7 years,
    the retention HIPAA and SOX audits usually ask for)."""
