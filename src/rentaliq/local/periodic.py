"""A daemon thread that runs one background duty of the local cloud on a clock, until the cloud stops.

The PostgreSQL supervisor and the automated-backup schedule are both such duties: a pass every few
seconds, a failed pass logged and the next one tried, and a stop that waits for the pass in progress.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicThread:
    """Subclasses give ``name``, ``interval()`` and ``tick()``; ``stopping`` lets a long pass end early."""

    name = "periodic"

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def interval(self) -> float:
        raise NotImplementedError

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self.stopping.wait(self.interval()):
            try:
                self.tick()
            except Exception:
                log.exception("%s pass failed", self.name)


class OneRunning:
    """The single running duty of one kind in this process: ``start`` makes and starts it once, ``stop`` stops
    and forgets it, so a cloud restarted in the same process (the tests) gets a fresh one."""

    def __init__(self, make: Callable[[], PeriodicThread]) -> None:
        self._make = make
        self.running: PeriodicThread | None = None

    def start(self) -> None:
        if self.running is None:
            self.running = self._make()
            self.running.start()

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None
