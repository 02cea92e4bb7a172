"""`rentaliq alerts ENV`: the email the environment's alerts topic sent (captured by the local cloud) and the
states of the alarms that notify it."""

from __future__ import annotations

from typing import Annotated

import typer

from rentaliq.cli.options import EnvArg, JsonOpt
from rentaliq.cli.output import console, fail, print_json
from rentaliq.cli.targets import TargetChoice, resolve
from rentaliq.environments import SpecError, load_spec

SinceOpt = Annotated[str | None, typer.Option("--since", help="Only deliveries since: 30m, 2h, 1d, 1w or an ISO 8601 time")]
BodyOpt = Annotated[bool, typer.Option("--body", help="Print each message's body, not only its subject")]

_STATE_STYLE = {"ALARM": "bold red", "OK": "green", "INSUFFICIENT_DATA": "yellow"}


def register(app: typer.Typer) -> None:
    app.command()(alerts)


def alerts(env: EnvArg, since: SinceOpt = None, body: BodyOpt = False, json_out: JsonOpt = False) -> None:
    """Captured email deliveries of rentaliq-ENV-alerts on the local cloud, newest first, and its alarms' states."""
    from rentaliq.ops.alerts import AlertsError, parse_since
    from rentaliq.ops.alerts import alerts as read_alerts

    try:
        spec = load_spec(env)
        moment = parse_since(since) if since else None
    except (SpecError, AlertsError) as error:
        fail(str(error))
    target = resolve(TargetChoice.local, spec, start=False)
    try:
        report = read_alerts(target, spec.name.value, moment)
    except AlertsError as error:
        fail(str(error))
    if json_out:
        print_json(report.to_dict())
        return
    if report.topic_arn is None:
        fail(f"topic {report.topic} does not exist on the local cloud; deploy the environment first (rentaliq up {report.env})")
    console.print(f"[bold]{report.topic}[/] {report.topic_arn}", highlight=False)
    if report.alarms:
        console.print("\n[bold]Alarms[/]", highlight=False)
        for alarm in report.alarms:
            style = _STATE_STYLE.get(alarm.state, "")
            console.print(f"  [{style}]{alarm.state:<17}[/] {alarm.name}  {alarm.reason}", highlight=False, markup=True, soft_wrap=True)
    console.print(f"\n[bold]Email deliveries[/] ({len(report.deliveries)}{', since ' + moment.isoformat() if moment else ''})", highlight=False)
    if not report.deliveries:
        console.print("  none", highlight=False)
    for delivery in report.deliveries:
        console.print(f"  {delivery.timestamp}  {delivery.endpoint:<28} {delivery.type:<25} {delivery.subject}", highlight=False, markup=False, soft_wrap=True)
        if body:
            for line in delivery.body.splitlines():
                console.print(f"      {line}", highlight=False, markup=False, soft_wrap=True)
