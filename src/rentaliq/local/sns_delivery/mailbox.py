"""Captured email deliveries: what AWS would have mailed to ``email`` and ``email-json`` subscriptions.

One JSON object per line in ``<state_dir>/sns/mailbox.jsonl`` (appended and flushed per delivery, so a ``kill -9``
loses nothing that was delivered). Bounded: ``RENTALIQ_LOCAL_MAILBOX_MAX`` deliveries (default 1000) are kept; when
the file holds twice that many it is rewritten atomically with the newest ones.

Each record: ``Timestamp`` (ISO 8601, UTC), ``Type`` (SubscriptionConfirmation or Notification), ``Protocol``,
``Endpoint`` (the address), ``TopicArn``, ``SubscriptionArn``, ``MessageId``, ``Subject``, ``Body``.
Readers: :func:`read` (a state dir, no server needed) and the server's ``GET /_rentaliq/sns/mail``.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

MAX_ENV = "RENTALIQ_LOCAL_MAILBOX_MAX"
FILE = "mailbox.jsonl"


def path_in(state_dir: Path) -> Path:
    return Path(state_dir) / "sns" / FILE


class Mailbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.limit = max(int(os.environ.get(MAX_ENV, "1000")), 1)
        except ValueError:  # not a number: the default, rather than a local cloud that cannot start
            self.limit = 1000
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lines = sum(1 for _ in path.open("rb")) if path.exists() else 0

    def add(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.write(line)
            self._lines += 1
            if self._lines > 2 * self.limit:
                self._compact()

    def _compact(self) -> None:
        keep = self.path.read_text(encoding="utf-8").splitlines(keepends=True)[-self.limit :]
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(keep)
        os.replace(tmp, self.path)
        self._lines = len(keep)

    def read(self, **filters: Any) -> list[dict[str, Any]]:
        with self._lock:
            return read_file(self.path, **filters)


def read_file(
    path: Path, topic_arn: str | None = None, since: datetime | None = None, endpoint: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Deliveries, newest first, optionally only one topic's, one address's, or those at/after ``since`` (aware)."""
    if not path.exists():
        return []
    found: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash mid-write
        if topic_arn and record.get("TopicArn") != topic_arn:
            continue
        if endpoint and record.get("Endpoint") != endpoint:
            continue
        if since and datetime.fromisoformat(record["Timestamp"].replace("Z", "+00:00")) < since:
            continue
        found.append(record)
    found.reverse()
    return found[:limit] if limit else found


def read(state_dir: Path, **filters: Any) -> list[dict[str, Any]]:
    """The captured email deliveries of the local cloud whose state is ``state_dir`` (see :func:`read_file`)."""
    return read_file(path_in(state_dir), **filters)
