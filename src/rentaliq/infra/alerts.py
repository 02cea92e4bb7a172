"""The alerts topic ``rentaliq-{env}-alerts``: where every alarm of the environment publishes, and who hears it.

The topic is encrypted with its own customer-managed key, not SNS's AWS-managed ``alias/aws/sns``: CloudWatch
cannot publish to a topic under an AWS-managed key (that key's policy cannot grant ``cloudwatch.amazonaws.com``
the ``kms:GenerateDataKey*``/``kms:Decrypt`` it needs), so alarms would fail silently. With the environment's
key (``[encryption] customer_managed_key``) the topic uses that one, whose policy grants CloudWatch the same
(:mod:`rentaliq.infra.keys`), and the alerts key is not made: one key instead of two. Its policy refuses any
request not made over TLS and lets CloudWatch publish only for this account's ``rentaliq-{env}-`` alarms.
"""

from __future__ import annotations

import hashlib

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from rentaliq import naming
from rentaliq.environments import EnvironmentSpec

CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"
_PROTOCOLS = {"email": sns.SubscriptionProtocol.EMAIL, "https": sns.SubscriptionProtocol.HTTPS, "http": sns.SubscriptionProtocol.HTTP}


def subscription_id(protocol: str, endpoint: str) -> str:
    """A construct id that follows the endpoint, not its place in the list: removing one subscription from the
    spec deletes that one, and never replaces the others."""
    return f"{protocol.title()}{hashlib.sha256(endpoint.encode()).hexdigest()[:10]}"


class Alerts(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, key: kms.IKey | None = None) -> None:
        super().__init__(scope, id)
        env = spec.name.value
        self.key = key or self._own_key(env)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=naming.alerts_topic(env),
            display_name=f"RentalIQ {env.upper()} alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        self._policy(env)
        self.subscriptions = [
            sns.Subscription(self, subscription_id(protocol, endpoint), topic=self.topic, protocol=_PROTOCOLS[protocol], endpoint=endpoint)
            for protocol, endpoint in spec.alerts.subscriptions()
        ]

    def _own_key(self, env: str) -> kms.IKey:
        """The alerts topic's own key (construct id ``Key``, kept so that LAB and QA's key is never replaced)."""
        key = kms.Key(
            self,
            "Key",
            alias=f"alias/{naming.alerts_topic(env)}",
            description=f"Encrypts the RentalIQ {env.upper()} alerts topic",
            enable_key_rotation=True,
            # Only notifications in flight are under this key; deleting it with the stack loses nothing stored.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.grant(iam.ServicePrincipal(CLOUDWATCH_PRINCIPAL), "kms:Decrypt", "kms:GenerateDataKey*")
        return key

    def _policy(self, env: str) -> None:
        stack = self.topic.stack
        alarms = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:{naming.stack_name(env)}-*"
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH_PRINCIPAL)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": alarms},
                },
            )
        )
