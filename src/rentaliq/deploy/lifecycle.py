"""`up` and `status`: the main job as a library call, so the CLI and tests drive the same code."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rentaliq import naming
from rentaliq.deploy import retained, stacks, states
from rentaliq.deploy.changesets import DeployError, DeployResult, OnEvent, OnStep, deploy
from rentaliq.deploy.commands import command
from rentaliq.deploy.database import check_connection, wait_until_ready
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.cache import templates


class RetainedFound(DeployError):
    """The stack does not exist but a previous destroy retained data; the message names the choices."""


@dataclass
class UpResult:
    spec: EnvironmentSpec
    deploy: DeployResult
    database: str
    seconds: float


def _restore(
    target: Target, spec: EnvironmentSpec, template_path: Path, restore: bool, on_event: OnEvent | None, on_step: OnStep
) -> tuple[str | None, dict[str, str] | None]:
    """Before creating a stack: stop on retained data, or bring it back.

    Returns (the snapshot to restore the database from, the restored API keys to keep as parameters).
    """
    from rentaliq.deploy.changesets import check_state, clean_never_created

    stack = check_state(target, spec, "deploy")
    if stack is not None and not states.clean_before_create(stack["StackStatus"]):
        return _finish_interrupted_restore(target, spec, stack, restore)
    # A stack that was never created goes first (with what it still holds); what remains then is outside any stack.
    clean_never_created(target, spec, stack, on_step, on_event)
    found = retained.find(target, spec)
    if not found.any:
        return None, None
    if not restore and found.blocks_create:
        raise RetainedFound(retained.refusal(spec, found, target.aws_cli))  # names what was found itself
    on_step(f"{spec.stack_name}: found " + ", ".join(found.describe()))
    if not restore:
        on_step(
            f"creating {spec.stack_name} with a new, empty database; `{command('up', spec.name.value, '--restore-retained')}` "
            f"would restore it from {found.snapshot} instead"
        )
        return None, None
    retained.restore_secrets(target, found)
    import_template, to_import = retained.import_plan(json.loads(template_path.read_text()), found)
    if to_import:
        from rentaliq.deploy.importer import import_resources

        on_step(f"importing {', '.join(r['LogicalResourceId'] for r in to_import)} into {spec.stack_name}")
        import_resources(target, spec, import_template, to_import, on_event)
    return found.snapshot, retained.api_key_values(target, spec)


def _finish_interrupted_restore(target: Target, spec: EnvironmentSpec, stack: dict[str, Any], restore: bool) -> tuple[str | None, dict[str, str] | None]:
    """A stack that holds imported resources but no database yet is a restore cut off after its import.

    Deploying it as usual would create a new, empty database while the final snapshot waits: never silently.
    """
    resources = target.client("cloudformation").describe_stack_resources(StackName=stack["StackId"])["StackResources"]
    if any(r["ResourceType"] == "AWS::RDS::DBInstance" for r in resources):
        return None, None
    snapshot = retained.find(target, spec).snapshot
    if snapshot is None:
        return None, None
    if not restore:
        raise RetainedFound(
            f"{spec.stack_name} holds restored resources but no database yet (a restore was interrupted); finish it from "
            f"{snapshot} with `{command('up', spec.name.value, '--restore-retained')}`, or delete the snapshot "
            f"(`{target.aws_cli} rds delete-db-snapshot --db-snapshot-identifier {snapshot}`) to create an empty database"
        )
    return snapshot, retained.api_key_values(target, spec)


def up(
    target: Target,
    specs: list[EnvironmentSpec],
    outdir: Path,
    on_event: OnEvent | None = None,
    on_step: OnStep = lambda message: None,
    *,
    allow_replacement: frozenset[str] = frozenset(),
    restore_retained: bool = False,
) -> list[UpResult]:
    """Synthesize what changed, deploy each stack, and wait until each database takes TLS connections."""
    from rentaliq.deploy.changesets import check_state

    for spec in specs:  # a stack that cannot be deployed now says so before a synth is paid for
        check_state(target, spec, "deploy")
    on_step("synthesizing" if specs else "nothing to do")
    paths = templates(specs, outdir)
    results = []
    for spec in specs:
        started = time.monotonic()
        snapshot, keys = _restore(target, spec, paths[spec.stack_name], restore_retained, on_event, on_step)
        on_step(f"deploying {spec.stack_name}")
        result = deploy(
            target, spec, paths[spec.stack_name], on_event, allow_replacement=allow_replacement, on_step=on_step, restore_snapshot=snapshot, known_keys=keys
        )
        on_step(f"waiting for {naming.db_instance_id(spec.name)}")
        results.append(UpResult(spec, result, wait_until_ready(target, spec, progress=on_step), time.monotonic() - started))
    return results


@dataclass
class EnvironmentStatus:
    stack_name: str
    stack_status: str | None
    meaning: str = ""
    advice: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    database_ready: bool = False
    database_detail: str = ""
    failures: list[str] = field(default_factory=list)
    cutover: str | None = None  # a restore's cutover of the DB secrets, as one line (rentaliq.ops.recovery.cutover)
    schedule: dict[str, Any] | None = None  # the off-hours schedule and the next transition (rentaliq.ops.schedules)
    schedule_lines: list[str] = field(default_factory=list)
    stopped_by_schedule: bool = False  # stopped off-hours: not reachable, and that is not a failure


def status(target: Target, spec: EnvironmentSpec) -> EnvironmentStatus:
    """Works on a stack in any state: a half-created stack has no outputs and maybe no database secret yet."""
    stack = stacks.describe(target, spec.stack_name)
    if stack is None:
        return EnvironmentStatus(spec.stack_name, None, states.meaning(None), database_detail="not deployed")
    code = stack["StackStatus"]
    advice = states.blocker(code, "deploy", spec.stack_name, spec.name.value, target.aws_cli)
    if states.clean_before_create(code):
        advice = "the next `up` deletes it and creates it anew"
    failures: list[str] = []
    if states.kind(code) is not states.Kind.STABLE or code.endswith("ROLLBACK_COMPLETE"):
        for e in stacks.events(target, stack["StackId"]):
            line = f"{e.status} {e.resource_type} {e.logical_id}: {e.reason}"
            if e.failed and line not in failures:
                failures.append(line)
        failures = failures[-5:]
    from rentaliq.ops.schedules import status_view

    schedule, lines, instance_status = status_view(target, spec.name.value)
    stopped = instance_status in ("stopped", "stopping") and bool(schedule and schedule.get("start"))
    if stopped:  # no connection attempt: it would only time out; say when it starts instead
        ready, detail = False, f"RDS: {instance_status}; its start schedule starts it again, `{command('wake', spec.name.value)}` now"
    elif "DbEndpoint" in stacks.outputs(stack):
        ready, detail = check_connection(target, spec)
    else:  # never created, or mid-create: its secret may lack the endpoint, so there is nothing to connect to
        ready, detail = False, f"no database endpoint yet (stack {code})"
    from rentaliq.ops.recovery.cutover import active

    cut = active(target, spec.name.value)
    return EnvironmentStatus(
        spec.stack_name,
        code,
        states.meaning(code),
        advice,
        stacks.outputs(stack),
        ready,
        detail,
        failures,
        cut.describe() if cut else None,
        schedule,
        lines,
        stopped,
    )
