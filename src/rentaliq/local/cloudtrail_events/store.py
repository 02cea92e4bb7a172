"""The local cloud's CloudTrail event history: an append-only JSON-lines file in the state dir, and its index.

Each event is one line, written with a single ``write`` on an ``O_APPEND`` descriptor before the request's
response leaves the server, so an event survives a restart and a ``kill -9`` (the page cache outlives the
process); a line torn by a power cut is skipped when the file is read back. The history is bounded as AWS's
is: events older than 90 days are dropped at start-up (and the file rewritten), and at most ``MAX_EVENTS`` are
kept, oldest dropped first.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RETENTION = timedelta(days=90)  # CloudTrail's event history keeps 90 days of management events
MAX_EVENTS = 25_000  # a local bound besides the 90 days: the history is held in memory for lookups
FILE_NAME = "events.jsonl"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class EventStore:
    """Events in the order they happened (oldest first); safe to use from the server's request threads."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = self._load()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        events, dropped = [], False
        cutoff = datetime.now(UTC) - RETENTION
        for line in self.path.read_bytes().splitlines():
            try:
                event = json.loads(line)
                when = parse_time(event["eventTime"])
            except (ValueError, KeyError, TypeError):
                dropped = True  # a torn last line
                continue
            if when < cutoff:
                dropped = True
                continue
            events.append(event)
        if len(events) > MAX_EVENTS:
            events, dropped = events[-MAX_EVENTS:], True
        if dropped:
            self._rewrite(events)
        return events

    def _rewrite(self, events: list[dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events))
        os.replace(tmp, self.path)

    def append(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            os.write(self._fd, line)
            self.events.append(event)
            if len(self.events) > MAX_EVENTS + MAX_EVENTS // 10:
                self.events = self.events[-MAX_EVENTS:]
                self._rewrite(self.events)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def close(self) -> None:
        os.close(self._fd)
