"""The local cloud's own CloudTrail event history (``aws cloudtrail lookup-events``): every management API call the
server answers, with the principal that made it, kept under ``<state-dir>/cloudtrail/`` for 90 days.

``install`` runs with the other extensions (before any request); ``wrap`` puts the recorder around the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rentaliq.local.cloudtrail_events import api_fixes
from rentaliq.local.cloudtrail_events.recorder import INVOKED_BY_HEADER, STACK_HEADER, Recorder, install_hooks
from rentaliq.local.cloudtrail_events.store import EventStore

__all__ = ["INVOKED_BY_HEADER", "STACK_HEADER", "install", "wrap"]

_store: EventStore | None = None


def install(state_dir: Path) -> None:
    global _store
    install_hooks()
    api_fixes.install()
    if _store is None:
        _store = EventStore(Path(state_dir) / "cloudtrail")


def wrap(app: Callable[..., Iterable[bytes]]) -> Callable[..., Any]:
    """The recorder around ``app``; ``app`` unchanged when the history is not installed (an ephemeral server)."""
    return Recorder(_store, app) if _store is not None else app
