"""The terminal frame of `rentaliq top`: a metrics table (current value, unit, sparkline) and coloured alarm states.

Kept apart from the command module so the same frame serves the live view and `--once`; it only builds Rich
renderables from a Snapshot and never calls AWS.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rentaliq.ops.monitoring.models import Snapshot
from rentaliq.ops.monitoring.reader import DAY
from rentaliq.ops.monitoring.sparkline import sparkline
from rentaliq.ops.monitoring.units import number, scale

STATE_STYLE = {"OK": "bold green", "ALARM": "bold red", "INSUFFICIENT_DATA": "bold yellow"}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def metrics_table(snapshot: Snapshot, points: int) -> Table:
    table = Table(
        title=f"metrics: last {int((snapshot.end - snapshot.start).total_seconds() - snapshot.period_s) // 60} min, {snapshot.period_s} s per point",
        title_justify="left",
    )
    for column, justify in (("resource", "left"), ("metric", "left"), ("current", "right"), ("unit", "left"), (f"last {points}", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for s in snapshot.series:
        divisor, label = scale(s.key.unit, s.values)
        current = Text(number(s.current / divisor)) if s.current is not None else Text("no data", style="dim")
        extra = " ".join(f"{k}={v}" for k, v in s.key.dimensions[1:])
        name = s.key.name + (f" ({extra})" if extra else "") + (" daily" if s.period_s >= DAY else "")
        table.add_row(s.key.resource, name, current, label or "count", Text(sparkline(s.values, points), style="cyan"))
    return table


def alarms_table(snapshot: Snapshot) -> Table:
    table = Table(title="alarms", title_justify="left")
    for column in ("alarm", "state", "since", "reason"):
        table.add_column(column, overflow="fold")
    for a in snapshot.alarms:
        since = a.updated.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if a.updated else "—"
        table.add_row(a.name, Text(a.state, style=STATE_STYLE.get(a.state, "")), since, Text(a.reason[:160]))
    if not snapshot.alarms:
        table.add_row(Text(f"no alarms named rentaliq-{snapshot.env}-*", style="dim"), "", "", "")
    return table


def frame(snapshot: Snapshot, points: int, problem: str | None = None) -> RenderableType:
    """One screen: header, metrics, alarms, then the notes (and a read problem, if the last refresh failed)."""
    header = Text(f"rentaliq top {snapshot.env} · {', '.join(snapshot.instances)} · read {_stamp(datetime.now(UTC))} UTC", style="bold")
    parts: list[RenderableType] = [header, metrics_table(snapshot, points), alarms_table(snapshot)]
    parts += [Text(f"note: {n}", style="yellow") for n in snapshot.notes]
    if problem:
        parts.append(Text(f"last refresh failed: {problem}", style="bold red"))
    return Group(*parts)
