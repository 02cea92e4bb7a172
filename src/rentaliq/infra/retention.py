"""What happens to stored data when a stack is deleted, decided once for every construct."""

from __future__ import annotations

from aws_cdk import RemovalPolicy

from rentaliq.environments import EnvironmentSpec


def removal_policy(spec: EnvironmentSpec) -> RemovalPolicy:
    """PROD keeps its buckets, secrets and logs when its stack goes; LAB and QA clean up after themselves."""
    return RemovalPolicy.RETAIN if spec.is_prod else RemovalPolicy.DESTROY
