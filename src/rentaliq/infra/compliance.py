"""The compliance packs that run on every synth (cdk-nag 3.x through CDK's policy-validation plugins).

Four packs: AwsSolutions, HIPAA Security, PCI DSS 3.2.1 and NIST 800-53 rev 5. Any finding a pack reports that is not
acknowledged fails the synth, warnings included: cdk-nag 3's plugin reports success only when no unacknowledged
finding of any level remains, and CDK fails the synth on a plugin that did not succeed. We keep it so for every pack
(a warning such as an open default security group is a finding an auditor reads too); tests/unit/test_compliance.py
pins it.

HIPAA Security, PCI DSS and NIST 800-53 r5 share most of their rules: the same cdk-nag rule runs under each pack's
prefix (``HIPAA.Security-S3BucketReplicationEnabled``, ``PCI.DSS.321-S3BucketReplicationEnabled``, ...). One reason
answers all three, so acknowledging a ``HIPAA.Security-`` id acknowledges its twins in the other two packs with the
same reason; an id that only PCI DSS or NIST has is acknowledged under its own prefix. An acknowledgment also skips the
Checkov checks that test the same control, with the same reason (rentaliq.infra.checkov_skips).
"""

from __future__ import annotations

import functools
import re
import tarfile
from importlib import resources

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks
from constructs import IConstruct

from rentaliq.infra.checkov_skips import skip_in_checkov

# The packs' rule prefixes, as cdk-nag names them (the part of a rule id before the dash).
AWS_SOLUTIONS = "AwsSolutions"
HIPAA = "HIPAA.Security"
PCI_DSS = "PCI.DSS.321"
NIST_800_53_R5 = "NIST.800.53.R5"
PACKS = (AWS_SOLUTIONS, HIPAA, PCI_DSS, NIST_800_53_R5)
# The packs whose rules are HIPAA's under another prefix (an acknowledgment of a HIPAA id covers them).
HIPAA_TWINS = (PCI_DSS, NIST_800_53_R5)


def add_compliance_packs(app: App) -> None:
    """Unacknowledged findings fail the synth; acknowledgments live next to their constructs with a reason."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), HIPAASecurityChecks(app), PCIDSS321Checks(app), NIST80053R5Checks(app))


@functools.cache
def nag_rules() -> frozenset[str]:
    """Every rule id of the four packs, as the installed cdk-nag documents them (RULES.md in its jsii bundle)."""
    bundle = next(p for p in resources.files("cdk_nag._jsii").iterdir() if p.name.endswith(".jsii.tgz"))
    with tarfile.open(str(bundle)) as tar:
        member = tar.extractfile("package/RULES.md")
        text = member.read().decode() if member else ""
    prefixes = "|".join(re.escape(pack) for pack in PACKS)
    return frozenset(re.findall(rf"(?:\[|\| )((?:{prefixes})-[A-Za-z0-9]+)", text))


def acknowledged_ids(id: str) -> list[str]:
    """The rule ids one acknowledgment covers: ``id`` itself, and for a HIPAA rule its twins in the packs that have it."""
    prefix = f"{HIPAA}-"
    if not id.startswith(prefix):
        return [id]
    rule = id.removeprefix(prefix)  # may carry a finding, as in RDSLoggingEnabled[LogExport::upgrade]
    return [id, *(f"{pack}-{rule}" for pack in HIPAA_TWINS if f"{pack}-{rule.split('[', 1)[0]}" in nag_rules())]


def acknowledge(construct: IConstruct, *, id: str, reason: str) -> None:
    """Acknowledge one finding on one construct; the reason is mandatory and says why the spec wants it so."""
    if not reason.strip():
        raise ValueError(f"acknowledging {id} on {construct.node.path} needs a reason")
    Validations.of(construct).acknowledge(*(Acknowledgment(id=rule, reason=reason) for rule in acknowledged_ids(id)))
    skip_in_checkov(construct, id, reason)


def acknowledge_secret(secret: IConstruct, customer_managed_key: bool, rotation_reason: str | None) -> None:
    """The findings every RentalIQ secret shares: the spec's AWS-managed key, and no scheduled rotation (unless
    ``rotation_reason`` is None: the secret has a rotation schedule, there is nothing to acknowledge)."""
    if not customer_managed_key:  # [encryption] customer_managed_key off: the environment's key is not there to use
        acknowledge(
            secret,
            id="HIPAA.Security-SecretsManagerUsingKMSKey",
            reason="Spec: Secrets Manager encrypts with AWS-managed keys when encryption.customer_managed_key is off (LAB, QA).",
        )
    for rule in ("AwsSolutions-SMG4", "HIPAA.Security-SecretsManagerRotationEnabled"):
        if rotation_reason is not None:
            acknowledge(secret, id=rule, reason=rotation_reason)
