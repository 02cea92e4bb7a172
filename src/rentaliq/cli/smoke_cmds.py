"""`rentaliq smoke ENV`: run the spec's data flows against a deployed environment."""

from __future__ import annotations

import typer

from rentaliq.cli.options import EnvArg, JsonOpt
from rentaliq.cli.output import console, print_json
from rentaliq.cli.specs import spec_or_fail
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve


def register(app: typer.Typer) -> None:
    app.command()(smoke)


def smoke(
    env: EnvArg,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Credentials → TLS connection → row round-trip → encrypted object → version restore (QA, PROD) → access logs (PROD)."""
    spec = spec_or_fail(env)
    from rentaliq.ops.smoke import smoke as run_smoke

    steps = run_smoke(resolve(target, spec, profile, start=False), spec)
    failed = [s for s in steps if not s.ok]
    if json_out:
        print_json({"env": spec.name.value, "ok": not failed, "steps": [s.__dict__ for s in steps]})
    else:
        for step in steps:
            mark = "[green]✓[/]" if step.ok else "[red]✗[/]"
            console.print(f"{mark} {step.name:<32} {step.milliseconds:8.1f} ms  {step.detail}", highlight=False, soft_wrap=True)
        console.print(f"{len(steps) - len(failed)} passed, {len(failed)} failed", highlight=False)
    if failed:
        raise typer.Exit(1)
