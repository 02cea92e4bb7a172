"""The price table: a dated, cited data file shipped in the package (``prices.toml``), loaded and validated once.

Prices are data, not code, so that a price change is a one-line diff that names its source page, and so that
a bill never depends on a network call (no Pricing API at run time). The table says when it was checked
(``as_of``); :meth:`PriceTable.staleness` turns that into a warning once it is more than six months old, with
today's date passed in by the caller so that tests can pin it.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

STALE_AFTER_MONTHS = 6
DEFAULT_REGION = "us-east-1"


class PriceError(ValueError):
    """A price the bill needs is missing, or the table itself is malformed: one line, for the user."""


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    unit: str
    source: str  # the AWS pricing page's URL
    note: str = ""
    checked: bool = True


@dataclass(frozen=True)
class PriceTable:
    as_of: dt.date
    hours_per_month: int
    region: str
    prices: dict[str, Price]

    def __getitem__(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise PriceError(f"no price for {key!r} in {self.region} (price table of {self.as_of}); add it to rentaliq/cost/prices.toml") from None

    def __contains__(self, key: str) -> bool:
        return key in self.prices

    def staleness(self, today: dt.date) -> str | None:
        """A warning when the table was checked more than six months before ``today``, else None."""
        if today <= add_months(self.as_of, STALE_AFTER_MONTHS):
            return None
        return (
            f"the price table is from {self.as_of}, more than {STALE_AFTER_MONTHS} months ago: AWS prices change; "
            "re-check rentaliq/cost/prices.toml against the pages it cites"
        )


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months, clamped to the month's last day (2026-08-31 + 6 = 2027-02-28)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    next_month = dt.date(year + (month == 12), month % 12 + 1, 1)
    return dt.date(year, month, min(day.day, (next_month - dt.timedelta(days=1)).day))


def _price(key: str, value: Any, sources: dict[str, str]) -> Price:
    if not isinstance(value, dict) or set(value) - {"usd", "unit", "source", "note", "checked"}:
        raise PriceError(f"price {key!r}: expected a table of usd, unit, source and optional note, checked; got {value!r}")
    usd = value.get("usd")
    if isinstance(usd, bool) or not isinstance(usd, int | float) or usd < 0:
        raise PriceError(f"price {key!r}: usd={usd!r} is invalid; allowed: a number >= 0")
    if value.get("source") not in sources:
        raise PriceError(f"price {key!r}: source={value.get('source')!r} is invalid; allowed: {', '.join(sources)}")
    if not isinstance(value.get("unit"), str) or not value["unit"]:
        raise PriceError(f"price {key!r}: unit={value.get('unit')!r} is invalid; allowed: a non-empty string")
    return Price(key, float(usd), value["unit"], sources[value["source"]], str(value.get("note", "")), bool(value.get("checked", True)))


def parse_table(data: dict[str, Any], region: str) -> PriceTable:
    """The table for ``region`` from the parsed file ``data``; PriceError naming the first problem."""
    as_of = data.get("as_of")
    if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
        raise PriceError(f"price table: as_of={as_of!r} is invalid; allowed: a TOML date, e.g. 2026-11-30")
    sources = data.get("sources", {})
    if not all(isinstance(url, str) and url.startswith("https://aws.amazon.com/") for url in sources.values()):
        raise PriceError("price table: every source must be an https://aws.amazon.com/ pricing page")
    regions = data.get("regions", {})
    if region not in regions:
        raise PriceError(f"no prices for region {region!r}; allowed: {', '.join(sorted(regions))} (rentaliq/cost/prices.toml)")
    prices = {key: _price(key, value, sources) for key, value in regions[region].items()}
    return PriceTable(as_of, int(data.get("hours_per_month", 730)), region, prices)


@functools.cache
def _file_data() -> dict[str, Any]:
    return tomllib.loads((resources.files(__package__) / "prices.toml").read_text())


def load_prices(region: str = DEFAULT_REGION) -> PriceTable:
    """The package's price table for ``region``."""
    return parse_table(_file_data(), region)


def regions() -> tuple[str, ...]:
    return tuple(sorted(_file_data().get("regions", {})))
