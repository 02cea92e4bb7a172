"""The environment's customer-managed KMS key ``alias/rentaliq-{env}`` (``[encryption] customer_managed_key``).

One key per environment, so that a key policy can say who may use that environment's data: a LAB principal
has no business decrypting PROD's. The key is an L1 ``AWS::KMS::Key`` on purpose: CDK's ``kms.Key`` always
adds ``kms:*`` for the account root, which would let any IAM policy in the account use the key directly and
make the statements below decoration. Here the root gets administration only (AWS requires a key policy that
someone can administer, else the key is unmanageable), and cryptographic use is granted through the
environment's services:

- ``UseThroughEnvironmentServices``: principals of this account, through RDS, S3, Secrets Manager and SNS in
  the stack's region only (``kms:ViaService``), the pattern of AWS's own managed-key policies: the deployer
  creating the database, secrets and topic, operators restoring files; IAM still decides who.
- ``AppRoleThroughS3AndSecretsManager``: ``rentaliq-{env}-app-role`` (made by the access construct, named here
  by ARN in a condition so that the key never depends on the role existing first, which KMS would require of a
  principal) may Decrypt and GenerateDataKey through S3 and Secrets Manager: read and write files, read secrets.
- ``CloudWatchLogsEncryptLogGroups``: CloudWatch Logs' service principal, for this account's log groups only
  (``kms:EncryptionContext:aws:logs:arn``), as AWS documents for encrypted log groups.
- ``CloudWatchAlarmsPublishToTopic``: CloudWatch publishing alarm notifications to the encrypted alerts topic
  (the reason the alerts topic had its own key: an AWS-managed key cannot grant this).

Stored data depends on the key, so it is retained with the stack in PROD and scheduled for deletion (30 days,
the longest window) elsewhere.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnDeletionPolicy, Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from rentaliq import naming
from rentaliq.environments import EnvironmentSpec

# Services whose use of the key ``UseThroughEnvironmentServices`` allows, by endpoint prefix.
KEY_SERVICES = ("rds", "s3", "secretsmanager", "sns")
# The app role reaches its data through these only.
APP_ROLE_SERVICES = ("s3", "secretsmanager")
APP_ROLE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
SERVICE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:CreateGrant",
    "kms:DescribeKey",
)
# Administration without cryptographic use: the root can manage the key, never read data with it.
ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
LOGS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:DescribeKey")
CLOUDWATCH_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
PENDING_WINDOW_DAYS = 30


def key_policy(env: str, *, partition: str, region: str, account: str) -> dict[str, Any]:
    """The key policy document; a plain function so verify and the tests read the same statements."""
    root = {"AWS": f"arn:{partition}:iam::{account}:root"}
    via = [f"{service}.{region}.amazonaws.com" for service in KEY_SERVICES]
    app_via = [f"{service}.{region}.amazonaws.com" for service in APP_ROLE_SERVICES]
    app_role = f"arn:{partition}:iam::{account}:role/{naming.app_role(env)}"
    statements = [
        {"Sid": "AccountAdministration", "Effect": "Allow", "Principal": root, "Action": list(ADMIN_ACTIONS), "Resource": "*"},
        {
            "Sid": "UseThroughEnvironmentServices",
            "Effect": "Allow",
            "Principal": root,
            "Action": list(SERVICE_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": via, "kms:CallerAccount": account}},
        },
        {
            "Sid": "AppRoleThroughS3AndSecretsManager",
            "Effect": "Allow",
            "Principal": root,
            "Action": list(APP_ROLE_ACTIONS),
            "Resource": "*",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": app_role}, "StringEquals": {"kms:ViaService": app_via}},
        },
        {
            "Sid": "CloudWatchLogsEncryptLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": list(LOGS_ACTIONS),
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:log-group:*"}},
        },
        {
            "Sid": "CloudWatchAlarmsPublishToTopic",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": list(CLOUDWATCH_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


class EnvironmentKey(Construct):
    """``key`` is the key as an ``IKey`` that cannot change the policy (for the data stores: CDK's grants, such as a
    secret's ``kms:ViaService`` statements, would only repeat ``UseThroughEnvironmentServices`` with wildcard
    actions); ``policy_key`` is the same key whose policy takes statements (the alerts topic's, for the budget)."""

    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec) -> None:
        super().__init__(scope, id)
        env = spec.name.value
        stack = Stack.of(self)
        self.cfn_key = kms.CfnKey(
            self,
            "Key",
            description=f"RentalIQ {env.upper()}: RDS storage, files bucket, secrets, alerts topic and log groups",
            enable_key_rotation=True,
            key_policy=key_policy(env, partition=stack.partition, region=stack.region, account=stack.account),
            pending_window_in_days=PENDING_WINDOW_DAYS,
        )
        retained = CfnDeletionPolicy.RETAIN if spec.is_prod else CfnDeletionPolicy.DELETE
        self.cfn_key.cfn_options.deletion_policy = retained
        self.cfn_key.cfn_options.update_replace_policy = retained
        self.alias = kms.CfnAlias(self, "Alias", alias_name=naming.env_key_alias(env), target_key_id=self.cfn_key.attr_key_id)
        self.key_arn: str = self.cfn_key.attr_arn
        self.key: kms.IKey = kms.Key.from_key_arn(self, "Imported", self.key_arn)
        # Its policy is the CfnKey's: a statement added to it (the budget's BudgetsUseKey) lands in the key policy.
        self.policy_key: kms.IKey = kms.Key.from_cfn_key(self.cfn_key)
