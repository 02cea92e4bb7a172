"""`rentaliq synth` and `rentaliq envs`: the specs and the stacks built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rentaliq.cli.options import EnvArgs, JsonOpt, OutdirOpt
from rentaliq.cli.output import console, fail, print_json
from rentaliq.cli.specs import specs_or_fail
from rentaliq.comparison import comparison_table


def register(app: typer.Typer) -> None:
    app.command()(synth)
    app.command()(envs)


def synth(
    environments: EnvArgs = None,
    outdir: OutdirOpt = Path("cdk.out"),
    nag: Annotated[bool, typer.Option(help="Run the AwsSolutions and HIPAA Security packs")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Synthesize the stacks into CloudFormation templates (all three by default)."""
    specs = specs_or_fail(environments)
    from rentaliq.infra.app import synthesize  # imported late: starting jsii takes a second

    with console.status(f"Synthesizing {', '.join(s.stack_name for s in specs)}", spinner="dots"):
        try:
            results = synthesize(specs, outdir, nag=nag)
            if nag:  # `up` and `deploy` reuse these templates while their inputs are unchanged
                from rentaliq.infra.cache import remember

                remember(specs, outdir)
        except RuntimeError as error:
            # A nag failure's message is the report itself: every finding, its path and how to acknowledge it.
            fail(f"synth failed: {error}")
    if json_out:
        print_json([{"stack": r.spec.stack_name, "template": str(r.template_path), "resources": r.resource_count} for r in results])
        return
    for r in results:
        checks = "nag: AwsSolutions, HIPAA.Security clean" if nag else "nag: skipped"
        console.print(f"[green]✓[/] {r.spec.stack_name}: {r.resource_count} resources → {r.template_path} ({checks})", highlight=False, soft_wrap=True)
    console.print(f"synthesized {len(results)} stack(s) in {results[0].seconds:.1f}s", style="dim")


def envs(json_out: JsonOpt = False) -> None:
    """Print the environment comparison table, generated from the specs."""
    specs = specs_or_fail()
    if json_out:
        print_json({spec.name.value: spec.model_dump(mode="json") for spec in specs})
        return
    table = Table(title="Environment Comparison")
    table.add_column("Feature", style="bold")
    for spec in specs:
        table.add_column(spec.name.value.upper())
    for label, values in comparison_table(specs):
        table.add_row(label, *(values[spec.name.value] for spec in specs))
    console.print(table)
