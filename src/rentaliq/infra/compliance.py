"""The compliance packs that run on every synth (cdk-nag 3.x through CDK's policy-validation plugins)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks
from constructs import IConstruct


def add_compliance_packs(app: App) -> None:
    """Unacknowledged errors fail the synth; acknowledgments live next to their constructs with a reason."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), HIPAASecurityChecks(app))


def acknowledge(construct: IConstruct, *, id: str, reason: str) -> None:
    """Acknowledge one finding on one construct; the reason is mandatory and says why the spec wants it so."""
    if not reason.strip():
        raise ValueError(f"acknowledging {id} on {construct.node.path} needs a reason")
    Validations.of(construct).acknowledge(Acknowledgment(id=id, reason=reason))


def acknowledge_secret(secret: IConstruct, customer_managed_key: bool, rotation_reason: str) -> None:
    """The findings every RentalIQ secret shares: the spec's AWS-managed key, and no scheduled rotation."""
    if not customer_managed_key:  # [encryption] customer_managed_key off: the environment's key is not there to use
        for pack in ("HIPAA.Security", "PCI.DSS.321", "NIST.800.53.R5"):
            acknowledge(
                secret,
                id=f"{pack}-SecretsManagerUsingKMSKey",
                reason="Spec: Secrets Manager encrypts with AWS-managed keys when encryption.customer_managed_key is off (LAB, QA).",
            )
    for rule in ("AwsSolutions-SMG4", "HIPAA.Security-SecretsManagerRotationEnabled"):
        acknowledge(secret, id=rule, reason=rotation_reason)
