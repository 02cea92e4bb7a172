"""The encrypted files bucket, and in PROD the access-logs bucket it writes server access logs to.

The files bucket is SSE-S3, or with the environment's key (``[encryption] customer_managed_key``) SSE-KMS with
S3 Bucket Keys on: S3 asks KMS for a bucket-level data key instead of one per object, which keeps the key's
request charges (and throttling) near zero. The access-logs bucket stays SSE-S3: S3 server access logging
delivers only to SSE-S3 buckets.
"""

from __future__ import annotations

from functools import partial

from aws_cdk import Duration, Tags
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import BACKUP_TAG, REQUEST_METRICS_FILTER_ID
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge
from rentaliq.infra.retention import removal_policy


def lifecycle_rules(spec: EnvironmentSpec) -> list[s3.LifecycleRule]:
    """The spec's cost strategy: Standard-IA, then (PROD) Intelligent-Tiering, then Glacier; LAB expires objects."""
    life = spec.storage.lifecycle
    transitions = [s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(life.infrequent_access_after_days))]
    if life.intelligent_tiering_after_days is not None:
        # Objects must enter the INTELLIGENT_TIERING class for its archive tiers to do anything.
        transitions.append(
            s3.Transition(storage_class=s3.StorageClass.INTELLIGENT_TIERING, transition_after=Duration.days(life.intelligent_tiering_after_days))
        )
    transitions.append(s3.Transition(storage_class=s3.StorageClass.GLACIER, transition_after=Duration.days(life.glacier_after_days)))
    rules = [
        s3.LifecycleRule(
            id="transition-current",
            transitions=transitions,
            expiration=Duration.days(life.expire_current_after_days) if life.expire_current_after_days else None,
        ),
        s3.LifecycleRule(id="abort-incomplete-multipart", abort_incomplete_multipart_upload_after=Duration.days(life.abort_incomplete_multipart_after_days)),
    ]
    if life.expire_noncurrent_after_days is not None:
        rules.append(s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(life.expire_noncurrent_after_days)))
    return rules


class Storage(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, key: kms.IKey | None = None) -> None:
        super().__init__(scope, id)
        env, storage = spec.name.value, spec.storage
        self.access_logs_bucket = self._access_logs_bucket(spec) if storage.access_logs else None
        self.files_bucket = s3.Bucket(
            self,
            "FilesBucket",
            bucket_name=naming.files_bucket(env),
            encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=key,
            bucket_key_enabled=key is not None,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=storage.versioning,
            lifecycle_rules=lifecycle_rules(spec),
            intelligent_tiering_configurations=(
                [
                    s3.IntelligentTieringConfiguration(
                        name="archive-tiers",
                        archive_access_tier_time=Duration.days(storage.archive_access_after_days),
                        deep_archive_access_tier_time=Duration.days(storage.deep_archive_access_after_days),
                    )
                ]
                if storage.intelligent_tiering
                else None
            ),
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=f"{naming.files_bucket(env)}/" if self.access_logs_bucket else None,
            # Request metrics (AllRequests, 4xxErrors, 5xxErrors) for the whole bucket; the 5xx alarm watches them.
            metrics=[s3.BucketMetrics(id=REQUEST_METRICS_FILTER_ID)] if spec.monitoring.request_metrics else None,
            removal_policy=removal_policy(spec),
        )
        for tag, value in BACKUP_TAG.items():
            Tags.of(self.files_bucket).add(tag, value)
        if not storage.access_logs:
            for rule in ("AwsSolutions-S1", "HIPAA.Security-S3BucketLoggingEnabled"):
                acknowledge(self.files_bucket, id=rule, reason=f"Spec: S3 access logs are PROD-only; {env.upper()} skips them for cost.")
        if not storage.versioning:
            acknowledge(self.files_bucket, id="HIPAA.Security-S3BucketVersioningEnabled", reason=f"Spec: versioning is off in {env.upper()} (cost savings).")
        if key is None:
            acknowledge(
                self.files_bucket,
                id="HIPAA.Security-S3DefaultEncryptionKMS",  # with its PCI DSS and NIST twins (compliance.acknowledge)
                reason=f"Spec: SSE-S3 in {env.upper()} (encryption.customer_managed_key is off; the spec allows AWS-managed keys).",
            )
        self._acknowledge_common(self.files_bucket)

    def _access_logs_bucket(self, spec: EnvironmentSpec) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            bucket_name=naming.access_logs_bucket(),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30))],
            removal_policy=removal_policy(spec),
        )
        for rule in ("AwsSolutions-S1", "HIPAA.Security-S3BucketLoggingEnabled"):
            acknowledge(bucket, id=rule, reason="This is the access-log target; logging it into itself would loop.")
        acknowledge(bucket, id="HIPAA.Security-S3DefaultEncryptionKMS", reason="S3 server access logging delivers only to SSE-S3 target buckets.")
        self._acknowledge_common(bucket)
        return bucket

    @staticmethod
    def _acknowledge_common(bucket: s3.Bucket) -> None:
        ack = partial(acknowledge, bucket)
        ack(id="HIPAA.Security-S3BucketReplicationEnabled", reason="Cross-region replication is a Phase 3 item of the spec.")
