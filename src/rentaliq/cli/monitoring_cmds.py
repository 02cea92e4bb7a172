"""`rentaliq top ENV` and `rentaliq report ENV --html FILE`: views of the env's metrics and alarms.

A thin layer over rentaliq.ops.monitoring, which reads everything through the CloudWatch, RDS and S3 APIs, so
both commands work the same against the local cloud and AWS. Neither starts the local cloud: a view of a
cloud that is not running would show nothing true.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from rentaliq.cli.options import EnvArg, HoursOpt, HtmlFileOpt, IntervalOpt, JsonOpt, MinutesOpt, OnceOpt, PeriodOpt, PointsOpt
from rentaliq.cli.output import console, fail, print_json
from rentaliq.cli.targets import ProfileOpt, TargetChoice, TargetOpt, resolve
from rentaliq.environments import EnvironmentSpec, SpecError, load_spec

if TYPE_CHECKING:
    from rentaliq.deploy.target import Target
    from rentaliq.ops.monitoring.models import Snapshot

T = TypeVar("T")
MAX_HOURS = 24 * 63  # CloudWatch keeps 5-minute datapoints for 63 days
MAX_MINUTES = 24 * 60 * 15  # ... and 1-minute datapoints for 15 days


def register(app: typer.Typer) -> None:
    app.command()(top)
    app.command()(report)


def _spec(env: str) -> EnvironmentSpec:
    try:
        return load_spec(env)
    except SpecError as error:
        fail(str(error))


def _aws_problem(error: Exception) -> str | None:
    """One line for an AWS or connection error; None for anything else (a bug, which should show its traceback)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        return " ".join(str(error).split())[:500]
    if isinstance(error, BotoCoreError):
        return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
    return None


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except Exception as error:
        problem = _aws_problem(error)
        if problem is None:
            raise
        fail(problem)


def _check_range(option: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        fail(f"{option} {value:g} is out of range: allowed {low:g} to {high:g}")


def _check_period(period: int | None) -> None:
    if period is not None and (period < 60 or period % 60):
        fail(f"--period {period} is not allowed: use a multiple of 60 seconds (60, 120, 300 ...)")


def _target(env: str, target: TargetChoice, profile: str | None) -> tuple[EnvironmentSpec, Target]:
    spec = _spec(env)
    return spec, resolve(target, spec, profile, start=False)


def top(
    env: EnvArg,
    once: OnceOpt = False,
    json_out: JsonOpt = False,
    interval: IntervalOpt = 5.0,
    minutes: MinutesOpt = 30,
    points: PointsOpt = 20,
    period: PeriodOpt = None,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
) -> None:
    """A live view of the environment's RDS and S3 metrics (sparklines) and alarm states, refreshed until Ctrl-C."""
    from rentaliq.cli.monitoring_view import frame
    from rentaliq.ops.monitoring.reader import read_snapshot

    if json_out and not once:
        fail("--json needs --once: a live view cannot be read by a script")
    _check_range("--interval", interval, 1, 3600)
    _check_range("--minutes", minutes, 5, MAX_MINUTES)
    _check_range("--points", points, 1, 200)
    _check_period(period)
    spec, tgt = _target(env, target, profile)

    def read() -> Snapshot:
        return read_snapshot(tgt, spec.name.value, timedelta(minutes=minutes), period, history=False)

    snapshot = _guarded(read)
    if once:
        if json_out:
            print_json(snapshot.to_dict())
        else:
            console.print(frame(snapshot, points))
        return
    from rich.live import Live

    try:
        with Live(frame(snapshot, points), console=console, auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(interval)
                try:
                    snapshot, problem = read(), None
                except Exception as error:  # a blip of the network must not end the view: show it, keep the last frame
                    problem = _aws_problem(error)
                    if problem is None:
                        raise
                live.update(frame(snapshot, points, problem), refresh=True)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a live view ends: exit 0


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temp file beside ``path``, then rename: a reader never sees half a page."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def report(
    env: EnvArg,
    html: HtmlFileOpt,
    hours: HoursOpt = 3,
    target: TargetOpt = TargetChoice.local,
    profile: ProfileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write one self-contained HTML page: the environment's metrics as plots, the alarm history and the spec table."""
    from rentaliq.ops.monitoring import html_report, spec_table
    from rentaliq.ops.monitoring.catalog import resources
    from rentaliq.ops.monitoring.reader import read_snapshot

    _check_range("--hours", hours, 1, MAX_HOURS)
    path = html.expanduser()
    if path.is_dir():
        fail(f"--html {html} is a directory: give a file name, e.g. {html / f'rentaliq-{env}.html'}")
    if not path.parent.is_dir():
        fail(f"--html {html}: directory {path.parent} does not exist")
    spec, tgt = _target(env, target, profile)
    name = spec.name.value
    found = _guarded(lambda: resources(tgt, name))
    snapshot = _guarded(lambda: read_snapshot(tgt, name, timedelta(hours=hours), found=found))
    page = html_report.render(snapshot, spec_table.rows(spec, found.live, snapshot.alarms), datetime.now(UTC))
    try:
        _write_atomically(path, page)
    except OSError as error:
        fail(f"cannot write --html {html}: {error.strerror or error}")
    plots = sum(1 for s in snapshot.series if s.values)
    if json_out:
        print_json({"file": str(path), "plots": plots, "alarms": len(snapshot.alarms), "history": len(snapshot.history), "notes": list(snapshot.notes)})
        return
    console.print(f"wrote {path}: {plots} plots, {len(snapshot.alarms)} alarms, {len(snapshot.history)} history entries", highlight=False, soft_wrap=True)
    for note in snapshot.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
