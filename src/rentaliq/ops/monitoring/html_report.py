"""`rentaliq report ENV --html FILE`: one self-contained HTML page (inline CSS, inline SVG, no script, no URL).

A Content-Security-Policy of ``default-src 'none'`` makes the browser refuse anything the page would fetch, so
"self-contained" is enforced, not just intended. Every string from AWS or the spec is escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from rentaliq.ops.monitoring.catalog import UNITS
from rentaliq.ops.monitoring.models import Snapshot
from rentaliq.ops.monitoring.reader import DAY
from rentaliq.ops.monitoring.spec_table import SpecRow
from rentaliq.ops.monitoring.svg_plot import plot
from rentaliq.ops.monitoring.units import show

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a;font-size:13px}.note{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;margin:6px 0;font-size:13px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}.state-OK{color:#1a7f37;font-weight:600}.state-ALARM{color:#cf222e;font-weight:600}
.state-INSUFFICIENT_DATA{color:#9a6700;font-weight:600}.differs{background:#ffebe9}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #d0d7de;padding:4px}
figcaption{font-size:12px;color:#57606a;padding:2px 4px}
svg.plot .grid{stroke:#eaeef2;stroke-width:1}svg.plot .axis{stroke:#57606a;stroke-width:1}
svg.plot .tick{font-size:10px;fill:#57606a}svg.plot .plot-title{font-size:12px;font-weight:600;fill:#1f2328}
svg.plot .plot-unit,svg.plot .axis-label{font-size:11px;fill:#57606a}svg.plot .no-data{font-size:12px;fill:#8c959f}
svg.plot .series{fill:none;stroke:#0969da;stroke-width:1.5}svg.plot .point{fill:#0969da}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _table(headers: list[str], rows: list[list[str]], table_id: str, empty: str) -> str:
    """A table of already-escaped cells (callers escape; cells may carry markup such as a state class)."""
    if not rows:
        return f'<p id="{table_id}-empty" class="meta">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _state(state: str) -> str:
    safe = state if state in ("OK", "ALARM", "INSUFFICIENT_DATA") else "other"
    return f'<span class="state-{safe}">{escape(state)}</span>'


def _metrics(snapshot: Snapshot) -> str:
    with_data = [s for s in snapshot.series if s.values]
    figures = []
    for s in with_data:
        svg = plot(s.key.label, s.key.unit, s.timestamps, s.values, min(s.since or snapshot.start, snapshot.start), snapshot.end)
        per = "day" if s.period_s == DAY else f"{s.period_s} s"
        caption = f"{s.key.namespace} {s.key.name}, {s.key.stat} per {per}; latest {show(s.current, s.key.unit, s.values)}"
        figures.append(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>")
    without = [s.key.label for s in snapshot.series if not s.values]
    missing = f'<p id="no-data" class="meta">No datapoints in this window: {escape(", ".join(without))}</p>' if without else ""
    plots = f'<div class="plots">{"".join(figures)}</div>' if figures else '<p class="meta">No metric has datapoints in this window.</p>'
    return plots + missing


def render(snapshot: Snapshot, spec_rows: tuple[SpecRow, ...], generated: datetime) -> str:
    """The whole page as one string."""
    env = escape(snapshot.env)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in snapshot.notes)
    alarms = _table(
        ["Alarm", "State", "Since", "Metric", "Threshold", "Reason"],
        [
            [
                escape(a.name),
                _state(a.state),
                escape(_stamp(a.updated)),
                escape(a.metric),
                escape(f"{a.comparison} {show_threshold(a.threshold, a.metric)}"),
                escape(a.reason),
            ]
            for a in snapshot.alarms
        ],
        "alarms",
        f"No alarms named rentaliq-{snapshot.env}-*.",
    )
    history = _table(
        ["Time", "Alarm", "Type", "Summary"],
        [[escape(_stamp(h.timestamp)), escape(h.alarm), escape(h.kind), escape(h.summary)] for h in snapshot.history],
        "history",
        "No alarm history in this window.",
    )
    spec = _table(
        ["Setting", "Spec", "Deployed"],
        [
            [escape(r.field), escape(r.spec), f'<span class="differs">{escape(r.live)}</span>' if r.differs and r.live else escape(r.live or "—")]
            for r in spec_rows
        ],
        "spec",
        "No spec values.",
    )
    window = f"{_stamp(snapshot.start)} to {_stamp(snapshot.end)}, period {snapshot.period_s} s"
    resources = ", ".join([*snapshot.instances, *snapshot.buckets])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>RentalIQ {env}: monitoring report</title><style>{CSS}</style></head><body>"
        f"<h1>RentalIQ {env}: monitoring report</h1>"
        f'<p class="meta">Window: {escape(window)}. Generated {escape(_stamp(generated))}. Resources: {escape(resources)}.</p>'
        f"{notes}"
        f'<h2 id="alarms-heading">Alarms</h2>{alarms}'
        f'<h2 id="metrics-heading">Metrics</h2>{_metrics(snapshot)}'
        f'<h2 id="history-heading">Alarm history</h2>{history}'
        f'<h2 id="spec-heading">Spec</h2>{spec}'
        "</body></html>\n"
    )


def show_threshold(value: float | None, metric: str = "") -> str:
    """The threshold as written, plus in the metric's readable unit when that differs (``2147483648 (2 GiB)``)."""
    if value is None:
        return ""
    raw = str(int(value)) if value.is_integer() else str(value)
    unit = UNITS.get(metric.split(" ")[-1], "")
    readable = show(value, unit) if unit else raw
    return raw if readable in (raw, f"{raw}%") else f"{raw} ({readable})"
