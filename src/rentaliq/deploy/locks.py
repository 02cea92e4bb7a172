"""One operation per environment at a time: `up`, `deploy` and `destroy` hold the environment's lock.

On the local cloud the lock is a file lock (fcntl) at `$RENTALIQ_HOME/locks/{env}.lock`; the file holds the
holder's pid, command and start time so the refusal can name it. The kernel drops the lock when its process
dies (even by `kill -9`), so a crash never leaves an environment locked. On AWS the stack status is the lock:
CloudFormation refuses a second operation ("is in UPDATE_IN_PROGRESS state"), which `changesets` turns into
one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from rentaliq.deploy.commands import command


class EnvironmentLocked(RuntimeError):
    """Another operation holds the environment; the message names it."""


def lock_path(state_dir: Path, env: str) -> Path:
    return state_dir / "locks" / f"{env}.lock"


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        since = time.strftime("%H:%M:%S", time.localtime(info["started"]))
        return f"pid {info['pid']} (`{info['command']}`, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def hold(state_dir: Path | None, envs: list[str], what: str) -> Iterator[None]:
    """Hold every environment's lock for the block (in a fixed order, so two `up --all` cannot deadlock).

    `state_dir` None (the AWS target) holds nothing: the stack status is the lock there.
    """
    if state_dir is None:
        yield
        return
    fds: list[int] = []
    try:
        for env in sorted(set(envs)):
            path = lock_path(state_dir, env)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise EnvironmentLocked(
                    f"environment {env} is busy: {holder} is working on it; wait for it to finish (`{command('status', env)}` shows the stack)"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": what, "started": time.time()}).encode(), 0)
            fds.append(fd)
        yield
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing releases the lock
