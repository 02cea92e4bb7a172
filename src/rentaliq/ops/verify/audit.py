"""Audit-trail area (``[audit]``): the trail, its bucket, the Config recorder and its rules, read back live.

With ``cloudtrail``: ``rentaliq-{env}-trail`` exists and is logging, multi-region with global service events,
validates its log files, is encrypted with a KMS key, delivers to ``rentaliq-{env}-trail-logs``, and carries its
tags; that bucket is SSE-KMS, blocks public access, denies non-TLS requests, lets CloudTrail write only for this
trail (``aws:SourceArn``), is versioned, and ages logs out on the spec's lifecycle. With ``config``: the recorder
``rentaliq-{env}-config-recorder`` is recording all supported types (global ones too), its channel delivers to
the bucket under ``config/``, and every managed rule of :mod:`rentaliq.audit_rules` exists and is ACTIVE.
Turned off: none of this environment's named trail, recorder or rules exist (another environment's may: Config
allows one recorder per account and region).

Trails are read with GetTrail, by name.
"""

from __future__ import annotations

import json
from typing import Any

from rentaliq import naming
from rentaliq.audit_rules import CONFIG_KEY_PREFIX, managed_rules
from rentaliq.ops.verify.checks import AUDIT
from rentaliq.ops.verify.documents import as_list, principals, statements
from rentaliq.ops.verify.reader import Audit

PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def check(audit: Audit) -> None:
    spec = audit.spec.audit
    read = audit.read
    with read.section(AUDIT, "trail"):
        _trail(audit, spec.cloudtrail)
    if spec.cloudtrail or spec.config:
        with read.section(AUDIT, "trail logs bucket"):
            _bucket(audit)
    with read.section(AUDIT, "config"):
        _config(audit, spec.config)


def _trail(audit: Audit, wanted: bool) -> None:
    env, read, add = audit.env, audit.read, audit.record.add
    name = naming.trail(env)
    trails = read.call(AUDIT, "trails listed", name if wanted else None, "cloudtrail", "list_trails").get("Trails") or []
    present = any(t.get("Name") == name for t in trails)
    if not add(AUDIT, "trail", name if wanted else None, name if present else None):
        return
    if not wanted:
        return
    trail = read.call(AUDIT, f"{name} readable", "readable", "cloudtrail", "get_trail", Name=name).get("Trail") or {}
    add(AUDIT, f"{name} multi-region", True, trail.get("IsMultiRegionTrail"))
    add(AUDIT, f"{name} global service events", True, trail.get("IncludeGlobalServiceEvents"))
    add(AUDIT, f"{name} log file validation", True, trail.get("LogFileValidationEnabled"))
    add(AUDIT, f"{name} bucket", naming.trail_logs_bucket(env), trail.get("S3BucketName"))
    key = trail.get("KmsKeyId")
    add(AUDIT, f"{name} encrypted (KMS key)", "a KMS key", key or None, ok=bool(key))
    if key:
        state = read.call(AUDIT, f"{name} key usable", "Enabled", "kms", "describe_key", KeyId=key).get("KeyMetadata", {})
        add(AUDIT, f"{name} key usable", "Enabled", state.get("KeyState"))
    status = read.call(AUDIT, f"{name} logging", True, "cloudtrail", "get_trail_status", Name=name)
    add(AUDIT, f"{name} logging", True, status.get("IsLogging"))
    tags = read.call(AUDIT, f"{name} tags", audit.spec.resource_tags(), "cloudtrail", "list_tags", ResourceIdList=[trail.get("TrailARN", name)])
    tag_lists: list[dict[str, Any]] = tags.get("ResourceTagList") or [{}]
    tag_list = tag_lists[0].get("TagsList")
    audit.record.tags(AUDIT, name, audit.spec.resource_tags(), tag_list)


def _bucket(audit: Audit) -> None:
    env, read, add, spec = audit.env, audit.read, audit.record.add, audit.spec.audit
    bucket = naming.trail_logs_bucket(env)
    owned = [b["Name"] for b in read.paginate(AUDIT, f"{bucket} exists", bucket, "s3", "list_buckets", "Buckets") if b.get("Name") == bucket]
    if not add(AUDIT, f"{bucket} exists", bucket, owned[0] if owned else None):
        return
    rules = read.call(AUDIT, f"{bucket} default encryption", "aws:kms", "s3", "get_bucket_encryption", Bucket=bucket)
    algorithms = sorted(
        {r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])}
        - {None}
    )
    add(AUDIT, f"{bucket} default encryption", "aws:kms", ", ".join(algorithms) or None)
    block = read.call(AUDIT, f"{bucket} public access block", "all four on", "s3", "get_public_access_block", Bucket=bucket).get(
        "PublicAccessBlockConfiguration", {}
    )
    off = [f for f in PUBLIC_ACCESS_FLAGS if block.get(f) is not True]
    add(AUDIT, f"{bucket} public access block", "all four on", "all four on" if not off else f"off: {', '.join(off)}", ok=not off)
    versioning = read.call(AUDIT, f"{bucket} versioning", "Enabled", "s3", "get_bucket_versioning", Bucket=bucket).get("Status")
    add(AUDIT, f"{bucket} versioning", "Enabled", versioning)
    policy = statements(json.loads(read.call(AUDIT, f"{bucket} policy", "readable", "s3", "get_bucket_policy", Bucket=bucket).get("Policy") or "{}"))
    tls = any(st.get("Effect") == "Deny" and str((st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false" for st in policy)
    add(AUDIT, f"{bucket} policy denies non-TLS", True, tls)
    if spec.cloudtrail:
        trail_arn = f"arn:{audit.partition}:cloudtrail:{audit.spec.region}:"
        writes = [
            st
            for st in policy
            if st.get("Effect") == "Allow" and "cloudtrail.amazonaws.com" in principals(st, "Service") and "s3:PutObject" in as_list(st.get("Action"))
        ]
        scoped = bool(writes) and all(str((st.get("Condition") or {}).get("StringEquals", {}).get("aws:SourceArn", "")).startswith(trail_arn) for st in writes)
        add(
            AUDIT,
            f"{bucket} policy lets only this trail write",
            True,
            scoped,
            detail="" if scoped else "no CloudTrail PutObject statement conditioned on aws:SourceArn",
        )
    lifecycle = read.call(AUDIT, f"{bucket} lifecycle", "readable", "s3", "get_bucket_lifecycle_configuration", Bucket=bucket).get("Rules") or []
    expected = {"STANDARD_IA": spec.trail_logs_ia_after_days, "GLACIER": spec.trail_logs_glacier_after_days, "expire": spec.trail_logs_expire_after_days}
    actual: dict[str, Any] = {}
    for rule in lifecycle:
        if rule.get("Status") != "Enabled":
            continue
        for transition in rule.get("Transitions") or []:
            actual[transition.get("StorageClass")] = transition.get("Days")
        if (rule.get("Expiration") or {}).get("Days"):
            actual["expire"] = rule["Expiration"]["Days"]
    add(AUDIT, f"{bucket} lifecycle", expected, {k: actual.get(k) for k in expected})


def _config(audit: Audit, wanted: bool) -> None:
    env, read, add = audit.env, audit.read, audit.record.add
    name = naming.config_recorder(env)
    recorders = (
        read.call(AUDIT, "config recorders listed", name if wanted else None, "config", "describe_configuration_recorders").get("ConfigurationRecorders") or []
    )
    ours = [r for r in recorders if r.get("name") == name]
    rule_names = {naming.config_rule(env, r.identifier): r.identifier for r in managed_rules(trail=audit.spec.audit.cloudtrail)}
    listed = read.paginate(AUDIT, "config rules listed", "readable", "config", "describe_config_rules", "ConfigRules")
    if not wanted:  # none of this environment's: another environment's recorder may be the account's one
        add(AUDIT, "config recorder", None, name if ours else None)
        add(AUDIT, "config rules", [], sorted(r["ConfigRuleName"] for r in listed if r.get("ConfigRuleName") in rule_names))
        return
    if not add(AUDIT, "config recorder", name, name if ours else None):
        return
    group = ours[0].get("recordingGroup") or {}
    everything = group.get("allSupported") is True and group.get("includeGlobalResourceTypes") is True
    add(AUDIT, f"{name} records", "all supported types, global ones too", "all supported types, global ones too" if everything else group, ok=everything)
    status = read.call(AUDIT, f"{name} recording", True, "config", "describe_configuration_recorder_status", ConfigurationRecorderNames=[name])
    statuses: list[dict[str, Any]] = status.get("ConfigurationRecordersStatus") or [{}]
    add(AUDIT, f"{name} recording", True, statuses[0].get("recording"))
    channel_name = naming.config_delivery_channel(env)
    channels = read.call(AUDIT, "config delivery channel", channel_name, "config", "describe_delivery_channels").get("DeliveryChannels") or []
    channel = next((c for c in channels if c.get("name") == channel_name), None)
    add(
        AUDIT,
        "config delivery channel",
        (channel_name, naming.trail_logs_bucket(env), CONFIG_KEY_PREFIX),
        (channel.get("name"), channel.get("s3BucketName"), channel.get("s3KeyPrefix")) if channel else None,
    )
    by_name = {r["ConfigRuleName"]: r for r in listed if r.get("ConfigRuleName") in rule_names}
    add(AUDIT, "config rules", sorted(rule_names), sorted(by_name))
    for rule_name, identifier in sorted(rule_names.items()):
        rule = by_name.get(rule_name)
        if rule is None:
            continue
        source = rule.get("Source") or {}
        add(AUDIT, f"{rule_name} source", ("AWS", identifier), (source.get("Owner"), source.get("SourceIdentifier")))
        add(AUDIT, f"{rule_name} state", "ACTIVE", rule.get("ConfigRuleState"))
