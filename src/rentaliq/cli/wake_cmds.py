"""`rentaliq wake ENV [--for 2h] [--dry-run]`: start a database stopped off-hours; a thin layer over rentaliq.ops.wake.

Like the recovery commands: the plan first, PROD only with --confirm-prod (PROD has no schedule, but starting a
stopped production database is still a production action), --dry-run stops there, the change holds the
environment's lock, progress on stderr, failures as one line and exit code 1. A database already running is said
so, exit 0.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rentaliq import naming
from rentaliq.cli.options import ConfirmProdOpt, DryRunOpt, EnvArg, JsonOpt
from rentaliq.cli.output import console, fail, print_json
from rentaliq.cli.recovery_cmds import _change, _guarded, _show_plan
from rentaliq.cli.specs import spec_or_fail
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve

ForOpt = Annotated[
    str | None,
    typer.Option("--for", metavar="DURATION", help="Keep it up at least this long (2h, 90m, 1h30m, 1d; at most 7d): the stop schedule waits"),
]


def register(app: typer.Typer) -> None:
    app.command()(wake)


def wake(
    env: EnvArg,
    for_: ForOpt = None,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    confirm_prod: ConfirmProdOpt = False,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Start the database now (an off-hours schedule stopped it), wait until available, and say when it stops again."""
    from rentaliq.ops import wake as w
    from rentaliq.ops.recovery.errors import require_prod_confirmation

    spec = spec_or_fail(env)
    duration = None
    if for_ is not None:
        try:
            duration = w.parse_duration(for_)
        except ValueError as error:
            fail(str(error))
    if not dry_run:  # refused before anything is read or changed
        _guarded(lambda: require_prod_confirmation(spec, confirm_prod, f"start {naming.db_instance_id(env)}"))
    tgt = resolve(target, spec, profile, start=False)
    planned = _guarded(lambda: w.plan(tgt, env, duration))
    if not json_out:
        _show_plan(planned.lines())
    if planned.status not in ("available", "starting", "stopped", "stopping"):
        fail(f"{planned.instance} is {planned.status}: only a stopped (or stopping) database can be woken; see `rentaliq status {env}`")
    if dry_run:
        if json_out:
            print_json(
                {
                    "dry_run": True,
                    "instance": planned.instance,
                    "status": planned.status,
                    "hold_until_utc": planned.hold_until.isoformat() if planned.hold_until else None,
                }
            )
        else:
            console.print("dry run: nothing changed", highlight=False)
        return
    if planned.already_running and planned.hold_until is None:
        state = planned.state.describe_next(planned.now)
        if json_out:
            print_json({"environment": env, "instance": planned.instance, "started": False, "status": planned.status, "next": state})
        else:
            console.print(f"[green]✓[/] {planned.instance} is already {planned.status}; the schedule {state}", highlight=False, soft_wrap=True)
        return
    result = _change(tgt, env, ["wake", env, *(["--for", for_] if for_ else [])], lambda report: w.wake(tgt, planned, report), f"waking {planned.instance}")
    if json_out:
        print_json(result.to_dict())
        return
    verb = "started, now" if result.started else "already running,"
    console.print(f"[green]✓[/] {result.instance} {verb} {result.status}; {result.next_stop_text}", highlight=False, soft_wrap=True)
