"""A series as an inline SVG line plot: value axis with its unit, time axis with UTC labels, every string escaped.

Generated here in Python so the HTML report needs no JavaScript, no library and no network: the page is one
file that renders the same in any browser, offline, years later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html import escape

from rentaliq.ops.monitoring.units import number, scale

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 40
_TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]; a flat range is widened first."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high < low:
        low, high = high, low
    if high == low == 0:
        high = 1.0  # a flat zero (no connections, no errors): an axis from 0 up, never below 0
    elif high == low:
        pad = abs(high) * 0.5
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 0.5:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def time_ticks(start: datetime, end: datetime, count: int = 6) -> list[datetime]:
    """Tick times on round UTC boundaries (whole minutes, hours or days), about ``count`` of them."""
    span = max((end - start).total_seconds(), 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    first = math.ceil(start.timestamp() / step) * step
    return [datetime.fromtimestamp(t, UTC) for t in range(int(first), int(end.timestamp()) + 1, step)]


def _time_label(moment: datetime, span: timedelta) -> str:
    return moment.strftime("%m-%d %H:%M" if span > timedelta(days=1) else "%H:%M")


def plot(
    title: str, unit: str, timestamps: Sequence[datetime], values: Sequence[float], start: datetime, end: datetime, width: int = WIDTH, height: int = HEIGHT
) -> str:
    """One ``<svg>`` element: the series over [start, end] on scaled axes, or a "no data" message when it is empty."""
    divisor, label = scale(unit, values)
    shown = [v / divisor for v in values]
    inner_w, inner_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    t0, t1 = start.timestamp(), max(end.timestamp(), start.timestamp() + 1)
    y_ticks = nice_ticks(min([0.0, *shown]), max(shown, default=1.0))
    y0, y1 = y_ticks[0], y_ticks[-1]

    def x(moment: datetime) -> float:
        return LEFT + (moment.timestamp() - t0) / (t1 - t0) * inner_w

    def y(value: float) -> float:
        return TOP + inner_h - (value - y0) / ((y1 - y0) or 1.0) * inner_h

    name = escape(title)
    unit_text = escape(label or "count")
    parts = [
        f'<svg class="plot" role="img" aria-label="{name}" data-metric="{name}" '
        f'data-points="{len(values)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{name} ({unit_text})</title>",
        f'<text x="{LEFT}" y="16" class="plot-title">{name}</text>',
        f'<text x="{width - RIGHT}" y="16" text-anchor="end" class="plot-unit">{unit_text}</text>',
    ]
    for tick in y_ticks:
        ty = y(tick)
        parts.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{width - RIGHT}" y2="{ty:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" class="tick">{escape(number(tick))}</text>')
    span = end - start
    for tick_time in time_ticks(start, end):
        tx = x(tick_time)
        parts.append(f'<line x1="{tx:.1f}" y1="{TOP + inner_h}" x2="{tx:.1f}" y2="{TOP + inner_h + 4}" class="axis"/>')
        parts.append(f'<text x="{tx:.1f}" y="{TOP + inner_h + 16}" text-anchor="middle" class="tick">{_time_label(tick_time, span)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + inner_h}" class="axis"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP + inner_h}" x2="{width - RIGHT}" y2="{TOP + inner_h}" class="axis"/>')
    parts.append(f'<text x="{LEFT + inner_w / 2:.1f}" y="{height - 6}" text-anchor="middle" class="axis-label">time (UTC)</text>')
    if not values:
        parts.append(f'<text x="{LEFT + inner_w / 2:.1f}" y="{TOP + inner_h / 2:.1f}" text-anchor="middle" class="no-data">no data</text>')
    else:
        coords = [(x(t), y(v)) for t, v in zip(timestamps, shown, strict=True)]
        if len(coords) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
            parts.append(f'<polyline points="{path}" class="series"/>')
        for px, py in coords if len(coords) <= 60 else coords[-1:]:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" class="point"/>')
    parts.append("</svg>")
    return "".join(parts)
