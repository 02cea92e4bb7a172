"""`rentaliq up|diff|deploy|destroy|status|psql|protection`: environments on the local cloud or AWS."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape

from rentaliq import naming
from rentaliq.cli.options import AllowReplacementOpt, ConfirmProdOpt, DryRunOpt, EnvArg, JsonOpt, OptionalEnvArg, OutdirOpt, RestoreRetainedOpt
from rentaliq.cli.output import console, err_console, fail, print_json
from rentaliq.cli.specs import spec_or_fail
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve
from rentaliq.deploy.commands import command
from rentaliq.environments import ENV_NAMES, EnvironmentSpec, SpecError, load_specs

if TYPE_CHECKING:
    from rich.status import Status

    from rentaliq.deploy.lifecycle import UpResult
    from rentaliq.deploy.replacements import Change
    from rentaliq.deploy.stacks import StackEvent
    from rentaliq.deploy.target import Target

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    for function in (up, diff, deploy, destroy, status, psql, protection):
        app.command()(function)


def _print_event(event: StackEvent) -> None:
    style = "red" if event.failed else "green" if event.status.endswith("_COMPLETE") else "dim"
    reason = f"  {event.reason}" if event.reason else ""
    err_console.print(f"  [{style}]{event.status:<22}[/] {event.resource_type:<42} {event.logical_id}{reason}", highlight=False, soft_wrap=True)


def _deploy_errors(action: Callable[[], T], tgt: Target | None = None, rerun: str = "") -> T:
    """Run a deploy-engine call; every failure a user can act on becomes one line (plus the failing stack events)."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    from rentaliq.deploy.changesets import DeployError
    from rentaliq.deploy.deployed_spec import SpecBelowDeployed
    from rentaliq.deploy.destroy import DestroyRefused
    from rentaliq.deploy.locks import EnvironmentLocked

    try:
        return action()
    except DeployError as error:
        for event in error.events:
            err_console.print(f"  [red]{event.status}[/] {event.resource_type} {event.logical_id}: {event.reason}", highlight=False, soft_wrap=True)
        fail(str(error))
    except (TimeoutError, EnvironmentLocked, DestroyRefused, SpecBelowDeployed) as error:
        fail(str(error))
    except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectionError):
        if tgt is None or not tgt.is_local:
            raise
        log = tgt.state_dir / "server.log" if tgt.state_dir else "server.log"
        fail(f"the local cloud stopped during the operation; see {log}; run `{rerun}` again")


def _locked(tgt: Target, envs: list[str], argv: list[str]) -> AbstractContextManager[None]:
    from rentaliq.deploy.locks import hold

    return hold(tgt.state_dir if tgt.is_local else None, envs, command(*argv))


def _warn(message: str) -> None:
    err_console.print(f"[yellow]{message}[/]", highlight=False, soft_wrap=True)


def _step(progress: Status) -> Callable[[str], None]:
    def report(message: str) -> None:
        progress.update(message)
        if not message.startswith(("synthesizing", "deploying", "waiting", "nothing")):
            err_console.print(message, highlight=False, soft_wrap=True)

    return report


def up(
    env: OptionalEnvArg = None,
    all_envs: Annotated[bool, typer.Option("--all", help="All three environments")] = False,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    outdir: OutdirOpt = Path("cdk.out"),
    allow_replacement: AllowReplacementOpt = None,
    restore_retained: RestoreRetainedOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Start the local cloud if needed, deploy, and wait until the database takes TLS connections."""
    if bool(env) == all_envs:
        fail(f"give one environment ({', '.join(ENV_NAMES)}) or --all")
    try:
        specs = load_specs([env] if env else None)  # no env: --all (exactly one of the two, checked above)
    except SpecError as error:
        fail(str(error))
    from rentaliq.deploy.lifecycle import up as run_up

    allowed = _allowed(allow_replacement, specs)
    tgt = resolve(target, specs[0], profile)
    # The command as given (exactly one of env / --all, checked above): what a rerun hint and the lock holder show.
    argv = ["up", env or "--all", *(["--restore-retained"] if restore_retained else []), *(f"--allow-replacement={name}" for name in sorted(allowed))]
    envs = [s.name.value for s in specs]
    with err_console.status("starting") as progress:
        results = _deploy_errors(
            lambda: _run_locked(
                tgt, envs, argv, lambda: run_up(tgt, specs, outdir, _print_event, _step(progress), allow_replacement=allowed, restore_retained=restore_retained)
            ),
            tgt,
            command(*argv),
        )
    if json_out:
        print_json(
            [
                {
                    "stack": r.spec.stack_name,
                    "status": r.deploy.status,
                    "changed": r.deploy.changed,
                    "outputs": r.deploy.outputs,
                    "database": r.database,
                    "seconds": round(r.seconds, 2),
                }
                for r in results
            ]
        )
        return
    for r in results:
        _summary(r, tgt)


def _allowed(names: list[str] | None, specs: list[EnvironmentSpec]) -> frozenset[str]:
    """The --allow-replacement names, each checked against the resources of the environments being deployed."""
    from rentaliq.deploy.replacements import short_names

    known = sorted({n for spec in specs for n in short_names(spec.name.value).values() if spec.storage.access_logs or not n.endswith("-access-logs")})
    for name in names or ():
        if name not in known:
            fail(f"--allow-replacement {name!r} names no stateful resource here; allowed: {', '.join(known)}")
    return frozenset(names or ())


def _run_locked(tgt: Target, envs: list[str], argv: list[str], action: Callable[[], T]) -> T:
    with _locked(tgt, envs, argv):
        return action()


def _summary(result: UpResult, tgt: Target) -> None:
    spec, outputs = result.spec, result.deploy.outputs
    env = spec.name.value
    changed = f"{len(result.deploy.changes)} change(s)" if result.deploy.changed else "no changes"
    console.print(f"[bold green]✓ {spec.stack_name}[/] {result.deploy.status} ({changed}, {result.seconds:.1f}s)", highlight=False)
    console.print(f"  database  {naming.db_instance_id(env)} → {outputs.get('DbEndpoint')}:{outputs.get('DbPort')} ({result.database})", highlight=False)
    buckets = [outputs.get("FilesBucketName")] + ([outputs["AccessLogsBucketName"]] if "AccessLogsBucketName" in outputs else [])
    console.print(f"  buckets   {', '.join(b for b in buckets if b)}", highlight=False)
    console.print(f"  secrets   {', '.join(naming.secret_path(env, n) for n in naming.SECRET_NAMES)}", highlight=False)
    console.print("  next steps:", highlight=False)
    steps = []
    if tgt.is_local:
        steps.append((f'eval "$({command("local", "env")})"', "point aws (v1 and v2), boto3 and SDKs at the local cloud"))
        steps.append((command("aws", "s3", "ls", f"s3://{outputs.get('FilesBucketName')}"), "the aws CLI, always against the local cloud"))
    else:
        steps.append((f"aws s3 ls s3://{outputs.get('FilesBucketName')}", "the environment's bucket"))
    steps.append((command("psql", env), "a psql session, credentials from Secrets Manager"))
    steps.append((command("verify", env), "audit the live environment against its spec"))
    width = max(len(c) for c, _ in steps)
    for cmd, why in steps:
        console.print(f"    {cmd:<{width}}  # {why}", highlight=False, markup=False)


def diff(
    env: EnvArg, target: TargetOpt = TargetChoice.local, profile: ProfileOpt = None, outdir: OutdirOpt = Path("cdk.out"), json_out: JsonOpt = False
) -> None:
    """Preview a deploy as a change set, resource by resource."""
    spec = spec_or_fail(env)
    from rentaliq.deploy.changesets import diff as run_diff
    from rentaliq.infra.cache import templates

    tgt = resolve(target, spec, profile)
    with err_console.status(f"computing the change set for {spec.stack_name}"):
        changes = _deploy_errors(lambda: run_diff(tgt, spec, templates([spec], outdir)[spec.stack_name], on_step=_warn), tgt, command("diff", env))
    if json_out:
        print_json([{**c.__dict__, "replaces": c.replaces} for c in changes])
        return
    if not changes:
        console.print(f"{spec.stack_name}: no changes", highlight=False)
        return
    for line in change_lines(changes, spec.stack_name):
        console.print(line, highlight=False, soft_wrap=True)


def change_lines(changes: list[Change], stack_name: str) -> list[str]:
    """The diff as Rich markup lines: replacements in bold red with the property that causes them."""
    symbols = {"Add": "[green]+[/]", "Modify": "[yellow]~[/]", "Remove": "[red]-[/]", "Import": "[cyan]<[/]"}
    lines = []
    for c in changes:
        if c.replaces:
            word = "REPLACE" if c.replacement == "True" else "MAY REPLACE"
            cause = f" because of {', '.join(c.causes)}" if c.causes else ""
            lines.append(f"[bold red]±[/] {c.resource_type:<44} {c.logical_id}  [bold red]{word}[/]{cause}")
        else:
            lines.append(f"{symbols.get(c.action, '?')} {c.resource_type:<44} {c.logical_id}")
    replaced = sum(1 for c in changes if c.replaces)
    extra = f", [bold red]{replaced} replacement(s)[/]: the old resource and its data are deleted" if replaced else ""
    lines.append(f"{stack_name}: {len(changes)} change(s){extra}")
    return lines


def deploy(
    env: EnvArg,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    outdir: OutdirOpt = Path("cdk.out"),
    allow_replacement: AllowReplacementOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Execute the change set, streaming stack events; on failure print the failing events (the stack rolls back)."""
    spec = spec_or_fail(env)
    from rentaliq.deploy.changesets import deploy as run_deploy
    from rentaliq.infra.cache import templates

    allowed = _allowed(allow_replacement, [spec])
    tgt = resolve(target, spec, profile)
    with err_console.status(f"deploying {spec.stack_name}") as progress:
        argv = ["deploy", env, *(f"--allow-replacement={name}" for name in sorted(allowed))]
        result = _deploy_errors(
            lambda: _run_locked(
                tgt,
                [env],
                argv,
                lambda: run_deploy(tgt, spec, templates([spec], outdir)[spec.stack_name], _print_event, allow_replacement=allowed, on_step=_step(progress)),
            ),
            tgt,
            command(*argv),
        )
    if json_out:
        print_json({"stack": result.stack_name, "status": result.status, "changed": result.changed, "outputs": result.outputs})
        return
    changes = f"{len(result.changes)} change(s)" if result.changed else "no changes"
    console.print(f"[green]✓[/] {result.stack_name} {result.status} ({changes}, {result.seconds:.1f}s)", highlight=False)


def destroy(
    env: EnvArg,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    confirm_prod: ConfirmProdOpt = False,
    empty_buckets: Annotated[bool, typer.Option("--empty-buckets", help="Delete every object version in the stack's buckets first")] = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Delete an environment: secrets with its recovery window, buckets only when emptied on purpose."""
    spec = spec_or_fail(env)

    tgt = resolve(target, spec, profile)
    argv = ["destroy", env, *(["--confirm-prod"] if confirm_prod else []), *(["--empty-buckets"] if empty_buckets else [])]
    # Plan, check and delete under one lock: what was checked is what gets deleted.
    _deploy_errors(lambda: _run_locked(tgt, [env], argv, lambda: _destroy(tgt, spec, confirm_prod, empty_buckets, dry_run)), tgt, command(*argv))


def _destroy(tgt: Target, spec: EnvironmentSpec, confirm_prod: bool, empty_buckets: bool, dry_run: bool) -> None:
    from rentaliq.deploy import destroy as d

    plan = d.plan(tgt, spec)
    if not plan.exists:
        console.print(f"{spec.stack_name}: not deployed; nothing to destroy", highlight=False)
        return
    console.print(f"destroy {spec.stack_name} ({plan.status}):", highlight=False)
    for name, window in plan.secrets.items():
        console.print(
            f"  secret  {name}: " + ("deleted" if window == 0 else f"scheduled for deletion, recoverable for {window} days") + " once the stack is gone",
            highlight=False,
        )
    for bucket, count in plan.buckets_to_empty.items():
        console.print(f"  bucket  {bucket}: {count} object versions to delete", highlight=False)
    for bucket in plan.buckets_retained:
        console.print(f"  bucket  {bucket}: retained (DeletionPolicy Retain)", highlight=False)
    if plan.database:
        console.print(f"  database {plan.database}: deleted" + (" after a final snapshot" if plan.final_snapshot else ", no final snapshot"), highlight=False)
    d.check(tgt, spec, plan, confirm_prod=confirm_prod, empty_buckets=empty_buckets)
    if dry_run:
        console.print("dry run: nothing changed", highlight=False)
        return
    with err_console.status(f"deleting {spec.stack_name}"):
        d.destroy(tgt, spec, plan, _print_event)
    console.print(f"[green]✓[/] {spec.stack_name} deleted", highlight=False)


def protection(
    state: Annotated[str, typer.Argument(help="on | off")],
    env: EnvArg,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    confirm_prod: ConfirmProdOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Turn the database's deletion protection on or off (a deliberate step before destroying PROD)."""
    if state not in ("on", "off"):
        fail(f"protection state {state!r} is invalid; allowed: on, off")
    spec = spec_or_fail(env)
    if spec.is_prod and state == "off" and not confirm_prod:
        fail(f"refusing to lift deletion protection on {naming.db_instance_id(env)}: pass --confirm-prod")
    if dry_run:
        console.print(f"dry run: would turn deletion protection {state} for {naming.db_instance_id(env)}", highlight=False)
        return
    from rentaliq.deploy.destroy import set_deletion_protection

    set_deletion_protection(resolve(target, spec, profile), spec, state == "on")
    console.print(f"[green]✓[/] deletion protection {state} for {naming.db_instance_id(env)}", highlight=False)


def status(env: EnvArg, target: TargetOpt = TargetChoice.local, profile: ProfileOpt = None, json_out: JsonOpt = False) -> None:
    """Stack state, outputs, endpoints, the off-hours schedule, and whether the database accepts connections
    (exit 1 when it does not, unless its schedule stopped it)."""
    spec = spec_or_fail(env)
    from rentaliq.deploy.lifecycle import status as run_status

    tgt = resolve(target, spec, profile, start=False)
    result = _deploy_errors(lambda: run_status(tgt, spec), tgt, command("status", env))
    if json_out:
        print_json(result.__dict__)
        return
    console.print(f"{result.stack_name}: {result.stack_status or 'not deployed'}" + (f" ({result.meaning})" if result.stack_status else ""), highlight=False)
    if result.advice:
        console.print(f"  [yellow]{result.advice}[/]", highlight=False, soft_wrap=True)
    for failure in result.failures:
        console.print(f"  [red]{failure}[/]", highlight=False, soft_wrap=True)
    for key, value in result.outputs.items():
        console.print(f"  {key:<28} {value}", highlight=False)
    if result.cutover:
        console.print(f"  [bold yellow]{escape(result.cutover)}[/]", highlight=False, soft_wrap=True)
    for line in result.schedule_lines:
        console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    mark = "[green]accepts TLS connections[/]" if result.database_ready else "[yellow]stopped[/]" if result.stopped_by_schedule else "[red]not reachable[/]"
    console.print(f"  database: {mark} ({escape(result.database_detail)})", highlight=False, soft_wrap=True)
    if result.stack_status is None or not (result.database_ready or result.stopped_by_schedule):
        raise typer.Exit(1)


def psql(
    env: EnvArg,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    args: Annotated[list[str] | None, typer.Argument(help="Extra psql arguments (after --)")] = None,
) -> None:
    """Open psql on the environment's database; the password goes through the environment, never argv or output."""
    spec = spec_or_fail(env)
    from rentaliq.deploy.database import credentials

    if not shutil.which("psql"):
        fail("psql not found on PATH; install it with: apt-get install postgresql-client-15")
    from rentaliq.deploy.db_tls import libpq_tls

    tgt = resolve(target, spec, profile)
    creds = credentials(tgt, spec)
    child_env = {
        **os.environ,
        "PGPASSWORD": creds["password"],
        **{f"PG{key.upper()}": value for key, value in libpq_tls(tgt).items()},  # PGSSLMODE, PGSSLROOTCERT
        "PGHOST": creds["host"],
        "PGPORT": str(creds["port"]),
        "PGUSER": creds["username"],
        "PGDATABASE": creds["dbname"],
        "PGAPPNAME": f"rentaliq-psql-{env}",
    }
    sys.stdout.flush()
    os.execvpe("psql", ["psql", *(args or [])], child_env)
