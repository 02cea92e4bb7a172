"""What every runtime benchmark reports: a figure for us, one for the peer, their ratio and its target."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Result:
    name: str
    ours: float
    peer: float
    unit: str
    ratio: float
    """ours/peer, oriented as the target states it (time ratio for 'at most', throughput ratio for 'at least')."""
    op: str  # "<=" or ">=" (the ratio must be at most / at least the target)
    target: float | None
    """Hard target (None: reported only)."""
    goal: float | None = None
    peer_name: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        if self.target is None:
            return True
        return self.ratio <= self.target if self.op == "<=" else self.ratio >= self.target

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e9:,.0f} ns"
        if value < 1:
            return f"{value * 1e3:,.2f} ms"
        return f"{value:,.2f} s"
    if unit == "MiB/s":
        return f"{value:,.0f} MiB/s"
    return f"{value:,.3g} {unit}"


def report(results: list[Result]) -> str:
    lines = []
    width = max(len(r.name) for r in results)
    for r in results:
        target = "reported only" if r.target is None else f"target {r.op} {r.target:g}" + (f" (goal {r.goal:g})" if r.goal else "")
        verdict = "" if r.target is None else ("  ok" if r.ok else "  MISSED")
        lines.append(
            f"{r.name:<{width}}  ours {fmt(r.ours, r.unit):>14}  {r.peer_name or 'peer'} {fmt(r.peer, r.unit):>14}  ratio {r.ratio:7.3f}  {target}{verdict}"
        )
        if r.detail:
            lines.append(f"{'':<{width}}  {r.detail}")
    return "\n".join(lines)
