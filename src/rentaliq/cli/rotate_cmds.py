"""`rentaliq rotate ENV [--dry-run] [--confirm-prod]`: rotate the database credentials now; a thin layer over
rentaliq.ops.rotation.

Like the recovery commands: the plan first, PROD only with --confirm-prod, --dry-run stops there, the change holds
the environment's lock, progress on stderr, failures as one line and exit code 1. It prints the new version id,
never a value.
"""

from __future__ import annotations

import typer

from rentaliq.cli.options import ConfirmProdOpt, DryRunOpt, EnvArg, JsonOpt
from rentaliq.cli.output import console, print_json
from rentaliq.cli.recovery_cmds import _change, _go_ahead, _guarded
from rentaliq.cli.specs import spec_or_fail
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve


def register(app: typer.Typer) -> None:
    app.command()(rotate)


def rotate(
    env: EnvArg,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    confirm_prod: ConfirmProdOpt = False,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Rotate rentaliq/ENV/db/credentials now (new master password, AWSCURRENT moved) and bring the connection string in step."""
    from rentaliq.ops import rotation

    spec = spec_or_fail(env)
    tgt = resolve(target, spec, profile, start=False)
    planned = _guarded(lambda: rotation.plan(tgt, env))
    if not _go_ahead(spec, [] if json_out else planned.lines(), confirm_prod, dry_run, f"rotate {planned.secret_id}"):
        if json_out:
            print_json({"dry_run": True, "secret": planned.secret_id, "current_version": planned.current_version})
        return
    argv = ["rotate", env, *(["--confirm-prod"] if confirm_prod else [])]
    result = _change(tgt, env, argv, lambda report: rotation.rotate(tgt, planned, report), f"rotating {planned.secret_id}")
    if json_out:
        print_json(
            {
                "secret": result.secret_id,
                "version_id": result.version_id,
                "previous_version": result.previous_version,
                "seconds": round(result.seconds, 1),
                "connection_string_rewritten": result.connection_string_rewritten,
            }
        )
    else:
        console.print(f"[green]✓[/] {result.secret_id}: version {result.version_id} is AWSCURRENT ({result.seconds:.1f} s)", highlight=False, soft_wrap=True)
