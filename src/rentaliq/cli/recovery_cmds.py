"""`rentaliq backup|backups|restore|replica|scale|failover`: RDS recovery, a thin layer over rentaliq.ops.recovery.

Every command prints its plan first, then refuses (bad input, PROD without --confirm-prod) or, with
--dry-run, stops: nothing changed. Commands that change something hold the environment's lock, like
`deploy`. Long waits show progress on stderr; every failure is one line and exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from rentaliq.cli.options import ConfirmProdOpt, DryRunOpt, EnvArg, JsonOpt
from rentaliq.cli.output import console, err_console, fail, print_json
from rentaliq.cli.specs import spec_or_fail
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve
from rentaliq.deploy.commands import command
from rentaliq.environments import EnvironmentSpec

if TYPE_CHECKING:
    from rentaliq.deploy.target import Target
    from rentaliq.ops.recovery.instances import LiveInstance

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    for function in (backup, backups, restore, replica, scale, failover):
        app.command()(function)


def _guarded(action: Callable[[], T]) -> T:
    """Run a library call; a refusal, a busy environment or an AWS error becomes one line and exit 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    from rentaliq.deploy.locks import EnvironmentLocked
    from rentaliq.ops.recovery.errors import RecoveryError

    try:
        return action()
    except (RecoveryError, EnvironmentLocked) as error:
        fail(str(error))
    except ClientError as error:
        fail(" ".join(str(error).split())[:500])
    except BotoCoreError as error:
        fail(f"{type(error).__name__}: {' '.join(str(error).split())[:300]}")


def _change(tgt: Target, env: str, argv: list[str], run: Callable[[Callable[[str], None]], T], start: str) -> T:
    """Run a change under the environment's lock (as `deploy` holds it), with progress, failures as one line."""
    from rentaliq.deploy.locks import hold

    def locked() -> T:
        with hold(tgt.state_dir if tgt.is_local else None, [env], command(*argv)):
            return _progress(run, start)

    return _guarded(locked)


def _show_plan(lines: list[str]) -> None:
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _go_ahead(spec: EnvironmentSpec, plan: list[str], confirm_prod: bool, dry_run: bool, action: str) -> bool:
    """Show the plan, refuse PROD without --confirm-prod, stop a dry run: whether the command goes on to change something."""
    from rentaliq.ops.recovery.errors import require_prod_confirmation

    _show_plan(plan)
    _guarded(lambda: require_prod_confirmation(spec, confirm_prod, action))
    if dry_run:
        console.print("dry run: nothing changed", highlight=False)
        return False
    return True


def _progress(run: Callable[[Callable[[str], None]], T], start: str) -> T:
    """Run with a spinner; each step is shown on the spinner, and every line but the repeated 'waiting for' is kept."""
    with err_console.status(start) as spinner:

        def report(message: str) -> None:
            spinner.update(message)
            if not message.startswith("waiting for"):
                err_console.print(f"  {message}", highlight=False, markup=False, soft_wrap=True)

        return run(report)


def _delete_hint(tgt: Target, identifier: str) -> str:
    return f"{tgt.aws_cli} rds delete-db-instance --db-instance-identifier {identifier} --skip-final-snapshot"


def _endpoint(instance: LiveInstance) -> str:
    return f"{instance.identifier} → {instance.endpoint}"


def backup(env: EnvArg, target: TargetOpt = TargetChoice.local, profile: ProfileOpt = None, dry_run: DryRunOpt = False, json_out: JsonOpt = False) -> None:
    """Take a manual snapshot (rentaliq-ENV-manual-YYYYMMDD[-n]) and wait until it is available."""
    from rentaliq.ops.recovery import backup as b

    spec = spec_or_fail(env)
    tgt = resolve(target, spec, profile, start=False)
    planned = _guarded(lambda: b.plan(tgt, spec))
    if not json_out:
        _show_plan(planned.lines())
    if dry_run:
        if json_out:
            print_json({"dry_run": True, "snapshot": planned.snapshot, "instance": planned.instance})
        else:
            console.print("dry run: nothing changed", highlight=False)
        return
    snap = _change(tgt, env, ["backup", env], lambda report: b.take(tgt, planned, report), f"snapshot {planned.snapshot}")
    if json_out:
        print_json(snap.to_dict())
        return
    console.print(f"[green]✓[/] snapshot {snap.identifier} of {snap.instance} is {snap.status} ({snap.allocated_gib} GiB)", highlight=False)


def backups(env: EnvArg, target: TargetOpt = TargetChoice.local, profile: ProfileOpt = None, json_out: JsonOpt = False) -> None:
    """List the automated and manual snapshots of the environment's database and its restorable window."""
    from rentaliq.ops.recovery.catalog import catalog
    from rentaliq.ops.recovery.times import utc

    spec = spec_or_fail(env)
    tgt = resolve(target, spec, profile, start=False)
    found = _guarded(lambda: catalog(tgt, spec))
    if json_out:
        print_json(found.to_dict())
        return
    if not found.deployed:
        console.print(f"{found.instance}: not deployed (snapshots it left are listed below)", highlight=False)
    else:
        earliest = utc(found.earliest) if found.earliest else "unknown"
        latest = utc(found.latest) if found.latest else "none (no automated backups)"
        console.print(f"{found.instance}: backup retention {found.retention_days} days", highlight=False)
        console.print(f"  point-in-time restore window: {earliest} to {latest}", highlight=False)
    if not found.snapshots:
        console.print("  no snapshots", highlight=False)
    for s in found.snapshots:
        created = utc(s.created) if s.created else "—"
        state = s.status + (f" {s.percent}%" if s.percent is not None and s.status != "available" else "")
        console.print(f"  {s.kind:<9} {s.identifier:<48} {state:<14} {created}  {s.allocated_gib} GiB", highlight=False)


def restore(
    env: EnvArg,
    snapshot: Annotated[str | None, typer.Option("--snapshot", metavar="ID", help="Restore this snapshot (see `rentaliq backups ENV`)")] = None,
    to_time: Annotated[str | None, typer.Option("--to-time", metavar="T", help="Point in time, ISO 8601 (UTC unless an offset is given)")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="The latest restorable time")] = False,
    as_name: Annotated[
        str | None, typer.Option("--as", metavar="NAME", help="Name of the new instance (default rentaliq-ENV-db-restored-YYYYMMDDHHMM)")
    ] = None,
    cutover: Annotated[bool, typer.Option("--cutover", help="Then point the environment's DB secrets at the restored instance")] = False,
    rollback_cutover: Annotated[bool, typer.Option("--rollback-cutover", help="Put the secrets back to what the cutover replaced")] = False,
    confirm_prod: ConfirmProdOpt = False,
    dry_run: DryRunOpt = False,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
) -> None:
    """Restore the database to a NEW instance (never overwrites); optionally cut the environment's secrets over to it."""
    from rentaliq.ops.recovery import restore as r
    from rentaliq.ops.recovery.times import parse_time

    spec = spec_or_fail(env)
    if rollback_cutover:
        extra = [o for o, v in (("--snapshot", snapshot), ("--to-time", to_time), ("--latest", latest), ("--as", as_name), ("--cutover", cutover)) if v]
        if extra:
            fail(f"--rollback-cutover takes none of {', '.join(extra)}; it only puts the secrets back")
        return _rollback(spec, target, profile, confirm_prod, dry_run)
    when = _guarded(lambda: parse_time(to_time)) if to_time else None
    source = _guarded(lambda: r.Source.from_options(snapshot, when, latest))
    tgt = resolve(target, spec, profile, start=False)
    planned = _guarded(lambda: r.plan(tgt, spec, source, as_name, cutover=cutover))
    if not _go_ahead(spec, planned.lines(), confirm_prod, dry_run, f"restore {planned.new_instance}"):
        return
    argv = ["restore", env, *(["--cutover"] if cutover else [])]

    def run(report: Callable[[str], None]) -> LiveInstance:
        restored = r.run(tgt, planned, report)
        if cutover:
            from rentaliq.ops.recovery import cutover as c

            c.prepare(tgt, spec, restored, report)
            c.cut_over(tgt, spec, restored, report)
        return restored

    restored = _change(tgt, env, argv, run, f"restoring to {planned.new_instance}")
    console.print(f"[green]✓[/] restored {_endpoint(restored)} ({restored.status})", highlight=False)
    if cutover:
        console.print(
            f"  the secrets of {env} now point at {restored.identifier}; undo with `{command('restore', env, '--rollback-cutover')}`", highlight=False
        )
    else:
        console.print(f"  {planned.source_instance} is untouched; delete the copy when done: `{_delete_hint(tgt, restored.identifier)}`", highlight=False)


def _rollback(spec: EnvironmentSpec, target: TargetChoice, profile: str | None, confirm_prod: bool, dry_run: bool) -> None:
    from rentaliq import naming
    from rentaliq.ops.recovery import cutover as c

    env = spec.name.value
    tgt = resolve(target, spec, profile, start=False)
    state = _guarded(lambda: c.active(tgt, env))
    if state is None:
        fail(f"no cutover to roll back: the secrets of {env} point at {naming.db_instance_id(env)}")
    back = f"back to their values before the cutover (pointing at {naming.db_instance_id(env)})"
    plan = [f"rollback {env}: {', '.join(state.secrets)} {back}; {state.instance} is left running"]
    if not _go_ahead(spec, plan, confirm_prod, dry_run, "roll back the cutover"):
        return
    _change(tgt, env, ["restore", env, "--rollback-cutover"], lambda report: c.rollback(tgt, spec, report), "rolling back")
    console.print(
        f"[green]✓[/] the secrets of {env} point at {naming.db_instance_id(env)} again; {state.instance} still runs: "
        f"delete it when done (`{_delete_hint(tgt, state.instance)}`)",
        highlight=False,
    )


def replica(
    action: Annotated[str, typer.Argument(help="create | promote | delete", show_default=False)],
    env: EnvArg,
    name: Annotated[str | None, typer.Argument(help="Replica name (default: rentaliq-ENV-db-replica[-n]; promote/delete: the only replica)")] = None,
    confirm_prod: ConfirmProdOpt = False,
    dry_run: DryRunOpt = False,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
) -> None:
    """Create, promote or delete a read replica of the environment's database."""
    from rentaliq.ops.recovery import replicas

    if action not in replicas.ACTIONS:
        fail(f"replica action {action!r} is unknown; allowed: {', '.join(replicas.ACTIONS)}")
    spec = spec_or_fail(env)
    tgt = resolve(target, spec, profile, start=False)
    planned = _guarded(lambda: replicas.plan(tgt, spec, action, name))
    if not _go_ahead(spec, planned.lines(), confirm_prod, dry_run, f"{action} the read replica {planned.replica}"):
        return
    result = _change(tgt, env, ["replica", action, env], lambda report: replicas.run(tgt, spec, planned, report), f"replica {action}")
    if result is None:
        console.print(f"[green]✓[/] read replica {planned.replica} deleted", highlight=False)
    else:
        console.print(
            f"[green]✓[/] {_endpoint(result)} ({'read replica of ' + result.replica_source if result.replica_source else 'independent, writable'})",
            highlight=False,
        )


def scale(
    env: EnvArg,
    instance_class: Annotated[str | None, typer.Option("--class", metavar="C", help="New instance class, e.g. db.t3.large")] = None,
    storage: Annotated[int | None, typer.Option("--storage", metavar="GIB", help="New allocated storage in GiB (only grows)")] = None,
    now: Annotated[bool, typer.Option("--now", help="Apply now (the instance restarts) instead of in the maintenance window")] = False,
    confirm_prod: ConfirmProdOpt = False,
    dry_run: DryRunOpt = False,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
) -> None:
    """Change the database's instance class and/or storage; pending until the maintenance window unless --now."""
    from rentaliq.ops.recovery import scale as s

    spec = spec_or_fail(env)
    tgt = resolve(target, spec, profile, start=False)
    planned = _guarded(lambda: s.plan(tgt, spec, instance_class, storage, now))
    if not _go_ahead(spec, planned.lines(), confirm_prod, dry_run, f"scale {planned.instance}"):
        return
    result = _change(tgt, env, ["scale", env], lambda report: s.run(tgt, planned, report), f"scaling {planned.instance}")
    if now:
        console.print(f"[green]✓[/] {result.identifier} is {result.instance_class} with {result.allocated_storage} GiB ({result.status})", highlight=False)
    else:
        pending = ", ".join(f"{k} {v}" for k, v in result.pending.items())
        if pending:
            console.print(f"[green]✓[/] {result.identifier}: pending until the maintenance window {result.maintenance_window}: {pending}", highlight=False)
        else:
            console.print(
                f"[yellow]![/] {result.identifier}: RDS reports nothing pending; it is {result.instance_class} with {result.allocated_storage} GiB",
                highlight=False,
            )


def failover(
    env: EnvArg,
    confirm_prod: ConfirmProdOpt = False,
    dry_run: DryRunOpt = False,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
) -> None:
    """Force a Multi-AZ failover (reboot with failover): the standby takes over behind the same endpoint."""
    from rentaliq.ops.recovery import failover as f

    spec = spec_or_fail(env)
    tgt = resolve(target, spec, profile, start=False)
    planned = _guarded(lambda: f.plan(tgt, spec))
    if not _go_ahead(spec, planned.lines(), confirm_prod, dry_run, f"fail over {planned.instance}"):
        return
    result = _change(tgt, env, ["failover", env], lambda report: f.run(tgt, planned, report), f"failing over {planned.instance}")
    console.print(f"[green]✓[/] {_endpoint(result)} ({result.status}, zone {planned.availability_zone} → {result.availability_zone})", highlight=False)
