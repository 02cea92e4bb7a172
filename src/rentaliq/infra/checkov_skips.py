"""Checkov's skips, derived from the nag acknowledgments: one decision, one reason, written beside the construct.

Checkov (tests/unit/test_checkov.py) scans every synthesized template. Most checks it fails on our templates are the
same control a cdk-nag rule checks (versioning, access logs, a customer-managed key, Multi-AZ...), and where the spec
says "not here", infra already acknowledges that rule with its reason. ``CHECKOV_TWINS`` is the skip table: nag rule id
-> the Checkov checks that test the same thing. ``compliance.acknowledge`` writes the matching Checkov skip, with the
acknowledgment's reason as its comment, into the CloudFormation resource's ``Metadata.checkov.skip`` (the form Checkov
reads in templates). So a skip exists exactly where the nag finding is acknowledged: in LAB's files bucket for
versioning, never in PROD's; and when an acknowledgment goes (a customer-managed key arrives), so does the skip.
"""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import IConstruct

CHECKOV_TWINS: dict[str, tuple[str, ...]] = {
    # S3
    "HIPAA.Security-S3BucketLoggingEnabled": ("CKV_AWS_18",),  # Ensure the S3 bucket has access logging enabled
    "HIPAA.Security-S3BucketVersioningEnabled": ("CKV_AWS_21",),  # Ensure the S3 bucket has versioning enabled
    # Encryption with a customer-managed key (the spec's Phase 2)
    "HIPAA.Security-SecretsManagerUsingKMSKey": ("CKV_AWS_149",),  # Ensure that Secrets Manager secret is encrypted using KMS CMK
    "HIPAA.Security-CloudWatchLogGroupEncrypted": ("CKV_AWS_158",),  # Ensure that CloudWatch Log Group is encrypted by KMS
    # RDS
    "HIPAA.Security-RDSMultiAZSupport": ("CKV_AWS_157",),  # Ensure that RDS instances have Multi-AZ enabled
    "HIPAA.Security-RDSEnhancedMonitoringEnabled": ("CKV_AWS_118",),  # Ensure that enhanced monitoring is enabled for RDS instances
    "AwsSolutions-RDS6": ("CKV_AWS_161",),  # Ensure RDS database has IAM authentication enabled
    # Security groups
    "AwsSolutions-EC23": ("CKV_AWS_260",),  # Ensure no security groups allow ingress from 0.0.0.0:0 to port 80
}

METADATA_KEY = "checkov"


def checkov_ids(nag_id: str) -> tuple[str, ...]:
    """The Checkov checks that test what the nag rule ``nag_id`` tests (none if the table has no twin)."""
    return CHECKOV_TWINS.get(nag_id, ())


def skip_in_checkov(construct: IConstruct, nag_id: str, reason: str) -> None:
    """Add the Checkov twins of ``nag_id`` to the skips of ``construct``'s CloudFormation resource, with ``reason``."""
    ids = checkov_ids(nag_id)
    if not ids:
        return
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"acknowledging {nag_id} on {construct.node.path}: no CloudFormation resource to carry its Checkov skip ({', '.join(ids)})")
    metadata = resource.get_metadata(METADATA_KEY) or {"skip": []}
    skips = list(metadata["skip"])
    for check in ids:
        if all(skip["id"] != check for skip in skips):
            skips.append({"id": check, "comment": reason})
    resource.add_metadata(METADATA_KEY, {"skip": skips})
