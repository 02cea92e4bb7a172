"""The DR drill's marker rows: one committed row every ``interval_s`` while the drill runs, each with its commit time.

Markers are what makes the RPO measurable: the restore holds the markers up to its restore point and none after,
so the newest marker it holds, against the newest marker committed before the restore was requested, is how much
committed data the restore would have lost. Each marker is one autocommit INSERT on a connection of its own;
``written_at`` is the server's clock inside the transaction (``clock_timestamp()``, just before the commit) and
``acked_at`` this machine's clock when the commit returned, so a marker is *committed before* an instant if its
``acked_at`` is. Rows carry the drill's id, so drills never mix; a drill's rows are left in place as its record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

TABLE = "rentaliq_drill_markers"
SCHEMA = "public"  # named, so that a schema called like the master user (first on search_path) cannot catch it
DDL = f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (
    id bigserial PRIMARY KEY,
    drill text NOT NULL,
    seq integer NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (drill, seq)
)"""
INSERT = f"INSERT INTO {SCHEMA}.{TABLE} (drill, seq) VALUES (%s, %s) RETURNING id, written_at"


@dataclass(frozen=True)
class Marker:
    seq: int
    id: int
    written_at: datetime
    """The server's clock just before the commit."""
    acked_at: float
    """This machine's clock (``time.time()``) when the commit returned."""


class MarkerWriter:
    """A background thread committing one marker every ``interval_s``; ``connect`` opens its (TLS) connection.

    A lost connection is reopened (the source may restart during a drill); the failures are counted, not raised.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], drill_id: str, *, interval_s: float = 0.5) -> None:
        self._connect = connect
        self.drill_id = drill_id
        self.interval_s = interval_s
        self.markers: list[Marker] = []
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"rentaliq-drill-markers-{drill_id}", daemon=True)
        self._first = threading.Event()

    def start(self, *, first_within_s: float = 30.0) -> Marker:
        """Create the table (once), start writing, and return the first committed marker."""
        with self._connect() as conn:
            conn.execute(DDL)
            conn.commit()
        self._thread.start()
        if not self._first.wait(first_within_s):
            self.stop()
            raise RuntimeError(f"no marker row could be committed in {first_within_s:.0f} s: {self.last_error or 'no answer'}")
        return self.snapshot()[0]

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def snapshot(self) -> list[Marker]:
        with self._lock:
            return list(self.markers)

    def committed_before(self, instant: float) -> Marker | None:
        """The newest marker whose commit returned before ``instant`` (a ``time.time()`` value)."""
        return next((m for m in reversed(self.snapshot()) if m.acked_at < instant), None)

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        seq = 0
        while not self._stop.is_set():
            started = time.monotonic()
            seq += 1  # a new number every attempt: a commit whose answer was lost must not collide with its retry
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                    conn.autocommit = True
                row = conn.execute(INSERT, (self.drill_id, seq)).fetchone()
                acked = time.time()
                if row is None:
                    raise RuntimeError("INSERT ... RETURNING gave no row")
                with self._lock:
                    self.markers.append(Marker(seq, int(row[0]), row[1], acked))
                self._first.set()
            except Exception as error:  # noqa: BLE001 - counted and reported; the thread keeps writing
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        if conn is not None:
            conn.close()
