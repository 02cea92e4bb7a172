"""`up` and `status`: the main job as a library call, so the CLI and tests drive the same code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rentaliq import naming
from rentaliq.deploy import stacks
from rentaliq.deploy.changesets import DeployResult, OnEvent, deploy
from rentaliq.deploy.database import check_connection, wait_until_ready
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.cache import templates


@dataclass
class UpResult:
    spec: EnvironmentSpec
    deploy: DeployResult
    database: str
    seconds: float


def up(target: Target, specs: list[EnvironmentSpec], outdir: Path, on_event: OnEvent | None = None,
       on_step=lambda message: None) -> list[UpResult]:
    """Synthesize what changed, deploy each stack, and wait until each database takes TLS connections."""
    on_step("synthesizing" if specs else "nothing to do")
    paths = templates(specs, outdir)
    results = []
    for spec in specs:
        started = time.monotonic()
        on_step(f"deploying {spec.stack_name}")
        result = deploy(target, spec, paths[spec.stack_name], on_event)
        on_step(f"waiting for {naming.db_instance_id(spec.name)}")
        results.append(UpResult(spec, result, wait_until_ready(target, spec, progress=on_step), time.monotonic() - started))
    return results


@dataclass
class EnvironmentStatus:
    stack_name: str
    stack_status: str | None
    outputs: dict[str, str] = field(default_factory=dict)
    database_ready: bool = False
    database_detail: str = ""


def status(target: Target, spec: EnvironmentSpec) -> EnvironmentStatus:
    stack = stacks.describe(target, spec.stack_name)
    if stack is None:
        return EnvironmentStatus(spec.stack_name, None, database_detail="not deployed")
    ready, detail = check_connection(target, spec)
    return EnvironmentStatus(spec.stack_name, stack["StackStatus"], stacks.outputs(stack), ready, detail)
