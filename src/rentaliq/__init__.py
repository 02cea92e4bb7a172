"""RentalIQ infrastructure: environment specs, CDK stacks, a local cloud, a runtime SDK and operations."""

__version__ = "0.1.0"
