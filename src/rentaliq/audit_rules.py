"""The AWS Config managed rules RentalIQ deploys with ``[audit] config``: one table read by the stack (which rules
exist), ``verify`` (that they exist and evaluate) and the cost (how many evaluations a month).

Each rule checks, continuously and from outside the stack, a control the stacks put in place; a rule belongs here
only when its control is in place in every environment that turns Config on, so a NON_COMPLIANT result is a real
finding rather than a known gap.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ManagedRule:
    identifier: str  # the AWS managed rule's SourceIdentifier
    description: str
    resource_types: tuple[str, ...] = ()  # change-triggered scope; empty: a periodic rule
    needs_trail: bool = False  # only meaningful when the environment has its trail


MANAGED_RULES: tuple[ManagedRule, ...] = (
    ManagedRule("RDS_STORAGE_ENCRYPTED", "The database's storage is encrypted at rest.", ("AWS::RDS::DBInstance",)),
    ManagedRule("RDS_INSTANCE_PUBLIC_ACCESS_CHECK", "The database is not publicly accessible.", ("AWS::RDS::DBInstance",)),
    ManagedRule("DB_INSTANCE_BACKUP_ENABLED", "Automated backups are on.", ("AWS::RDS::DBInstance",)),
    ManagedRule("S3_BUCKET_SSL_REQUESTS_ONLY", "Bucket policies deny requests without TLS.", ("AWS::S3::Bucket",)),
    ManagedRule("S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED", "Buckets encrypt objects by default.", ("AWS::S3::Bucket",)),
    ManagedRule("S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED", "Buckets block public access.", ("AWS::S3::Bucket",)),
    ManagedRule("VPC_FLOW_LOGS_ENABLED", "The VPC has flow logs."),
    ManagedRule("CLOUD_TRAIL_ENABLED", "A CloudTrail trail is logging.", needs_trail=True),
    ManagedRule("CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED", "The trail validates its log files.", needs_trail=True),
    ManagedRule("CLOUD_TRAIL_ENCRYPTION_ENABLED", "The trail's log files are encrypted with KMS.", needs_trail=True),
)


def managed_rules(*, trail: bool) -> tuple[ManagedRule, ...]:
    """The rules an environment deploys: the CloudTrail ones only with its trail."""
    return tuple(rule for rule in MANAGED_RULES if trail or not rule.needs_trail)


CONFIG_KEY_PREFIX = "config"  # Config's deliveries share the trail-logs bucket under this prefix
CONFIG_DELIVERY_FREQUENCY = "TwentyFour_Hours"
