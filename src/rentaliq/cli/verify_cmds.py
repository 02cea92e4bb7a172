"""`rentaliq verify ENV`: audit a live environment against its spec (a thin layer over rentaliq.ops.verify)."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from rentaliq.cli.options import EnvArg, JsonOpt
from rentaliq.cli.output import console, fail, print_json
from rentaliq.cli.specs import spec_or_fail
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve
from rentaliq.deploy.commands import command

RESULT = {
    "pass": ("pass", "green"),
    "fail": ("FAIL", "bold red"),
    "not-checkable": ("not checkable here", "yellow"),
    "deviation": ("DELIBERATE DEVIATION", "bold yellow"),
}


def register(app: typer.Typer) -> None:
    app.command()(verify)


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_show(v) for v in value) or "none"
    return str(value)


def verify(env: EnvArg, target: TargetOpt = TargetChoice.local, profile: ProfileOpt = None, json_out: JsonOpt = False) -> None:
    """Read the live environment back through the AWS APIs and check every value of its spec; exit 1 on any failure."""
    spec = spec_or_fail(env)
    from botocore.exceptions import BotoCoreError

    from rentaliq.ops.verify import VerifyError, summary
    from rentaliq.ops.verify import verify as run_verify

    try:
        tgt = resolve(target, spec, profile, start=False)
    except BotoCoreError as error:  # e.g. an unknown --profile
        fail(str(error))
    if tgt.is_local:
        from rentaliq.local.cloud import LocalCloud

        if not LocalCloud().status().running:
            fail(f"the local cloud is not running; start it with `{command('local', 'start')}` (or `{command('up', env)}`)")
    try:
        checks = run_verify(tgt, spec)
    except VerifyError as error:
        fail(str(error))
    counts = summary(checks)
    line = f"{counts['passed']} passed, {counts['failed']} failed, {counts['not_checkable']} not checkable"
    if counts["deviations"]:
        line += f", {counts['deviations']} deliberate deviation(s): see DELIBERATE DEVIATION above"
    if json_out:
        print_json({"environment": spec.name.value, "target": tgt.name, "checks": [c.to_dict() for c in checks], "summary": counts})
    else:
        table = Table(title=f"{spec.stack_name} conformance ({tgt.name})", show_lines=False)
        for column in ("area", "check", "expected", "actual", "result", "detail"):
            table.add_column(column, overflow="fold")
        for c in checks:
            label, style = RESULT[c.status]
            table.add_row(c.area, Text(c.name), Text(_show(c.expected)), Text(_show(c.actual)), Text(label, style=style), Text(c.detail))
        console.print(table)
        style = "bold red" if counts["failed"] else "bold yellow" if counts["deviations"] else "green"
        console.print(Text(f"{spec.stack_name}: {line}", style=style))
    if counts["failed"]:
        raise typer.Exit(1)
