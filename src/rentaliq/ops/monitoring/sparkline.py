"""A series as one line of block characters, for the terminal view: the shape of the last N points at a glance."""

from __future__ import annotations

from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 20) -> str:
    """The last ``width`` values scaled between their own minimum and maximum; a flat series is a flat low line."""
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    if not tail:
        return ""
    low, high = min(tail), max(tail)
    if high == low:
        return BLOCKS[0] * len(tail)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((v - low) / (high - low) * top)] for v in tail)
