"""KMS area: the environment's customer-managed key ``alias/rentaliq-{env}`` and what it encrypts.

With ``[encryption] customer_managed_key`` on: the alias exists and names an enabled, customer-managed,
symmetric key with rotation on; its policy's statements have exactly the principals
:func:`rentaliq.infra.keys.key_policy` gives them (no wildcard principal, and the account root administers
without decrypting); and each resource the key encrypts reports it: the DB instance's ``KmsKeyId``, the files
bucket's default SSE-KMS key with bucket keys on, each secret's ``KmsKeyId``, the alerts topic's
``KmsMasterKeyId`` and the flow-log group's ``kmsKeyId``. Off: the alias is absent (AWS-managed keys).
"""

from __future__ import annotations

from typing import Any

from rentaliq import naming
from rentaliq.infra.keys import ADMIN_ACTIONS, key_policy
from rentaliq.ops.verify.checks import KMS
from rentaliq.ops.verify.documents import as_list, policy_document, statements
from rentaliq.ops.verify.reader import Audit

KEY_POLICY_NAME = "default"
# Statements another construct adds to the key's policy (the budget's, when the spec has one).
BUDGETS_SID = "BudgetsUseKey"


def check(audit: Audit) -> None:
    """The checks (the RDS area reports a missing instance; this one reads its KmsKeyId again)."""
    read, add, env = audit.read, audit.record.add, audit.env
    alias = naming.env_key_alias(env)
    aliases = read.paginate(KMS, f"{alias} exists", alias, "kms", "list_aliases", "Aliases")
    target = next((a.get("TargetKeyId") for a in aliases if a.get("AliasName") == alias), None)
    if not audit.spec.encryption.customer_managed_key:
        add(KMS, f"{alias} absent", None, alias if target else None, detail="encryption.customer_managed_key is off: AWS-managed keys")
        return
    if not add(KMS, f"{alias} exists", alias, alias if target else None):
        return
    metadata = read.call(KMS, f"{alias} key", "readable", "kms", "describe_key", KeyId=target)["KeyMetadata"]
    add(KMS, f"{alias} key manager", "CUSTOMER", metadata.get("KeyManager"))
    add(KMS, f"{alias} key state", "Enabled", metadata.get("KeyState"))
    add(KMS, f"{alias} key spec", "SYMMETRIC_DEFAULT", metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec"))
    rotation = read.call(KMS, f"{alias} rotation", True, "kms", "get_key_rotation_status", KeyId=metadata["KeyId"])
    add(KMS, f"{alias} rotation", True, rotation.get("KeyRotationEnabled"))
    with read.section(KMS, "key policy"):
        _policy(audit, alias, metadata)
    key_arn = str(metadata["Arn"])
    with read.section(KMS, "encrypted resources"):
        _resources(audit, key_arn, metadata["KeyId"])


def _principals_by_sid(document: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for s in statements(document):
        principal = s.get("Principal")
        if principal == "*":
            names = ["*"]
        elif isinstance(principal, dict):
            names = sorted(f"{kind}:{p}" for kind, value in principal.items() for p in as_list(value))
        else:
            names = [str(principal)]
        found[str(s.get("Sid", ""))] = names
    return found


def _policy(audit: Audit, alias: str, metadata: dict[str, Any]) -> None:
    read, add = audit.read, audit.record.add
    arn = str(metadata["Arn"])
    partition, region, account = arn.split(":")[1], arn.split(":")[3], arn.split(":")[4]
    document = read.call(KMS, f"{alias} policy", "readable", "kms", "get_key_policy", KeyId=metadata["KeyId"], PolicyName=KEY_POLICY_NAME)
    live = policy_document(document.get("Policy") or "{}")
    expected = _principals_by_sid(key_policy(audit.env, partition=partition, region=region, account=account))
    actual = _principals_by_sid(live)
    if audit.spec.cost.budget:
        expected[BUDGETS_SID] = ["Service:budgets.amazonaws.com"]
    add(KMS, f"{alias} policy principals", expected, actual)
    wildcard = [sid for sid, names in actual.items() if "*" in names or any(n.endswith(":*") for n in names)]
    add(KMS, f"{alias} policy has no wildcard principal", [], wildcard)
    root = f"AWS:arn:{partition}:iam::{account}:root"
    unconditioned = sorted(
        {str(a) for s in statements(live) if root in _principals_by_sid({"Statement": [s]}).get(str(s.get("Sid", "")), []) and not s.get("Condition")
         for a in as_list(s.get("Action"))} - set(ADMIN_ACTIONS)
    )  # fmt: skip
    add(KMS, f"{alias} root administers without unconditioned use", [], unconditioned, detail="crypto use only through the environment's services")


def _is_key(value: str | None, key_arn: str, key_id: str) -> bool:
    return bool(value) and str(value) in (key_arn, key_id)


def _resources(audit: Audit, key_arn: str, key_id: str) -> None:
    read, add, env = audit.read, audit.record.add, audit.env
    alias, db = naming.env_key_alias(env), naming.db_instance_id(env)
    instances = read.paginate(KMS, f"{db} storage key", alias, "rds", "describe_db_instances", "DBInstances", DBInstanceIdentifier=db)
    for instance in instances:
        live = instance.get("KmsKeyId")
        add(KMS, f"{db} storage key", alias, alias if _is_key(live, key_arn, key_id) else live)
    bucket = naming.files_bucket(env)
    rules = read.call(KMS, f"{bucket} default key", alias, "s3", "get_bucket_encryption", Bucket=bucket)
    rule = (rules.get("ServerSideEncryptionConfiguration", {}).get("Rules") or [{}])[0]
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    add(KMS, f"{bucket} default encryption", "aws:kms", default.get("SSEAlgorithm"))
    live_key = default.get("KMSMasterKeyID")
    add(KMS, f"{bucket} default key", alias, alias if _is_key(live_key, key_arn, key_id) else live_key)
    add(KMS, f"{bucket} bucket key", True, rule.get("BucketKeyEnabled"))
    for logical in naming.SECRET_NAMES:
        name = naming.secret_path(env, logical)
        live = read.call(KMS, f"{name} key", alias, "secretsmanager", "describe_secret", SecretId=name).get("KmsKeyId")
        add(KMS, f"{name} key", alias, alias if _is_key(live, key_arn, key_id) or live in (alias, f"{key_arn.split(':key/')[0]}:{alias}") else live)
    topics = read.paginate(KMS, f"{naming.alerts_topic(env)} key", alias, "sns", "list_topics", "Topics")
    for topic in (t["TopicArn"] for t in topics if t["TopicArn"].rsplit(":", 1)[-1] == naming.alerts_topic(env)):
        live = read.call(KMS, f"{naming.alerts_topic(env)} key", alias, "sns", "get_topic_attributes", TopicArn=topic)["Attributes"].get("KmsMasterKeyId")
        add(KMS, f"{naming.alerts_topic(env)} key", alias, alias if _is_key(live, key_arn, key_id) else live)
    if audit.spec.network.existing is None:
        _flow_logs(audit, key_arn, key_id)


def _flow_logs(audit: Audit, key_arn: str, key_id: str) -> None:
    read, add, env = audit.read, audit.record.add, audit.env
    alias, vpc = naming.env_key_alias(env), naming.vpc(env)
    vpcs = read.paginate(KMS, f"{vpc} flow-log group key", alias, "ec2", "describe_vpcs", "Vpcs", Filters=[{"Name": "tag:Name", "Values": [vpc]}])
    if len(vpcs) != 1:
        return  # the EC2 area reports a missing VPC
    flows = read.paginate(
        KMS, f"{vpc} flow-log group key", alias, "ec2", "describe_flow_logs", "FlowLogs", Filters=[{"Name": "resource-id", "Values": [vpcs[0]["VpcId"]]}]
    )
    groups = sorted({f["LogGroupName"] for f in flows if f.get("LogGroupName")})
    if not add(KMS, f"{vpc} flow-log group", "one log group", groups[0] if len(groups) == 1 else groups, ok=len(groups) == 1):
        return
    found = read.paginate(KMS, f"{groups[0]} key", alias, "logs", "describe_log_groups", "logGroups", logGroupNamePrefix=groups[0])
    live = next((g.get("kmsKeyId") for g in found if g.get("logGroupName") == groups[0]), None)
    add(KMS, f"{vpc} flow-log group key", alias, alias if _is_key(live, key_arn, key_id) else live)
