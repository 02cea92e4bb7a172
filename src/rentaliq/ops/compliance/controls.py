"""What the compliance report states, as data: the frameworks the spec claims, the controls in place, the known gaps.

Each control names where it is built (construct paths inside the environment's stack), which cdk-nag rules check it at
synth, and which ``rentaliq verify`` checks prove it on the live environment. tests/unit/test_compliance_report.py
checks every name against the code (the construct exists, the rule is one of cdk-nag's, the verify check is one that
``rentaliq.ops.verify`` records) and every gap against the acknowledgments in the stack, so this table cannot drift
from what is built. A control the spec turns off in an environment (``required``) is reported there as a gap, with the
spec setting that turns it on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rentaliq.environments import EnvironmentSpec

SOC2, HIPAA, PCI_DSS, GDPR = "SOC 2", "HIPAA", "PCI DSS", "GDPR"


@dataclass(frozen=True)
class Framework:
    name: str
    spec_claim: str  # the spec's words (ARCHITECTURE.md, "Compliance Frameworks")
    nag_pack: str | None  # the cdk-nag pack that checks it at synth, if there is one
    note: str


FRAMEWORKS = (
    Framework(SOC2, "supports", None, "No cdk-nag pack covers SOC 2; its technical controls are evidenced by the NIST 800-53 r5 and AwsSolutions rules."),
    Framework(HIPAA, "supports, with additional configuration", "HIPAA.Security", "HIPAA Security Rule safeguards (45 CFR 164.308-164.312)."),
    Framework(PCI_DSS, "supports, with additional configuration", "PCI.DSS.321", "PCI DSS 3.2.1; the NIST 800-53 r5 pack runs beside it."),
    Framework(GDPR, "supports, with proper data handling", None, "No cdk-nag pack covers GDPR; Art. 32's technical measures are the controls below."),
)
ALL = (SOC2, HIPAA, PCI_DSS, GDPR)


@dataclass(frozen=True)
class VerifyCheck:
    """A ``rentaliq verify`` check: its area and its name, with {files_bucket}-style placeholders for this environment's names."""

    area: str
    name: str


@dataclass(frozen=True)
class Control:
    key: str
    title: str
    frameworks: tuple[str, ...]
    constructs: tuple[str, ...]  # construct paths inside the stack (rentaliq-{env}/...)
    nag_rules: tuple[str, ...]
    verify: tuple[VerifyCheck, ...]
    required: Callable[[EnvironmentSpec], bool] = lambda spec: True
    off_because: str = ""  # why the spec turns it off in some environments
    setting: str = ""  # the spec setting that turns it on
    covered_by_gap: str = ""  # where off, the Gap (by key) that already says so: the report lists it once, as that gap


@dataclass(frozen=True)
class Gap:
    """Something a framework asks for that RentalIQ does not do (yet): said plainly, with the configuration that closes it."""

    key: str
    frameworks: tuple[str, ...]
    missing: str
    configuration: str
    acknowledged: tuple[str, ...] = ()  # the nag rules acknowledged because of this gap (HIPAA ids cover their PCI/NIST twins)
    open: Callable[[EnvironmentSpec], bool] = lambda spec: True  # whether this environment's spec leaves it open


def _spec_flag(spec: EnvironmentSpec, section: str, flag: str) -> bool:
    """A spec switch that wave 2 of issue 12 adds (``[encryption] customer_managed_key``, ``[audit] cloudtrail``), read so
    that this table is right before and after those sections exist: absent means off."""
    return bool(getattr(getattr(spec, section, None), flag, False))


def _v(area: str, *names: str) -> tuple[VerifyCheck, ...]:
    return tuple(VerifyCheck(area, name) for name in names)


CONTROLS: tuple[Control, ...] = (
    Control(
        "encryption-at-rest-rds",
        "Database storage encrypted (AES-256)",
        ALL,
        ("Database/Instance",),
        ("AwsSolutions-RDS2", "HIPAA.Security-RDSStorageEncrypted", "PCI.DSS.321-RDSStorageEncrypted", "NIST.800.53.R5-RDSStorageEncrypted"),
        _v("RDS", "storage encrypted"),
    ),
    Control(
        "encryption-at-rest-s3",
        "Files bucket encrypted by default (SSE-S3; no nag rule checks SSE-S3 itself, verify reads it back)",
        ALL,
        ("Storage/FilesBucket",),
        (),
        _v("S3", "{files_bucket} default encryption"),
    ),
    Control(
        "tls-only-s3",
        "HTTPS only: the bucket policy denies any request without TLS",
        ALL,
        ("Storage/FilesBucket/Policy",),
        ("AwsSolutions-S10", "HIPAA.Security-S3BucketSSLRequestsOnly", "PCI.DSS.321-S3BucketSSLRequestsOnly", "NIST.800.53.R5-S3BucketSSLRequestsOnly"),
        _v("S3", "{files_bucket} policy denies non-TLS"),
    ),
    Control(
        "tls-database",
        "Database connections require TLS: the server refuses plain connections (rds.force_ssl = 1), the connection string asks for TLS",
        ALL,
        ("Database/ParameterGroup", "Secrets/ConnectionStringSecret"),
        (),
        _v("RDS", "parameter rds.force_ssl") + _v("Secrets", "{connection_string} DATABASE_URL sslmode"),
    ),
    Control(
        "no-public-data",
        "No public data stores: the database is private, the bucket blocks public access",
        ALL,
        ("Database/Instance", "Storage/FilesBucket"),
        (
            "HIPAA.Security-RDSInstancePublicAccess",
            "PCI.DSS.321-RDSInstancePublicAccess",
            "NIST.800.53.R5-RDSInstancePublicAccess",
            "HIPAA.Security-S3BucketLevelPublicAccessProhibited",
            "PCI.DSS.321-S3BucketLevelPublicAccessProhibited",
            "NIST.800.53.R5-S3BucketLevelPublicAccessProhibited",
        ),
        _v("RDS", "publicly accessible") + _v("S3", "{files_bucket} public access block"),
    ),
    Control(
        "network-isolation",
        "Network isolation: the database admits PostgreSQL from the app security group and the spec's private CIDRs only",
        (SOC2, HIPAA, PCI_DSS),
        ("Network/RdsSecurityGroup", "Network/AppSecurityGroup"),
        ("HIPAA.Security-EC2RestrictedSSH", "PCI.DSS.321-EC2RestrictedSSH", "NIST.800.53.R5-EC2RestrictedSSH"),
        _v("EC2", "{rds_sg} ingress", "{app_sg} ingress"),
    ),
    Control(
        "least-privilege-secrets",
        "Least privilege: each environment's applications read only rentaliq/{env}/* secrets",
        ALL,
        ("Access/ReadSecretsPolicy",),
        (
            "HIPAA.Security-IAMPolicyNoStatementsWithAdminAccess",
            "PCI.DSS.321-IAMPolicyNoStatementsWithAdminAccess",
            "NIST.800.53.R5-IAMPolicyNoStatementsWithAdminAccess",
        ),
        _v("IAM", "{read_secrets_policy} actions", "{read_secrets_policy} resources"),
    ),
    Control(
        "secrets-managed",
        "Credentials live in Secrets Manager (generated, never in code or templates)",
        ALL,
        ("Database/CredentialsSecret", "Secrets/ApiKeysSecret"),
        (),
        _v("Secrets", "{credentials} keys", "{api_keys} values set"),
    ),
    Control(
        "backups",
        "Automated database backups with the spec's retention",
        (SOC2, HIPAA, GDPR),
        ("Database/Instance",),
        ("HIPAA.Security-RDSInstanceBackupEnabled", "NIST.800.53.R5-RDSInstanceBackupEnabled"),
        _v("RDS", "backup retention (days)"),
    ),
    Control(
        "multi-az",
        "Database standby in a second availability zone",
        (SOC2, HIPAA),
        ("Database/Instance",),
        ("AwsSolutions-RDS3", "HIPAA.Security-RDSMultiAZSupport", "NIST.800.53.R5-RDSMultiAZSupport"),
        _v("RDS", "Multi-AZ"),
        lambda spec: spec.database.multi_az,
        "for cost",
        "database.multi_az = true",
    ),
    Control(
        "deletion-protection",
        "Database deletion protection",
        (SOC2, HIPAA, PCI_DSS),
        ("Database/Instance",),
        ("AwsSolutions-RDS10", "HIPAA.Security-RDSInstanceDeletionProtectionEnabled", "NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled"),
        _v("RDS", "deletion protection"),
        lambda spec: spec.database.deletion_protection,
        "a disposable environment",
        "database.deletion_protection = true",
    ),
    Control(
        "versioning",
        "Files bucket versioning (recover overwritten or deleted files)",
        (SOC2, HIPAA, PCI_DSS, GDPR),
        ("Storage/FilesBucket",),
        ("HIPAA.Security-S3BucketVersioningEnabled", "PCI.DSS.321-S3BucketVersioningEnabled", "NIST.800.53.R5-S3BucketVersioningEnabled"),
        _v("S3", "{files_bucket} versioning"),
        lambda spec: spec.storage.versioning,
        "for cost",
        "storage.versioning = true",
    ),
    Control(
        "s3-access-logs",
        "S3 server access logs of the files bucket, into the dedicated access-logs bucket (Storage/AccessLogsBucket)",
        (SOC2, HIPAA, PCI_DSS),
        ("Storage/FilesBucket",),
        ("AwsSolutions-S1", "HIPAA.Security-S3BucketLoggingEnabled", "PCI.DSS.321-S3BucketLoggingEnabled", "NIST.800.53.R5-S3BucketLoggingEnabled"),
        _v("S3", "{files_bucket} access logging target", "{access_logs_bucket} policy allows log delivery"),
        lambda spec: spec.storage.access_logs,
        "PROD-only in the spec, for cost",
        "storage.access_logs = true",
    ),
    Control(
        "database-logs",
        "PostgreSQL and upgrade logs exported to CloudWatch Logs",
        (SOC2, HIPAA, PCI_DSS),
        ("Database/Instance",),
        ("HIPAA.Security-RDSLoggingEnabled", "PCI.DSS.321-RDSLoggingEnabled", "NIST.800.53.R5-RDSLoggingEnabled"),
        _v("RDS", "CloudWatch log exports"),
        lambda spec: {"postgresql", "upgrade"} <= set(spec.database.cloudwatch_log_exports),
        "for cost",
        'database.cloudwatch_log_exports = ["postgresql", "upgrade"]',
    ),
    Control(
        "enhanced-monitoring",
        "RDS enhanced monitoring (OS metrics every 60 s)",
        (SOC2, HIPAA),
        ("Database/Instance", "Database/MonitoringRole"),
        ("HIPAA.Security-RDSEnhancedMonitoringEnabled", "NIST.800.53.R5-RDSEnhancedMonitoringEnabled"),
        _v("RDS", "enhanced monitoring interval (s)", "enhanced monitoring role"),
        lambda spec: spec.database.enhanced_monitoring_interval_s > 0,
        "PROD-only in the spec",
        "database.enhanced_monitoring_interval_s = 60",
    ),
    Control(
        "flow-logs",
        "VPC flow logs into a log group with a retention period (not read back by verify yet)",
        (SOC2, HIPAA, PCI_DSS),
        ("Network/FlowLogs", "Network/Vpc/FlowLog"),
        (
            "AwsSolutions-VPC7",
            "HIPAA.Security-VPCFlowLogsEnabled",
            "PCI.DSS.321-VPCFlowLogsEnabled",
            "NIST.800.53.R5-VPCFlowLogsEnabled",
            "HIPAA.Security-CloudWatchLogGroupRetentionPeriod",
        ),
        (),
    ),
    Control(
        "alerting",
        "Alarms on the database, delivered to an alerts topic encrypted with its own key",
        (SOC2, HIPAA, PCI_DSS),
        ("Alerts/Topic", "Monitoring"),
        ("AwsSolutions-SNS3", "HIPAA.Security-SNSEncryptedKMS", "PCI.DSS.321-SNSEncryptedKMS", "NIST.800.53.R5-SNSEncryptedKMS"),
        _v("Alerts", "{alerts_topic} policy denies non-TLS publish", "{alerts_topic} encrypted with a customer-managed key"),
    ),
)

# Controls the spec turns on per environment (PROD by default); where off, the gap of the same subject speaks for them.
CONTROLS = (
    *CONTROLS,
    Control(
        "customer-managed-key",
        "The environment's own KMS key (rotation on, a key policy limited to its services and app role) encrypts the "
        "database, the files (SSE-KMS with bucket keys; the runtime SDK uploads with it), the secrets, the alerts topic and the flow logs",
        ALL,
        ("EnvironmentKey", "Storage/FilesBucket"),
        ("HIPAA.Security-S3DefaultEncryptionKMS", "HIPAA.Security-SecretsManagerUsingKMSKey", "HIPAA.Security-CloudWatchLogGroupEncrypted"),
        _v("KMS", "{env_key} rotation", "{env_key} policy principals", "{files_bucket} default key"),
        lambda spec: spec.encryption.customer_managed_key,
        covered_by_gap="customer-managed-keys",
    ),
    Control(
        "audit-trail",
        "A multi-region CloudTrail trail with log file validation, KMS-encrypted into its own bucket, and an AWS Config "
        "recorder with managed rules for these controls",
        (SOC2, HIPAA, PCI_DSS),
        ("Audit",),
        (),
        _v("Audit", "{trail} multi-region", "{trail} log file validation", "{trail} logging", "config rules"),
        lambda spec: spec.audit.cloudtrail and spec.audit.config,
        covered_by_gap="audit-trail",
    ),
    Control(
        "secret-rotation",
        "The database credentials rotate on the spec's schedule (Secrets Manager's managed rotation; the local cloud changes the real password)",
        (HIPAA, PCI_DSS),
        ("Database/CredentialsSecret",),
        ("HIPAA.Security-SecretsManagerRotationEnabled", "AwsSolutions-SMG4"),
        _v("Secrets", "{credentials} rotation enabled", "{credentials} rotation complete"),
        lambda spec: spec.secrets.rotation_days is not None,
        covered_by_gap="secret-rotation",
    ),
)

# What remains. Each acknowledged nag rule in a stack is explained by a gap here or by a control the spec turns off.
GAPS = (
    Gap(
        "customer-managed-keys",
        (HIPAA, PCI_DSS),
        "The files, the secrets and the flow logs are encrypted with AWS-managed keys (SSE-S3, Secrets Manager's and CloudWatch Logs' "
        "own), not a key you control, rotate and audit (PCI DSS 3.5/3.6; the spec's Phase 2). Only the alerts topic has its own key.",
        "a customer-managed KMS key per environment with rotation, used by RDS, the files bucket (SSE-KMS), secrets and log groups (issue 12 section 4)",
        (
            "HIPAA.Security-S3DefaultEncryptionKMS",
            "HIPAA.Security-SecretsManagerUsingKMSKey",
            "HIPAA.Security-CloudWatchLogGroupEncrypted",
        ),
        lambda spec: not _spec_flag(spec, "encryption", "customer_managed_key"),
    ),
    Gap(
        "audit-trail",
        (SOC2, HIPAA, PCI_DSS),
        "No CloudTrail trail or AWS Config recorder: API activity and configuration history are not recorded "
        "(HIPAA 164.312(b), PCI DSS 10.x; the spec's Audit Trails recommendation).",
        "a multi-region CloudTrail trail with log file validation into its own bucket, and an AWS Config recorder with managed rules (issue 12 section 3)",
        (),
        lambda spec: not (_spec_flag(spec, "audit", "cloudtrail") and _spec_flag(spec, "audit", "config")),
    ),
    Gap(
        "secret-rotation",
        (HIPAA, PCI_DSS),
        "Secrets are not rotated on a schedule (PCI DSS 8.2.4 asks for 90 days at most).",
        "secrets.rotation_days: managed rotation of rentaliq/{env}/db/credentials (PROD every 30 days); the other secrets are "
        "derived from it or generated once, and change when their sources do",
        ("HIPAA.Security-SecretsManagerRotationEnabled", "AwsSolutions-SMG4"),
        lambda spec: spec.secrets.rotation_days is None,
    ),
    Gap(
        "cross-region-copies",
        (SOC2, HIPAA, PCI_DSS),
        "No copy of the files or the access logs in a second region, and the database is in no AWS Backup plan.",
        "S3 cross-region replication of the files and access-logs buckets, and an AWS Backup plan with cross-region copies (the spec's Phase 2 and 3)",
        ("HIPAA.Security-S3BucketReplicationEnabled", "HIPAA.Security-RDSInBackupPlan"),
    ),
    Gap(
        "iam-database-auth",
        (PCI_DSS,),
        "Database users authenticate with a password from Secrets Manager, not IAM database authentication.",
        "IAM database authentication on the instance and IAM-issued tokens in the runtime SDK",
        ("AwsSolutions-RDS6",),
    ),
    Gap(
        "public-web-ports",
        (PCI_DSS,),
        "The application security group admits HTTP (80) from the internet beside HTTPS (443), as the spec asks.",
        "a load balancer that redirects HTTP to HTTPS (or dropping port 80 from the app security group)",
        ("AwsSolutions-EC23",),
    ),
    Gap(
        "default-security-group",
        (PCI_DSS,),
        "The VPC's default security group is not emptied (it is attached to nothing).",
        "the @aws-cdk/aws-ec2:restrictDefaultSecurityGroup feature flag (a Lambda-backed custom resource that removes its rules)",
        ("HIPAA.Security-VPCDefaultSecurityGroupClosed",),
    ),
    Gap(
        "threat-detection",
        (SOC2, PCI_DSS),
        "No WAF, GuardDuty or Security Hub (the spec's Phase 3 Advanced Security).",
        "AWS WAF on the application's load balancer, GuardDuty and Security Hub in each account",
    ),
    Gap(
        "gdpr-data-handling",
        (GDPR,),
        "Nothing in the infrastructure records what personal data is held, its lawful basis, or erases a person's data on request: "
        "those are application and process duties (Art. 5, 17, 30).",
        "a record of processing, retention periods per data category in the application, and an erasure procedure that also covers "
        "S3 object versions and database backups",
    ),
    Gap(
        "hipaa-baa",
        (HIPAA,),
        "A HIPAA workload needs a Business Associate Addendum with AWS and only HIPAA-eligible services.",
        "the AWS BAA accepted in AWS Artifact for the account",
    ),
)
