"""CloudWatch units as people read them: bytes in KiB/MiB/GiB, latency in ms, percentages with a %.

One scale per series (chosen from its largest value), so a plot's axis and its current value use the same unit.
"""

from __future__ import annotations

from collections.abc import Iterable

_BINARY = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024), ("B", 1))


def scale(unit: str, values: Iterable[float]) -> tuple[float, str]:
    """(divisor, label) for showing ``values`` of CloudWatch ``unit``: divide each value by divisor and add label."""
    largest = max((abs(v) for v in values), default=0.0)
    if unit in ("Bytes", "Bytes/Second"):
        per = "/s" if unit == "Bytes/Second" else ""
        for label, size in _BINARY:
            if largest >= size:
                return float(size), label + per
        return 1.0, "B" + per
    if unit == "Seconds":
        return (0.001, "ms") if largest < 1 else (1.0, "s")
    if unit == "Percent":
        return 1.0, "%"
    if unit == "Count/Second":
        return 1.0, "/s"
    if unit == "Count":
        return 1.0, ""
    return 1.0, unit


def number(value: float) -> str:
    """Three significant digits at most, no exponent for everyday magnitudes: 0.5, 12.3, 1234."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    if magnitude >= 0.001:
        return f"{value:.3g}"  # 0.015, not 0.01 (two ticks 0.005 apart must not read the same)
    return f"{value:.2g}"


def show(value: float | None, unit: str, values: Iterable[float] = ()) -> str:
    """``value`` with its unit, on the scale chosen for ``values`` (or for the value alone); ``—`` for no data."""
    if value is None:
        return "—"
    divisor, label = scale(unit, [value, *values])
    text = number(value / divisor)
    if not label:
        return text
    return f"{text}{label}" if label in ("%",) else f"{text} {label}"
