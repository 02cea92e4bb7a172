"""`rentaliq drill ENV`: the DR drill (a thin layer over rentaliq.ops.drill); exit 1 on a missed target or a mismatch."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape

from rentaliq.cli.options import EnvArg, JsonOpt
from rentaliq.cli.output import console, err_console, fail, print_json
from rentaliq.cli.specs import spec_or_fail
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve

YesOpt = Annotated[bool, typer.Option("--yes", help="Required with --target aws: the drill creates a scratch RDS instance, billed while it exists")]


def register(app: typer.Typer) -> None:
    app.command()(drill)


def _seconds(value: float | None) -> str:
    if value is None:
        return "not measured"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def drill(env: EnvArg, target: TargetOpt = TargetChoice.local, profile: ProfileOpt = None, json_out: JsonOpt = False, yes: YesOpt = False) -> None:
    """Restore the latest restorable point to a scratch instance, compare every table, measure RPO and RTO against the spec, delete it."""
    spec = spec_or_fail(env)
    if target is TargetChoice.aws and not yes:
        fail(f"refusing to run a DR drill of {env} on AWS without --yes: it creates a scratch RDS instance (billed while it exists, deleted at the end)")
    from rentaliq.ops.drill import DrillError, run_drill
    from rentaliq.runtime.errors import SecretError

    tgt = resolve(target, spec, profile, start=False)
    started = time.monotonic()

    def progress(message: str) -> None:
        err_console.print(f"[dim]{time.monotonic() - started:7.1f}s[/] {escape(message)}", highlight=False, soft_wrap=True)

    try:
        report = run_drill(tgt, spec, on_progress=progress)
    except (DrillError, SecretError) as error:
        fail(str(error))
    except KeyboardInterrupt:
        fail("interrupted (the scratch instance was cleaned up, see above)", code=130)
    if json_out:
        print_json(report.to_dict())
    else:
        for check in report.tables:
            mark = "[green]✓[/]" if check.match else "[red]✗[/]"
            rows = f"{check.source.rows if check.source else '—'} / {check.restored.rows if check.restored else '—'} rows"
            console.print(f"{mark} {escape(check.name):<40} {rows:<20} {escape(check.scope)}", highlight=False, soft_wrap=True)
        bound = "≥ " if report.rpo_is_lower_bound else ""
        for name, value, goal, met in (
            ("RPO", report.rpo_seconds, report.rpo_target_seconds, report.rpo_met),
            ("RTO", report.rto_seconds, report.rto_target_seconds, report.rto_met),
        ):
            mark = "[green]✓[/]" if met else "[red]✗[/]"
            shown = bound + _seconds(value) if name == "RPO" and value is not None else _seconds(value)
            extra = ""
            if name == "RPO" and report.restorable_lag_max_seconds is not None:
                extra = f", restorable time up to {_seconds(report.restorable_lag_max_seconds)} behind"
            console.print(f"{mark} {name} {shown}{extra} (target: below {_seconds(goal)})", highlight=False)
        console.print(f"scratch instance {report.scratch_instance}: {escape(report.cleanup)}", highlight=False)
        for problem in report.problems:
            console.print(f"[red]✗[/] {escape(problem)}", highlight=False, soft_wrap=True)
        verdict = "[green]drill passed[/]" if report.ok else "[bold red]drill FAILED[/]"
        console.print(f"{verdict} ({_seconds(report.elapsed_seconds)} in all, {report.markers_written} markers written)", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
