"""`rentaliq drill ENV`: the DR drill. Restore the latest restorable point, prove the data, measure RPO and RTO.

Steps (RDS and Secrets Manager APIs and PostgreSQL over TLS only, so the same code runs on AWS):

1. Marker rows are committed to the source every 0.5 s while the drill runs (:mod:`drill_markers`).
2. Once the source's ``LatestRestorableTime`` has passed the first marker, the source is restored with
   ``--use-latest-restorable-time`` to a scratch instance ``rentaliq-{env}-drill-<stamp>`` (:mod:`drill_rds`).
3. When it is available, the drill connects over TLS with the source's master credentials (a restore keeps them)
   and compares every user table with the source (:mod:`drill_compare`). Markers are compared up to the newest
   one the restore holds; every other table as it is now on the source. **Assumption:** nothing but the drill
   writes to the source while it runs (run it when the services are idle, or expect writes made after the
   restore point to show as mismatches: a false alarm, never a false pass).
4. **RPO** (measured) = ``written_at`` of the newest marker committed before the restore was requested minus
   ``written_at`` of the newest marker the restore holds: the span of committed writes the restore would have
   lost had the source been lost when the restore was requested, to the markers' resolution (0.5 s). If the
   restore holds none of the drill's markers, the RPO is only known to be at least newest minus first marker
   (reported as a lower bound). Separately, every marker committed at least 1 s before the
   ``LatestRestorableTime`` read just before the request must be in the restore (the restore keeps its promise).
   The request is made just after the restorable time moved, its best moment; a disaster can strike just
   before the next move, so the drill also records, at every poll while it waited, how long a span of its
   markers was not yet restorable (``restorable_lag_max_seconds``: now minus the later of
   ``LatestRestorableTime`` and the first marker; the loss at the worst moment it saw). The RPO target is met
   only if both are below it.
   **RTO** (measured) = from the restore request until the restored instance accepted a TLS connection and its
   data was verified. The drill's preparation (waiting for the restorable time to pass the first marker) is not
   part of a recovery and is not counted; ``elapsed_seconds`` reports the whole run.
5. Both are held against the env spec's targets (``recovery.rpo_minutes``, ``recovery.rto_minutes``): met when
   below. Waiting for the restore stops at the RTO target (the target is missed by then).
6. The scratch instance is deleted, skipping the final snapshot, whatever happened (failure, Ctrl-C).
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql

from rentaliq import naming
from rentaliq.deploy.db_tls import ca_bundle
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops import drill_rds
from rentaliq.ops.drill_compare import TableCheck, compare
from rentaliq.ops.drill_markers import SCHEMA, TABLE, Marker, MarkerWriter
from rentaliq.ops.drill_rds import DrillError
from rentaliq.runtime.database import connection_kwargs
from rentaliq.runtime.secrets import Credentials, RuntimeConfig, Secrets

__all__ = ["DrillError", "DrillReport", "run_drill"]

MARKERS: tuple[str, str] = (SCHEMA, TABLE)
RESTORE_POINT_SLACK = timedelta(seconds=1)  # a marker's commit follows its written_at by well under this


@dataclass
class DrillReport:
    env: str
    target: str
    scratch_instance: str
    drill_id: str
    rpo_target_seconds: float
    rto_target_seconds: float
    started_at: str = ""
    restore_requested_at: str | None = None
    latest_restorable_time: str | None = None
    markers_written: int = 0
    marker_write_failures: int = 0
    newest_marker_before_request: dict[str, Any] | None = None
    newest_marker_restored: dict[str, Any] | None = None
    markers_missing_before_restore_point: int | None = None
    rpo_seconds: float | None = None
    rpo_is_lower_bound: bool = False
    restorable_lag_max_seconds: float | None = None
    rto_seconds: float | None = None
    tls: str | None = None
    tables: list[TableCheck] = field(default_factory=list)
    cleanup: str = "not started"
    elapsed_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def rpo_met(self) -> bool:
        """The loss measured at the restore request, and the worst lag of the restorable time seen, both below the target."""
        measured = self.rpo_seconds is not None and not self.rpo_is_lower_bound and self.rpo_seconds < self.rpo_target_seconds
        return measured and (self.restorable_lag_max_seconds or 0.0) < self.rpo_target_seconds

    @property
    def rto_met(self) -> bool:
        return self.rto_seconds is not None and self.rto_seconds < self.rto_target_seconds

    @property
    def data_verified(self) -> bool:
        return bool(self.tables) and all(t.match for t in self.tables) and self.markers_missing_before_restore_point == 0

    @property
    def ok(self) -> bool:
        return not self.problems and self.rpo_met and self.rto_met and self.data_verified

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "tables"}
        data["tables"] = [t.to_dict() for t in self.tables]
        data.update(rpo_met=self.rpo_met, rto_met=self.rto_met, data_verified=self.data_verified, ok=self.ok)
        return data


def _marker(m: Marker | tuple[int, int, datetime] | None) -> dict[str, Any] | None:
    if m is None:
        return None
    if isinstance(m, Marker):
        return {"seq": m.seq, "id": m.id, "written_at": m.written_at.isoformat()}
    return {"seq": m[0], "id": m[1], "written_at": m[2].isoformat()}


def _connect(creds: Credentials, config: RuntimeConfig, host: str | None = None, port: int | None = None) -> psycopg.Connection[Any]:
    kwargs = connection_kwargs(creds, config)
    if host is not None:
        kwargs.update(host=host, port=port)
    return psycopg.connect(**kwargs)


def _connect_until(creds: Credentials, config: RuntimeConfig, host: str, port: int, deadline: float) -> psycopg.Connection[Any]:
    """The first connection the restored server accepts (it may take a moment after ``available``)."""
    while True:
        try:
            return _connect(creds, config, host, port)
        except psycopg.OperationalError as error:
            if time.monotonic() >= deadline:
                raise DrillError(f"the restore at {host}:{port} accepted no TLS connection: {' '.join(str(error).split())[:200]}") from None
            time.sleep(1)


def _tls(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    if not row or not row[0]:
        raise DrillError("the connection to the restore is not encrypted (pg_stat_ssl)")
    return f"{row[1]} {row[2]}"


def _restored_markers(conn: psycopg.Connection[Any], drill_id: str) -> tuple[int | None, tuple[int, int, datetime] | None]:
    """(greatest marker id of any drill, this drill's newest marker as (seq, id, written_at)) in the restore."""
    if conn.execute("SELECT to_regclass(%s)", (f"{MARKERS[0]}.{MARKERS[1]}",)).fetchone() == (None,):
        return None, None
    table = sql.Identifier(*MARKERS)
    top = conn.execute(sql.SQL("SELECT max(id) FROM {}").format(table)).fetchone()
    newest = conn.execute(sql.SQL("SELECT seq, id, written_at FROM {} WHERE drill = %s ORDER BY seq DESC LIMIT 1").format(table), (drill_id,)).fetchone()
    return (int(top[0]) if top and top[0] is not None else None), (int(newest[0]), int(newest[1]), newest[2]) if newest else None


def _missing_before(conn: psycopg.Connection[Any], drill_id: str, restored_seq: int, point: datetime) -> int:
    """This drill's markers written at least RESTORE_POINT_SLACK before ``point`` that the restore lacks."""
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE drill = %s AND seq > %s AND written_at <= %s").format(sql.Identifier(*MARKERS)),
        (drill_id, restored_seq, point - RESTORE_POINT_SLACK),
    ).fetchone()
    return int(row[0]) if row else 0


class _RestorableLag:
    """Watches LatestRestorableTime while the drill waits, and shows progress when it moves.

    ``max_seconds`` is the longest span of the drill's own writes (markers, from ``since`` on) that was not yet
    restorable at a poll: what a disaster at that moment would have lost. Time before the first marker does not
    count: a restorable time that stands still while nothing is written loses nothing.
    """

    def __init__(self, on_progress: Callable[[str], None], since: datetime) -> None:
        self.on_progress = on_progress
        self.since = since
        self.max_seconds: float | None = None
        self._last: datetime | None = None
        self._shown = 0.0

    def __call__(self, latest: datetime | None) -> None:
        if latest is None:
            return
        now = datetime.now(UTC)
        behind = (now - latest).total_seconds()
        at_risk = max(0.0, (now - max(latest, self.since)).total_seconds())
        self.max_seconds = at_risk if self.max_seconds is None else max(self.max_seconds, at_risk)
        if latest != self._last or time.monotonic() - self._shown >= 30:
            self.on_progress(f"  latest restorable time {latest.isoformat()} ({behind:.0f} s behind)")
            self._last, self._shown = latest, time.monotonic()


@contextmanager
def _no_interrupts() -> Iterator[None]:
    """Ctrl-C is ignored while the scratch instance is being deleted: a second Ctrl-C must not leave it billed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_drill(
    target: Target,
    spec: EnvironmentSpec,
    *,
    on_progress: Callable[[str], None] = lambda _: None,
    after_restore: Callable[[dict[str, Any]], None] | None = None,
    marker_interval_s: float = 0.5,
    restorable_wait_s: float = 900.0,
) -> DrillReport:
    """Run the drill; always returns a report (``ok`` tells), except for a DrillError before anything was created.

    ``after_restore`` gets the scratch instance's description once it is available (a test can tamper with it).
    """
    env = spec.name.value
    started = time.monotonic()
    now = datetime.now(UTC)
    scratch = naming.drill_instance(env, now.strftime("%Y%m%d%H%M%S"))
    report = DrillReport(env, target.name, scratch, uuid.uuid4().hex[:12], spec.recovery.rpo_minutes * 60.0, spec.recovery.rto_minutes * 60.0, now.isoformat())
    poll_s = 0.5 if target.is_local else 15.0
    rds = target.client("rds")
    config = RuntimeConfig(env=env, ca_bundle=ca_bundle(target), connect_timeout_s=10, application_name="rentaliq-drill")
    creds = Secrets(config, client=target.client("secretsmanager")).credentials()
    source = drill_rds.source_instance(rds, env)
    writer = MarkerWriter(lambda: _connect(creds, config), report.drill_id, interval_s=marker_interval_s)
    requested = False
    try:
        on_progress(f"writing marker rows to {source.identifier} every {marker_interval_s:g} s (table {TABLE}, drill {report.drill_id})")
        first = writer.start()
        on_progress(f"waiting until {source.identifier}'s latest restorable time passes the first marker ({first.written_at.isoformat()})")
        lag = _RestorableLag(on_progress, first.written_at)
        drill_rds.wait_restorable(rds, source.identifier, first.written_at + RESTORE_POINT_SLACK, timeout_s=restorable_wait_s, poll_s=poll_s, on_poll=lag)
        latest = drill_rds.latest_restorable_time(rds, source.identifier)
        lag(latest)
        report.restorable_lag_max_seconds = lag.max_seconds
        report.latest_restorable_time = latest.isoformat()
        requested_at = time.time()
        clock = time.monotonic()
        report.restore_requested_at = datetime.fromtimestamp(requested_at, UTC).isoformat()
        on_progress(f"restoring {source.identifier} to its latest restorable time ({latest.isoformat()}) as {scratch}")
        requested = True
        drill_rds.request_restore(rds, spec, source, scratch)
        deadline = clock + report.rto_target_seconds
        item = drill_rds.wait_available(
            rds, scratch, deadline=deadline, poll_s=poll_s, on_status=lambda s: on_progress(f"  {scratch}: {s} ({time.monotonic() - clock:.0f} s)")
        )
        if item is None:
            report.problems.append(f"{scratch} was not available within the RTO target ({report.rto_target_seconds:.0f} s)")
            return report
        if after_restore is not None:
            after_restore(item)
        endpoint = item["Endpoint"]
        with ExitStack() as stack:
            restored = stack.enter_context(_connect_until(creds, config, endpoint["Address"], int(endpoint["Port"]), deadline))
            report.tls = _tls(restored)
            on_progress(f"connected to {scratch} over {report.tls}; comparing every table with the source")
            top_id, newest = _restored_markers(restored, report.drill_id)
            report.newest_marker_restored = _marker(newest)
            src = stack.enter_context(_connect(creds, config))
            scope = (sql.SQL("id <= {}").format(sql.Literal(top_id or 0)), f"markers up to id {top_id or 0}, the restore's newest")
            report.tables = compare(src, restored, {MARKERS: scope})
            report.markers_missing_before_restore_point = _missing_before(src, report.drill_id, newest[0] if newest else 0, latest)
        report.rto_seconds = time.monotonic() - clock
        last = writer.committed_before(requested_at)
        report.newest_marker_before_request = _marker(last)
        if last is not None and newest is not None:
            report.rpo_seconds = max(0.0, (last.written_at - newest[2]).total_seconds())
        elif last is not None:
            report.rpo_seconds, report.rpo_is_lower_bound = (last.written_at - first.written_at).total_seconds(), True
            report.problems.append("the restore holds none of the drill's markers: its data is older than the drill")
        for check in report.tables:
            if check.problem:
                report.problems.append(check.problem)
        if report.markers_missing_before_restore_point:
            report.problems.append(
                f"the restore lacks {report.markers_missing_before_restore_point} marker(s) committed before its restore point ({latest.isoformat()})"
            )
        return report
    except (RuntimeError, psycopg.Error, BotoCoreError, ClientError) as error:  # reported; the scratch instance is still deleted
        report.problems.append(" ".join(f"{type(error).__name__}: {error}".split())[:400])
        return report
    finally:
        writer.stop()
        report.markers_written = len(writer.snapshot())
        report.marker_write_failures = writer.failures
        if requested:
            on_progress(f"deleting {scratch} (no final snapshot; Ctrl-C waits for it)")
            try:
                with _no_interrupts():
                    report.cleanup = drill_rds.delete_scratch(
                        rds, scratch, retry_s=60.0 if target.is_local else 3600.0, confirm_s=30.0 if target.is_local else 0.0, poll_s=poll_s
                    )
            except Exception as error:  # noqa: BLE001 - reported with the command to finish it by hand
                report.cleanup = f"FAILED: {' '.join(str(error).split())[:200]}"
                by_hand = f"{target.aws_cli} rds delete-db-instance --db-instance-identifier {scratch} --skip-final-snapshot"
                report.problems.append(f"{scratch} was not deleted; delete it with: {by_hand}")
            on_progress(f"{scratch}: {report.cleanup}")
        report.elapsed_seconds = time.monotonic() - started
