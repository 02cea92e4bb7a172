"""S3 area: the files bucket (and PROD's access-logs bucket): ownership, region, encryption, public access,
TLS-only and log-delivery policies, tags, versioning, lifecycle, Intelligent-Tiering and access logging.
"""

from __future__ import annotations

import json
from typing import Any

from rentaliq import naming
from rentaliq.contract import BACKUP_TAG, REQUEST_METRICS_FILTER_ID
from rentaliq.ops.verify.checks import S3
from rentaliq.ops.verify.documents import as_list, principals, statements
from rentaliq.ops.verify.reader import Audit

SSE_S3 = "AES256"  # ARCHITECTURE.md: SSE-S3 on every bucket
SSE_KMS = "aws:kms"  # [encryption] customer_managed_key: the files bucket
LOG_DELIVERY_PRINCIPAL = "logging.s3.amazonaws.com"
PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def check(audit: Audit) -> None:
    storage, read, add = audit.spec.storage, audit.read, audit.record.add
    bucket = naming.files_bucket(audit.env)
    # The files bucket is SSE-KMS under the environment's key when the spec turns it on (the KMS area checks the key).
    sse = SSE_KMS if audit.spec.encryption.customer_managed_key else SSE_S3
    if not _bucket_common(audit, bucket, {**audit.spec.resource_tags(), **BACKUP_TAG}, sse):
        return  # no such bucket of ours: nothing more to read
    with read.section(S3, "versioning"):
        status = read.call(S3, f"{bucket} versioning", "Enabled", "s3", "get_bucket_versioning", Bucket=bucket).get("Status")
        if storage.versioning:
            add(S3, f"{bucket} versioning", "Enabled", status)
        else:
            add(S3, f"{bucket} versioning", "off", status or "off", ok=status in (None, "Suspended"))
    with read.section(S3, "lifecycle"):
        _lifecycle(audit, bucket)
    with read.section(S3, "intelligent tiering"):
        _intelligent_tiering(audit, bucket)
    with read.section(S3, "logging"):
        logs = naming.access_logs_bucket() if storage.access_logs else None
        enabled = read.call(S3, f"{bucket} access logging", logs, "s3", "get_bucket_logging", Bucket=bucket).get("LoggingEnabled")
        add(
            S3,
            f"{bucket} access logging target",
            logs,
            enabled.get("TargetBucket") if enabled else None,
            detail=f"prefix {enabled.get('TargetPrefix', '')!r}" if enabled else "",
        )
    with read.section(S3, "request metrics"):
        _request_metrics(audit, bucket)
    if storage.access_logs:
        logs = naming.access_logs_bucket()
        with read.section(S3, "access logs bucket"):
            _bucket_common(audit, logs, audit.spec.resource_tags())
            _log_delivery_policy(audit, logs, bucket)


def _request_metrics(audit: Audit, bucket: str) -> None:
    """monitoring.request_metrics: one whole-bucket metrics configuration (AllRequests, 4xxErrors, 5xxErrors ...)."""
    wanted = [REQUEST_METRICS_FILTER_ID] if audit.spec.monitoring.request_metrics else []
    name = f"{bucket} request metrics"
    configs = audit.read.paginate(S3, name, wanted, "s3", "list_bucket_metrics_configurations", "MetricsConfigurationList", Bucket=bucket)
    audit.record.add(S3, name, wanted, sorted(c.get("Id") for c in configs))
    for config in configs:
        if config.get("Id") == REQUEST_METRICS_FILTER_ID:
            audit.record.add(S3, f"{name} filter", "whole bucket", config.get("Filter") or "whole bucket")


def _bucket_common(audit: Audit, bucket: str, tags: dict[str, str], sse: str = SSE_S3) -> bool:
    """The checks every bucket of ours gets; False if the bucket is not there."""
    read, add = audit.read, audit.record.add
    # Owned by this account: among ListBuckets' names (a HeadBucket also answers for another account's bucket).
    owned = [b["Name"] for b in read.paginate(S3, f"{bucket} exists", bucket, "s3", "list_buckets", "Buckets") if b.get("Name") == bucket]
    if not add(S3, f"{bucket} exists", bucket, owned[0] if owned else None, detail="" if owned else "not among this account's buckets"):
        return False
    with read.section(S3, "location"):
        location = read.call(S3, f"{bucket} region", audit.spec.region, "s3", "get_bucket_location", Bucket=bucket).get("LocationConstraint")
        add(S3, f"{bucket} region", audit.spec.region, location or "us-east-1")  # S3 reports us-east-1 as no constraint
    with read.section(S3, "encryption"):
        rules = read.call(S3, f"{bucket} default encryption", sse, "s3", "get_bucket_encryption", Bucket=bucket)
        algorithms = sorted(
            {r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])}
            - {None}
        )
        add(S3, f"{bucket} default encryption", sse, ", ".join(algorithms) or None)
    with read.section(S3, "public access block"):
        block = read.call(S3, f"{bucket} public access block", "all four on", "s3", "get_public_access_block", Bucket=bucket)
        config = block.get("PublicAccessBlockConfiguration", {})
        off = [f for f in PUBLIC_ACCESS_FLAGS if config.get(f) is not True]
        add(S3, f"{bucket} public access block", "all four on", "all four on" if not off else f"off: {', '.join(off)}", ok=not off)
    with read.section(S3, "policy"):
        _tls_policy(audit, bucket)
    with read.section(S3, "tags"):
        tag_set = read.call(S3, f"{bucket} tags", tags, "s3", "get_bucket_tagging", Bucket=bucket).get("TagSet")
        audit.record.tags(S3, bucket, tags, tag_set)
    return True


def _bucket_policy(audit: Audit, bucket: str, name: str, expected: str) -> list[dict[str, Any]]:
    policy = audit.read.call(S3, name, expected, "s3", "get_bucket_policy", Bucket=bucket).get("Policy") or "{}"
    return statements(json.loads(policy))


def _tls_policy(audit: Audit, bucket: str) -> None:
    name, expected = f"{bucket} policy denies non-TLS", "Deny s3:* when aws:SecureTransport is false"
    arn = f"arn:{audit.partition}:s3:::{bucket}"
    found = any(
        st.get("Effect") == "Deny"
        and str((st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
        and "s3:*" in as_list(st.get("Action"))
        and "*" in principals(st, "AWS")
        and {arn, f"{arn}/*"} <= set(as_list(st.get("Resource")))
        for st in _bucket_policy(audit, bucket, name, expected)
    )
    audit.record.add(S3, name, expected, expected if found else "no such statement", ok=found)


def _log_delivery_policy(audit: Audit, logs: str, source: str) -> None:
    name, expected = f"{logs} policy allows log delivery", f"Allow {LOG_DELIVERY_PRINCIPAL} s3:PutObject"
    found = any(
        st.get("Effect") == "Allow"
        and LOG_DELIVERY_PRINCIPAL in principals(st, "Service")
        and any(a in ("s3:PutObject", "s3:*") for a in as_list(st.get("Action")))
        for st in _bucket_policy(audit, logs, name, expected)
    )
    audit.record.add(S3, name, expected, expected if found else "no such statement", ok=found, detail=f"for {source}")


def _applies_to_all(rule: dict[str, Any]) -> bool:
    filt = rule.get("Filter") or {}
    return rule.get("Status") == "Enabled" and not (rule.get("Prefix") or filt.get("Prefix") or filt.get("Tag") or filt.get("And"))


def _days(values: set[int]) -> int | list[int] | None:
    return next(iter(values)) if len(values) == 1 else (sorted(values) or None)


def _show(pairs: list[tuple[Any, Any]]) -> list[str]:
    return [f"{cls} after {n} d" for n, cls in pairs]


def _lifecycle(audit: Audit, bucket: str) -> None:
    life, add = audit.spec.storage.lifecycle, audit.record.add
    rules = audit.read.call(S3, f"{bucket} lifecycle", "rules", "s3", "get_bucket_lifecycle_configuration", Bucket=bucket).get("Rules", [])
    whole = [r for r in rules if _applies_to_all(r)]
    transitions = sorted((t.get("Days"), t.get("StorageClass")) for r in whole for t in r.get("Transitions", []))
    expected = [(life.infrequent_access_after_days, "STANDARD_IA")]
    if life.intelligent_tiering_after_days is not None:
        expected.append((life.intelligent_tiering_after_days, "INTELLIGENT_TIERING"))
    expected.append((life.glacier_after_days, "GLACIER"))
    add(S3, f"{bucket} lifecycle transitions", _show(sorted(expected)), _show(transitions))
    current = {r["Expiration"]["Days"] for r in whole if (r.get("Expiration") or {}).get("Days")}
    add(S3, f"{bucket} lifecycle expiry of current objects (days)", life.expire_current_after_days, _days(current))
    noncurrent = {r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in whole if (r.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")}
    add(S3, f"{bucket} lifecycle expiry of old versions (days)", life.expire_noncurrent_after_days, _days(noncurrent))
    aborts = {r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in whole if r.get("AbortIncompleteMultipartUpload")}
    add(S3, f"{bucket} lifecycle abort incomplete uploads (days)", life.abort_incomplete_multipart_after_days, _days(aborts))


def _intelligent_tiering(audit: Audit, bucket: str) -> None:
    storage = audit.spec.storage
    name = f"{bucket} intelligent-tiering archive tiers"
    expected = (
        {"ARCHIVE_ACCESS": storage.archive_access_after_days, "DEEP_ARCHIVE_ACCESS": storage.deep_archive_access_after_days}
        if storage.intelligent_tiering
        else None
    )
    configs = (
        audit.read.call(S3, name, expected, "s3", "list_bucket_intelligent_tiering_configurations", Bucket=bucket).get("IntelligentTieringConfigurationList")
        or []
    )
    enabled = [c for c in configs if c.get("Status") == "Enabled" and not c.get("Filter")]
    tiers = {t["AccessTier"]: t["Days"] for c in enabled for t in c.get("Tierings", [])} or None
    audit.record.add(S3, name, expected, tiers, detail=", ".join(c.get("Id", "") for c in configs))
