"""``AWS::SecretsManager::RotationSchedule`` on the local cloud, with ``HostedRotationLambda``.

On AWS the ``AWS::SecretsManager-2024-09-16`` transform turns ``HostedRotationLambda`` into a rotation Lambda in
the VPC; here the local cloud's own rotator plays that Lambda (``rentaliq.local.secrets_rotation``), so the
schedule only sets the secret's RotationRules (RotateSecret with RotateImmediately false: no rotation at deploy
time; the first one comes when the rules make it due, or with `rentaliq rotate`). Only the PostgreSQL single-user
hosted rotation, the one the stacks use, is accepted; a RotationLambdaARN (a Lambda of our own) is refused by name.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rentaliq.local.cfn.base import Provider, ProviderError, is_not_found

HOSTED_TYPES = frozenset({"PostgreSQLSingleUser"})
_RATE = re.compile(r"^rate\((\d+) days?\)$")


def rotation_days(props: dict[str, Any]) -> int:
    """The rules' days: AutomaticallyAfterDays, or a ``rate(N days)`` ScheduleExpression (what CDK writes)."""
    rules = props.get("RotationRules") or {}
    if "AutomaticallyAfterDays" in rules:
        return int(rules["AutomaticallyAfterDays"])
    expression = str(rules.get("ScheduleExpression", "")).strip()
    if match := _RATE.match(expression):
        return int(match.group(1))
    raise ProviderError(f"RotationRules {rules!r}: the local cloud supports AutomaticallyAfterDays or ScheduleExpression rate(N days)")


class RotationSchedule(Provider):
    type_name = "AWS::SecretsManager::RotationSchedule"

    def create(self, props, ctx):
        if props.get("RotationLambdaARN"):
            raise ProviderError("RotationLambdaARN: the local cloud runs no Lambda; use HostedRotationLambda (RotationType PostgreSQLSingleUser)")
        hosted = props.get("HostedRotationLambda") or {}
        if hosted.get("RotationType") not in HOSTED_TYPES:
            raise ProviderError(f"HostedRotationLambda RotationType {hosted.get('RotationType')!r}: the local cloud supports {', '.join(sorted(HOSTED_TYPES))}")
        sm = ctx.client("secretsmanager")
        arn = sm.describe_secret(SecretId=props["SecretId"])["ARN"]
        _, _, _, region, account = arn.split(":")[:5]
        name = hosted.get("RotationLambdaName") or f"SecretsManager{hosted['RotationType']}"
        hosted_arn = f"arn:aws:lambda:{region}:{account}:function:{name}"  # what the transform's Lambda would be
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=hosted_arn, RotationRules={"AutomaticallyAfterDays": rotation_days(props)}, RotateImmediately=False)
        return arn

    def update(self, physical_id, old, new, ctx):
        return self.create(new, ctx)

    def delete(self, physical_id, props, ctx):
        sm = ctx.client("secretsmanager")
        try:
            sm.cancel_rotate_secret(SecretId=physical_id)
        except Exception as error:
            if not is_not_found(error):
                raise


class ResourcePolicy(Provider):
    """A secret's resource policy. CDK adds one with every rotation schedule: Deny secretsmanager:DeleteSecret, so
    the rotated secret is not deleted outside CloudFormation (which deletes this policy before the secret)."""

    type_name = "AWS::SecretsManager::ResourcePolicy"

    def create(self, props, ctx):
        policy = props["ResourcePolicy"]
        sm = ctx.client("secretsmanager")
        kwargs = {"BlockPublicPolicy": str(props["BlockPublicPolicy"]).lower() == "true"} if "BlockPublicPolicy" in props else {}
        return sm.put_resource_policy(SecretId=props["SecretId"], ResourcePolicy=policy if isinstance(policy, str) else json.dumps(policy), **kwargs)["ARN"]

    def update(self, physical_id, old, new, ctx):
        return self.create(new, ctx)

    def delete(self, physical_id, props, ctx):
        sm = ctx.client("secretsmanager")
        try:
            sm.delete_resource_policy(SecretId=physical_id)
        except Exception as error:
            if not is_not_found(error):
                raise


PROVIDERS = [RotationSchedule, ResourcePolicy]
