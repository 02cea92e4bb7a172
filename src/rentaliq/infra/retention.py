"""What happens to stored data when a stack is deleted, decided once for every construct."""

from __future__ import annotations

from aws_cdk import RemovalPolicy

from rentaliq.environments import EnvironmentSpec


def removal_policy(spec: EnvironmentSpec) -> RemovalPolicy:
    """PROD keeps its buckets, secrets and logs when its stack goes; LAB and QA clean up after themselves."""
    return RemovalPolicy.RETAIN if spec.is_prod else RemovalPolicy.DESTROY


def secret_removal_policy() -> RemovalPolicy:
    """Every environment's secrets outlive their stack: CloudFormation deletes a secret without a recovery window,
    so the deployer schedules each one for deletion, with the environment's window, once the stack is gone (and
    never before: a failed stack delete must leave the secrets readable)."""
    return RemovalPolicy.RETAIN
