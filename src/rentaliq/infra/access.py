"""IAM: the read-secrets policy that lets a service read its own environment's secrets and nothing else."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import READ_SECRET_ACTIONS, secrets_arn_pattern
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge


class Access(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec) -> None:
        super().__init__(scope, id)
        env = spec.name.value
        # This environment's secrets only, whatever the account, region and partition it is deployed to.
        resource = secrets_arn_pattern(Aws.PARTITION, Aws.REGION, Aws.ACCOUNT_ID, naming.secrets_prefix(env))
        self.read_secrets_policy = iam.ManagedPolicy(
            self,
            "ReadSecretsPolicy",
            managed_policy_name=naming.read_secrets_policy(env),
            description=f"Read the rentaliq/{env}/* secrets (GetSecretValue, DescribeSecret)",
            statements=[iam.PolicyStatement(sid="ReadEnvironmentSecrets", actions=list(READ_SECRET_ACTIONS), resources=[resource])],
        )
        acknowledge(
            self.read_secrets_policy,
            id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:{naming.secrets_prefix(env)}*]",
            reason="Spec: resource rentaliq/{env}/*; the wildcard covers the random ARN suffix and this environment's secrets only.",
        )
