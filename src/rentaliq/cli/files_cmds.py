"""`rentaliq files ...`: operations on an environment's files bucket (a thin layer over rentaliq.ops.file_restore)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from rentaliq.cli.options import ConfirmProdOpt, DryRunOpt, EnvArg, JsonOpt
from rentaliq.cli.output import console, err_console, fail, print_json
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve
from rentaliq.environments import SpecError, load_spec

files_app = typer.Typer(help="The environment's files bucket: point-in-time restore of objects.", no_args_is_help=True)

AsOfOpt = Annotated[str, typer.Option("--as-of", help="Restore to this time: ISO-8601 with a timezone, e.g. 2025-11-08T10:00:00Z", show_default=False)]
PrefixOpt = Annotated[str, typer.Option("--prefix", help="Only keys under this prefix (default: the whole bucket)")]

STYLE = {"restore": "yellow", "undelete": "green", "delete": "red", "unchanged": "dim"}


def register(app: typer.Typer) -> None:
    app.add_typer(files_app, name="files")


def _version(entry: object) -> str:
    if entry is None:
        return "absent"
    marker = getattr(entry, "is_delete_marker", False)
    return "delete marker" if marker else str(getattr(entry, "version_id", "?"))


@files_app.command("restore")
def restore(
    env: EnvArg,
    as_of: AsOfOpt,
    prefix: PrefixOpt = "",
    dry_run: DryRunOpt = False,
    confirm_prod: ConfirmProdOpt = False,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Bring every object under PREFIX back to its version as of T: restore, undelete or delete (history is kept).

    Needs a versioned bucket (qa, prod); PROD needs --confirm-prod unless --dry-run.
    """
    from rentaliq.ops.file_restore import FileRestoreError, KeyResult, RestorePlan, check_allowed, check_prefix, parse_as_of, restore_files

    try:
        spec = load_spec(env)
        when = parse_as_of(as_of)
        check_prefix(prefix)
        check_allowed(spec, dry_run=dry_run, confirm_prod=confirm_prod)
    except (SpecError, FileRestoreError) as error:
        fail(str(error))
    tgt = resolve(target, spec, profile, start=False)
    out = err_console if json_out else console
    status = err_console.status("listing versions")

    def listed(count: int) -> None:
        if count % 100 == 0:
            status.update(f"listing versions: {count} keys")

    def planned(plan: RestorePlan) -> None:
        status.stop()
        if json_out:
            return
        where = f"s3://{plan.bucket}/{plan.prefix}"
        console.print(f"{'plan' if dry_run else 'restore'} {escape(where)} as of {plan.as_of.isoformat()}:", highlight=False)
        for item in plan.items:
            arrow = f"{_version(item.current)} → {_version(item.as_of) if item.action != 'delete' else 'delete marker'}"
            line = f"  [{STYLE[item.action]}]{item.action:<9}[/] {escape(item.key)}  ({escape(arrow)}; {escape(item.reason)})"
            console.print(line, highlight=False, soft_wrap=True)
        counts = plan.counts()
        console.print(", ".join(f"{n} {a}" for a, n in counts.items()), highlight=False)

    progress_every = [0]

    def done(count: int, total: int, result: KeyResult) -> None:
        if not result.ok:
            out.print(f"[red]✗[/] {escape(result.plan.key)}: {escape(result.error or '')}", highlight=False, soft_wrap=True)
        step = max(1, total // 20)
        if count == total or count - progress_every[0] >= step:
            progress_every[0] = count
            err_console.print(f"applied {count}/{total}", highlight=False)

    status.start()
    try:
        report = restore_files(tgt, spec, when, prefix=prefix, dry_run=dry_run, confirm_prod=confirm_prod, on_listed=listed, on_plan=planned, on_done=done)
    except FileRestoreError as error:
        status.stop()
        fail(str(error))
    finally:
        status.stop()
    if json_out:
        print_json(report.to_dict())
    elif dry_run:
        console.print("dry run: nothing changed", highlight=False)
    else:
        failed = len(report.failed)
        applied = len(report.results) - failed
        mark = "[red]✗[/]" if failed else "[green]✓[/]"
        console.print(f"{mark} {applied} applied, {failed} failed ({report.seconds:.1f}s)", highlight=False)
    if report.failed:
        raise typer.Exit(1)
