"""Extensions that make moto's CloudFormation and RDS match what our stacks need.

Installed into the moto server process before it serves its first request.
"""

from __future__ import annotations

from pathlib import Path


def install(state_dir: Path) -> None:
    """Patch moto in this process. Placeholder until the CloudFormation extensions land."""
