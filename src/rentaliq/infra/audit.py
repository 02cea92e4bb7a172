"""The audit trail (the spec's "Audit Trails", ``[audit]``): a CloudTrail trail and AWS Config, with their bucket and key.

- **Bucket** ``rentaliq-{env}-trail-logs``: SSE-KMS with the audit key, versioned, public access blocked, TLS-only,
  a lifecycle from the spec (Standard-IA, Glacier, expiry), and a policy letting exactly this account's trail and
  Config deliver (``aws:SourceArn`` / ``aws:SourceAccount``, the confused-deputy guards AWS documents).
- **Trail** ``rentaliq-{env}-trail``: multi-region, global service events, log file validation (digest files prove
  a log was not altered), logging on, encrypted with the key.
- **Config**: a recorder for all supported types (global ones too), its delivery channel into the same bucket
  under ``config/``, a role with AWS's ``AWS_ConfigRole``, and the managed rules of :mod:`rentaliq.audit_rules`.

The key is the audit key made here (rotation on, a policy granting CloudTrail and Config only what they need). The
per-environment customer-managed key of issue 12 §4 can take its place: pass it as ``key``; its policy then needs
the two service statements :func:`grant_services` adds.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_config as config
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from rentaliq import naming
from rentaliq.audit_rules import CONFIG_DELIVERY_FREQUENCY, CONFIG_KEY_PREFIX, managed_rules
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge
from rentaliq.infra.retention import removal_policy

CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"
CONFIG_PRINCIPAL = "config.amazonaws.com"
CONFIG_MANAGED_POLICY = "service-role/AWS_ConfigRole"


def trail_arn(stack: Stack, env: str) -> str:
    """Known before the trail exists, so the bucket policy can name it (CloudTrail checks the policy at create)."""
    return f"arn:{stack.partition}:cloudtrail:{stack.region}:{stack.account}:trail/{naming.trail(env)}"


def grant_services(key: kms.IKey, stack: Stack, env: str) -> None:
    """What CloudTrail and Config need on the key that encrypts their deliveries, and nothing more."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudTrailEncryptLogs",
            principals=[iam.ServicePrincipal(CLOUDTRAIL_PRINCIPAL)],
            actions=["kms:GenerateDataKey*"],
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceArn": trail_arn(stack, env)},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{stack.partition}:cloudtrail:*:{stack.account}:trail/*"},
            },
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudTrailDescribeKey",
            principals=[iam.ServicePrincipal(CLOUDTRAIL_PRINCIPAL)],
            actions=["kms:DescribeKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceArn": trail_arn(stack, env)}},
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="ConfigEncryptDeliveries",
            principals=[iam.ServicePrincipal(CONFIG_PRINCIPAL)],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )


class Audit(Construct):
    """Built when ``spec.audit.cloudtrail`` or ``spec.audit.config`` is on; each half only when its flag is."""

    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, key: kms.IKey | None = None, access_logs: s3.IBucket | None = None) -> None:
        super().__init__(scope, id)
        env, audit = spec.name.value, spec.audit
        stack = Stack.of(self)
        self.key = key or self._key(spec)
        grant_services(self.key, stack, env)
        self.bucket = self._bucket(spec, access_logs)
        self.trail: cloudtrail.CfnTrail | None = None
        self.recorder: config.CfnConfigurationRecorder | None = None
        self.rules: list[config.CfnConfigRule] = []
        if audit.cloudtrail:
            self.trail = self._trail(spec)
        if audit.config:
            self._config(spec)

    def _key(self, spec: EnvironmentSpec) -> kms.Key:
        env = spec.name.value
        return kms.Key(
            self,
            "Key",
            alias=naming.audit_key_alias(env),
            description=f"Encrypts {naming.trail(env)}'s log files and AWS Config's deliveries ({env.upper()})",
            enable_key_rotation=True,
            removal_policy=removal_policy(spec),
        )

    def _bucket(self, spec: EnvironmentSpec, access_logs: s3.IBucket | None) -> s3.Bucket:
        env, audit = spec.name.value, spec.audit
        stack = Stack.of(self)
        bucket = s3.Bucket(
            self,
            "LogsBucket",
            bucket_name=naming.trail_logs_bucket(env),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{naming.trail_logs_bucket(env)}/" if access_logs else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="age-out-logs",
                    transitions=[
                        s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(audit.trail_logs_ia_after_days)),
                        s3.Transition(storage_class=s3.StorageClass.GLACIER, transition_after=Duration.days(audit.trail_logs_glacier_after_days)),
                    ],
                    expiration=Duration.days(audit.trail_logs_expire_after_days),
                    noncurrent_version_expiration=Duration.days(30),
                ),
                s3.LifecycleRule(id="abort-incomplete-multipart", abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
            removal_policy=removal_policy(spec),
        )
        account = stack.account
        # CloudTrail and Config check the ACL, then write under AWSLogs/{account}/ with the owner getting full control.
        for principal, prefix, condition in (
            (CLOUDTRAIL_PRINCIPAL, "", {"aws:SourceArn": trail_arn(stack, env)}),
            (CONFIG_PRINCIPAL, f"{CONFIG_KEY_PREFIX}/", {"aws:SourceAccount": account}),
        ):
            sid = "CloudTrail" if principal == CLOUDTRAIL_PRINCIPAL else "Config"
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"{sid}AclCheck",
                    principals=[iam.ServicePrincipal(principal)],
                    actions=["s3:GetBucketAcl", "s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringEquals": condition},
                )
            )
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"{sid}Write",
                    principals=[iam.ServicePrincipal(principal)],
                    actions=["s3:PutObject"],
                    resources=[bucket.arn_for_objects(f"{prefix}AWSLogs/{account}/*")],
                    conditions={"StringEquals": {**condition, "s3:x-amz-acl": "bucket-owner-full-control"}},
                )
            )
        if access_logs is None:
            for rule in ("AwsSolutions-S1", "HIPAA.Security-S3BucketLoggingEnabled"):
                acknowledge(bucket, id=rule, reason=f"Spec: S3 access logs are PROD-only; {env.upper()} has no access-logs bucket.")
        for rule in ("HIPAA.Security-S3BucketReplicationEnabled", "PCI.DSS.321-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled"):
            acknowledge(
                bucket, id=rule, reason="Cross-region replication is a Phase 3 item of the spec; the trail is multi-region and its files carry digests."
            )
        return bucket

    def _trail(self, spec: EnvironmentSpec) -> cloudtrail.CfnTrail:
        env = spec.name.value
        trail = cloudtrail.CfnTrail(
            self,
            "Trail",
            trail_name=naming.trail(env),
            is_logging=True,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            kms_key_id=self.key.key_arn,
            s3_bucket_name=self.bucket.bucket_name,
        )
        # CloudTrail checks the bucket policy and the key when the trail is created.
        if self.bucket.policy is not None:
            trail.node.add_dependency(self.bucket.policy)
        trail.node.add_dependency(self.key)
        for rule in (
            "HIPAA.Security-CloudTrailCloudWatchLogsEnabled",
            "PCI.DSS.321-CloudTrailCloudWatchLogsEnabled",
            "NIST.800.53.R5-CloudTrailCloudWatchLogsEnabled",
        ):
            acknowledge(
                trail,
                id=rule,
                reason=(
                    "The trail's record is its validated, KMS-encrypted S3 log files (and the 90-day event history); "
                    "delivery to CloudWatch Logs, for alarms on events, is a gap the compliance report names."
                ),
            )
        return trail

    def _config(self, spec: EnvironmentSpec) -> None:
        env = spec.name.value
        role = iam.Role(
            self,
            "ConfigRole",
            role_name=naming.config_role(env),
            description=f"AWS Config records {env.upper()}'s resource configurations",
            assumed_by=iam.ServicePrincipal(CONFIG_PRINCIPAL),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(CONFIG_MANAGED_POLICY)],
        )
        acknowledge(
            role,
            id=f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{CONFIG_MANAGED_POLICY}]",
            reason="AWS_ConfigRole is the policy AWS documents for Config's recorder; AWS keeps it current as types are added.",
        )
        self.recorder = config.CfnConfigurationRecorder(
            self,
            "Recorder",
            name=naming.config_recorder(env),
            role_arn=role.role_arn,
            recording_group=config.CfnConfigurationRecorder.RecordingGroupProperty(all_supported=True, include_global_resource_types=True),
        )
        channel = config.CfnDeliveryChannel(
            self,
            "DeliveryChannel",
            name=naming.config_delivery_channel(env),
            s3_bucket_name=self.bucket.bucket_name,
            s3_key_prefix=CONFIG_KEY_PREFIX,
            s3_kms_key_arn=self.key.key_arn,
            config_snapshot_delivery_properties=config.CfnDeliveryChannel.ConfigSnapshotDeliveryPropertiesProperty(
                delivery_frequency=CONFIG_DELIVERY_FREQUENCY
            ),
        )
        channel.add_dependency(self.recorder)  # AWS Config refuses a channel before a recorder exists
        if self.bucket.policy is not None:
            channel.node.add_dependency(self.bucket.policy)
        for rule in managed_rules(trail=spec.audit.cloudtrail):
            cfn_rule = config.CfnConfigRule(
                self,
                "Rule" + "".join(part.capitalize() for part in rule.identifier.split("_")),
                config_rule_name=naming.config_rule(env, rule.identifier),
                description=rule.description,
                source=config.CfnConfigRule.SourceProperty(owner="AWS", source_identifier=rule.identifier),
                scope=config.CfnConfigRule.ScopeProperty(compliance_resource_types=list(rule.resource_types)) if rule.resource_types else None,
                maximum_execution_frequency=None if rule.resource_types else "TwentyFour_Hours",
            )
            cfn_rule.add_dependency(self.recorder)  # a managed rule needs a recorder
            if self.trail is not None:
                cfn_rule.node.add_dependency(self.trail)
            self.rules.append(cfn_rule)
