"""CDK constructs and the app: one stack per environment, built from its spec and nothing else."""

from rentaliq import _jsii_node  # noqa: F401  (must run before aws_cdk is imported)
