"""Another process holding an environment's deploy lock, as a `rentaliq` command running elsewhere would.

The lock is taken in a separate process because that is what the lock is for: a second command, not a second
call in the same process, must be refused with the holder's pid and command.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def held_elsewhere(state_dir: Path, env: str, command: str, seconds: int = 60) -> Iterator[subprocess.Popen[str]]:
    """Yields the holder once it holds ``env``'s lock under ``state_dir``; killed when the block ends."""
    code = (
        "import time; from pathlib import Path; from rentaliq.deploy.locks import hold\n"
        f"with hold(Path({str(state_dir)!r}), [{env!r}], {command!r}):\n    print('held', flush=True); time.sleep({seconds})"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()
