"""How every command talks to people and scripts: Rich for humans, --json for scripts, one-line errors.

When stdout (or stderr) is not a terminal, nothing is wrapped: a pipe or a log gets each line whole, so a
secret ARN, a server version or a command to paste is never split at 80 columns.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

_UNWRAPPED = 100_000  # columns for a non-terminal: wide enough that Rich never breaks a line


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    # emoji off: ARNs contain `:secret:`, which Rich would otherwise render as an emoji.
    if tty:
        return Console(stderr=stderr, emoji=False)
    return Console(stderr=stderr, emoji=False, width=_UNWRAPPED, soft_wrap=True)


console = _console(stderr=False)
err_console = _console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def known_error(error: BaseException) -> bool:
    """Errors whose message is written for the user (no traceback wanted)."""
    from rentaliq.deploy.locks import EnvironmentLocked
    from rentaliq.deploy.target import NotLoopback
    from rentaliq.environments import SpecError

    return isinstance(error, (SpecError, EnvironmentLocked, NotLoopback))
