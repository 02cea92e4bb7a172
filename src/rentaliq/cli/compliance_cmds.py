"""`rentaliq compliance ENV [--json]`: the spec's compliance claims, the controls behind them and the gaps (rentaliq.ops.compliance).

A thin layer: the library builds the report from the environment's spec; this module prints it (per framework, the
controls in place with their construct, nag rules and verify checks, then the gaps with the configuration that closes
them), or its JSON.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from rentaliq.cli.options import EnvArg, JsonOpt
from rentaliq.cli.output import console, fail, print_json
from rentaliq.environments import SpecError, load_spec


def register(app: typer.Typer) -> None:
    app.command()(compliance)


def compliance(env: EnvArg, json_out: JsonOpt = False) -> None:
    """Per framework the spec claims (SOC 2, HIPAA, PCI DSS, GDPR): the controls in place and the gaps that remain."""
    from rentaliq.ops.compliance import compliance_report

    try:
        report = compliance_report(load_spec(env)).to_dict()
    except SpecError as error:
        fail(str(error))
    if json_out:
        print_json(report)
        return
    for framework in report["frameworks"]:
        pack = f", checked at synth by cdk-nag's {framework['nag_pack']} pack" if framework["nag_pack"] else ""
        console.print(f"\n[bold]{escape(framework['name'])}[/]: the spec says it {escape(framework['spec_claim'])}{escape(pack)}.", highlight=False)
        console.print(escape(framework["note"]), style="dim", highlight=False)
        table = Table(title=f"Controls in place in {report['stack']}", title_justify="left", show_lines=False)
        for column in ("Control", "Construct", "Nag rules", "Proved live by `rentaliq verify`"):
            table.add_column(column, overflow="fold")
        for control in framework["controls"]:
            checks = [f"{c['area']}: {c['name']}" for c in control["verify_checks"]] or ["(not read back yet)"]
            constructs = [c.split("/", 1)[1] for c in control["constructs"]]
            table.add_row(*(escape("\n".join(x)) for x in ([control["title"]], constructs, control["nag_rules"] or ["-"], checks)))
        console.print(table)
        console.print(f"[bold]Gaps[/] ({len(framework['gaps'])}):", highlight=False)
        for gap in framework["gaps"]:
            console.print(f"  - {escape(gap['missing'])}\n    [dim]needs:[/] {escape(gap['configuration'])}", highlight=False, soft_wrap=True)
