"""The application role per environment: what RentalIQ's compute runs as, and nothing more than it needs.

``rentaliq-{env}-app-role`` is trusted by the compute the spec names (ECS tasks, Lambda, EC2 through an instance
profile) and carries exactly two managed policies: the spec's read-secrets policy (``rentaliq/{env}/*`` only) and
``rentaliq-{env}-files-access-policy`` (object read/write on this environment's files bucket, listing it). No other
permission, so an application of one environment cannot read another's secrets or files; the functional tests
prove it on the enforcing local cloud.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import APP_ROLE_PRINCIPALS, FILES_BUCKET_ACTIONS, FILES_OBJECT_ACTIONS, files_bucket_arn
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge


class AppRole(Construct):
    """The role, its files policy and the EC2 instance profile; ``read_secrets_policy`` comes from :class:`Access`."""

    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, read_secrets_policy: iam.IManagedPolicy, key: kms.IKey | None = None) -> None:
        """``key``: the environment's customer-managed key, when on. Its policy delegates the app role's use to IAM
        (through S3 and Secrets Manager only), so the role needs its own allow to read the files and secrets it
        encrypts; that statement rides in the files-access policy, keeping the role at exactly two policies."""
        super().__init__(scope, id)
        env = spec.name.value
        bucket_arn = files_bucket_arn(Aws.PARTITION, naming.files_bucket(env))
        self.files_policy = iam.ManagedPolicy(
            self,
            "FilesAccessPolicy",
            managed_policy_name=naming.files_access_policy(env),
            description=f"Read and write objects of {naming.files_bucket(env)} only",
            statements=[
                iam.PolicyStatement(sid="ListFilesBucket", actions=list(FILES_BUCKET_ACTIONS), resources=[bucket_arn]),
                iam.PolicyStatement(sid="ReadWriteFiles", actions=list(FILES_OBJECT_ACTIONS), resources=[f"{bucket_arn}/*"]),
            ],
        )
        if key is not None:
            from rentaliq.infra.keys import APP_ROLE_ACTIONS, APP_ROLE_SERVICES

            region = Stack.of(self).region
            self.files_policy.add_statements(
                iam.PolicyStatement(
                    sid="UseEnvironmentKeyThroughS3AndSecretsManager",
                    actions=list(APP_ROLE_ACTIONS),
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": [f"{service}.{region}.amazonaws.com" for service in APP_ROLE_SERVICES]}},
                )
            )
        acknowledge(
            self.files_policy,
            id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{naming.files_bucket(env)}/*]",
            reason="Objects are named by the application at run time; the wildcard covers this environment's files bucket only.",
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=naming.app_role(env),
            description=f"RentalIQ {env.upper()} applications: read rentaliq/{env}/* secrets, read/write {naming.files_bucket(env)}",
            assumed_by=iam.CompositePrincipal(*(iam.ServicePrincipal(p) for p in APP_ROLE_PRINCIPALS)),
            managed_policies=[read_secrets_policy, self.files_policy],
        )
        self.instance_profile = iam.CfnInstanceProfile(
            self, "InstanceProfile", instance_profile_name=naming.app_instance_profile(env), roles=[self.role.role_name]
        )


def require_encrypted_puts(bucket: s3.IBucket) -> None:
    """Deny any PutObject that does not ask for server-side encryption (the spec's "encryption required"): the
    runtime SDK sends SSE on every put, so only a client that skipped it is refused."""
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyUnencryptedPuts",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects("*")],
            conditions={"Null": {"s3:x-amz-server-side-encryption": "true"}},
        )
    )
