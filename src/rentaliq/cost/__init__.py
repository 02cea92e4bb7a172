"""Cost: a monthly bill per environment, priced from its synthesized template and a dated, cited price table.

- :mod:`.prices` and ``prices.toml``: the price table (per region, each price with its unit and source page).
- :mod:`.lines`: a bill line and the table of line builders per resource type; :mod:`.free`: the types that cost nothing.
- :mod:`.rds`, :mod:`.network`, :mod:`.ec2`, :mod:`.observability`, :mod:`.storage`, :mod:`.budgets`, :mod:`.scheduler`: the line builders
  (:mod:`.scheduler` also finds the off-hours schedule that bills a database for fewer hours).
- :mod:`.bill`: a template and a spec to a bill, with its budget verdict; :mod:`.alternatives`: reserved instances, and
  the extension point for schedules.
- :mod:`.usage`: ``--usage KEY=VALUE`` overrides of the spec's usage assumptions.

No AWS account and no Pricing API: everything is local and reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rentaliq.cost.bill import Bill, UnpricedResource, compute_bill
from rentaliq.cost.prices import DEFAULT_REGION, PriceError, PriceTable, load_prices
from rentaliq.cost.usage import UsageError, apply_overrides, parse_overrides
from rentaliq.spec.models import EnvironmentSpec

__all__ = [
    "DEFAULT_REGION",
    "Bill",
    "PriceError",
    "PriceTable",
    "UnpricedResource",
    "UsageError",
    "bills_for",
    "compute_bill",
    "load_prices",
    "parse_overrides",
]


def bills_for(specs: list[EnvironmentSpec], outdir: Path, *, region: str | None = None, usage_flags: list[str] | None = None) -> list[Bill]:
    """A bill per spec, from its template (synthesized only if the cached one is stale, see rentaliq.infra.cache).

    ``region`` prices every environment in that region instead of its spec's; ``usage_flags`` (``KEY=VALUE``)
    override the spec's usage assumptions. Flags and region are checked before any synth.
    """
    overrides = parse_overrides(usage_flags or [])
    tables = {r: load_prices(r) for r in {region or spec.region for spec in specs}}
    usages = {spec.name: apply_overrides(spec.usage, overrides) for spec in specs}
    from rentaliq.infra.cache import templates  # imported late: importing the CDK takes a second

    paths = templates(specs, outdir)
    bills = []
    for spec in specs:
        template: dict[str, Any] = json.loads(paths[spec.stack_name].read_text())
        bills.append(compute_bill(template, spec, tables[region or spec.region], usages[spec.name]))
    return bills
