"""`rentaliq cost`: each environment's monthly bill, priced from its template (rentaliq.cost), and its budget verdict.

A thin layer: the library computes the bills; this module prints them (a Rich table per environment, in the manner
of Infracost's breakdown, or JSON for CI) and exits 1 when an environment is over its budget.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from rentaliq.cli.options import AllEnvsOpt, EnvArgs, JsonOpt, OutdirOpt, RegionOpt, UsageOpt
from rentaliq.cli.output import console, err_console, fail, print_json
from rentaliq.environments import SpecError, load_specs

if TYPE_CHECKING:
    from rentaliq.cost import Bill


def register(app: typer.Typer) -> None:
    app.command()(cost)


def today() -> dt.date:
    """The date the price table's age is measured against (UTC)."""
    return dt.datetime.now(dt.UTC).date()


def cost(
    environments: EnvArgs = None,
    all_envs: AllEnvsOpt = False,
    json_out: JsonOpt = False,
    region: RegionOpt = None,
    usage: UsageOpt = None,
    outdir: OutdirOpt = Path("cdk.out"),
) -> None:
    """Each environment's monthly bill from its synthesized template and the price table; exit 1 if over budget."""
    from rentaliq.cost import PriceError, UsageError, bills_for, load_prices

    if all_envs and environments:
        fail("give environments or --all, not both")
    try:
        specs = load_specs(environments or None)
        warning = load_prices(region or specs[0].region).staleness(today())
        with console.status("Reading the templates (synthesizing what changed)", spinner="dots"):
            bills = bills_for(specs, outdir, region=region, usage_flags=usage or [])
    except (SpecError, PriceError, UsageError) as error:
        fail(str(error))
    except RuntimeError as error:  # a nag finding: the synth's own report
        fail(f"synth failed: {error}")
    if warning:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if json_out:
        print_json({"bills": [b.to_dict() for b in bills], "warnings": [warning] if warning else []})
    else:
        for bill in bills:
            _print_bill(bill)
    if any(bill.over_budget for bill in bills):
        raise typer.Exit(1)


def _usd(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _price(value: float) -> str:
    """At least cents, more digits when the price has them ($0.40, $0.0125, $0.0004)."""
    text = f"{value:.6f}".rstrip("0")
    return "$" + (text + "0" * max(0, 2 - len(text.split(".")[1])))


def _quantity(value: float) -> str:
    """Four decimals, or eight for a tiny quantity (21.7 invocations are 0.00002173 of a million), never a false 0."""
    return f"{value:,.{4 if abs(value) >= 0.001 else 8}f}".rstrip("0").rstrip(".") if value else "0"


def _print_bill(bill: Bill) -> None:
    table = Table(title=f"{bill.stack} ({bill.region}, prices of {bill.prices_as_of})", title_justify="left")
    for column, justify in (
        ("Resource", "left"),
        ("Component", "left"),
        ("Monthly qty", "right"),
        ("Unit", "left"),
        ("Price", "right"),
        ("Monthly cost", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    groups = [list(g) for _, g in groupby(bill.lines, key=lambda line: line.resource)]
    for rows in sorted(groups, key=lambda rows: -sum(line.monthly_usd for line in rows)):  # the largest resources first
        label, resource_type = rows[0].label, rows[0].resource_type
        for i, line in enumerate(rows):
            unconfirmed = " (unconfirmed)" if not line.price.checked else ""
            table.add_row(
                f"{escape(label)} [dim]{escape(resource_type)}[/]" if i == 0 else "",
                escape(line.component),
                _quantity(line.quantity),
                escape(line.price.unit),
                f"{_price(line.price.usd)}{unconfirmed}",
                _usd(line.monthly_usd),
            )
        if len(rows) > 1:
            table.add_row("", "[dim]subtotal[/]", "", "", "", f"[dim]{_usd(sum(line.monthly_usd for line in rows))}[/]")
        table.add_section()
    table.add_row("[bold]Total per month[/]", "", "", "", "", f"[bold]{_usd(bill.total)}[/]")
    console.print(table)
    colour = {"over budget": "red", "within budget": "green"}.get(bill.verdict, "yellow")
    console.print(
        f"[bold {colour}]{bill.env.upper()}: {_usd(bill.total)} a month, {bill.verdict}[/] "
        f"(the spec's range: {_usd(bill.budget_low)}-{_usd(bill.budget_high)})",
        highlight=False,
    )
    if bill.over_budget:
        culprits = "; ".join(f"{line.label}: {line.component} {_usd(line.monthly_usd)}" for line in bill.over_budget_lines())
        console.print(f"  over budget because of: {escape(culprits)}", highlight=False, soft_wrap=True)
    for alt in bill.alternatives:
        delta = ("+" if alt.monthly_delta > 0 else "") + _usd(alt.monthly_delta)
        console.print(f"  alternative: {escape(alt.name)}, {delta} a month ({escape(alt.description)})", highlight=False, soft_wrap=True)
    free = Counter(item.resource_type for item in bill.free)
    console.print(f"  no charge: {', '.join(f'{n} {t}' for t, n in sorted(free.items()))}", style="dim", highlight=False, soft_wrap=True)
    assumptions = ", ".join(f"{k}={v:,.10g}" for k, v in bill.usage.model_dump().items())
    console.print(f"  usage assumptions (the spec's \\[usage], --usage): {assumptions}", style="dim", highlight=False, soft_wrap=True)
    if bill.unconfirmed_prices():
        console.print(f"  unconfirmed prices (check their page): {', '.join(bill.unconfirmed_prices())}", style="dim", highlight=False, soft_wrap=True)
    from rentaliq.cost.bill import FREE_TIER_NOTE

    console.print(f"  {FREE_TIER_NOTE}\n", style="dim", highlight=False, soft_wrap=True)
