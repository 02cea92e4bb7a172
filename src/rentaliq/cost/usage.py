"""``--usage KEY=VALUE`` overrides of the spec's usage assumptions, parsed and validated before anything is priced.

The values are checked by the same model as the spec's ``[usage]`` table (types, bounds), so a flag can never hold
what a config file could not; a bad one is one line naming it and what is allowed.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rentaliq.spec.models import UsageSpec


class UsageError(ValueError):
    """A bad ``--usage`` flag: the message names it and what is allowed."""


def _number(flag: str, text: str, integer: bool) -> int | float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")) or (integer and not value.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise UsageError(f"--usage {flag}: {text!r} is invalid; allowed: {kind} >= 0") from None
    return int(value) if integer else value


def parse_overrides(flags: list[str]) -> dict[str, Any]:
    """``["nat_gb=50", ...]`` as ``{"nat_gb": 50.0}``; UsageError for a malformed flag, an unknown key or a bad number."""
    fields = UsageSpec.model_fields
    overrides: dict[str, Any] = {}
    for flag in flags:
        key, sep, text = flag.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--usage {flag!r} is invalid; allowed: KEY=VALUE, e.g. nat_gb=50")
        if key not in fields:
            raise UsageError(f"--usage {flag}: unknown key {key!r}; allowed: {', '.join(fields)}")
        overrides[key] = _number(flag, text.strip(), fields[key].annotation is int)
    return overrides


def apply_overrides(usage: UsageSpec, overrides: dict[str, Any]) -> UsageSpec:
    """``usage`` with ``overrides`` applied, validated (bounds) as the spec's table is."""
    try:
        return UsageSpec.model_validate({**usage.model_dump(), **overrides})
    except ValidationError as error:
        err = error.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        raise UsageError(f"--usage {key}={err['input']!r} is invalid; allowed: {err['msg'].lower().removeprefix('input should be ')}") from None
