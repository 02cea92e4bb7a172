"""Managed rotation of ``rentaliq/{env}/db/credentials`` on the spec's schedule (``secrets.rotation_days``).

The hosted single-user PostgreSQL rotation (``HostedRotation.postgre_sql_single_user``): the template gets the
``AWS::SecretsManager-2020-07-23`` transform and a RotationSchedule with ``HostedRotationLambda``, which AWS
expands into a rotation Lambda. The Lambda runs in the app subnets with the **app security group**: that group
already reaches the RDS SG on the database port and sends HTTPS out, through the NAT (``network.nat``) or the
Secrets Manager interface endpoint (``network.secrets_manager_endpoint``, whose SG admits the app SG), so no new
path into the database is opened. An environment with ``nat = "none"`` and no endpoint has no way for the Lambda
to reach Secrets Manager: give it the endpoint before turning rotation on. The local cloud runs the same four steps
itself (``rentaliq.local.secrets_rotation``).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from rentaliq import naming
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.database import Database
from rentaliq.infra.network import Network


def add_rotation(scope: Construct, *, spec: EnvironmentSpec, database: Database, network: Network) -> secretsmanager.RotationSchedule | None:
    """The rotation schedule, or None when the spec sets no ``rotation_days`` (no scheduled rotation)."""
    days = spec.secrets.rotation_days
    if days is None:
        return None
    return database.credentials.add_rotation_schedule(
        "RotationSchedule",
        automatically_after=Duration.days(days),
        hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
            function_name=naming.resource_name(spec.name.value, "db-rotation"),
            vpc=network.vpc,
            vpc_subnets=network.app_subnets,
            security_groups=[network.app_sg],
        ),
    )
