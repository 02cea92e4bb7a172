"""How every command talks to people and scripts: Rich for humans, --json for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

# emoji off: ARNs contain `:secret:`, which Rich would otherwise render as an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def known_error(error: BaseException) -> bool:
    """Errors whose message is written for the user (no traceback wanted)."""
    from rentaliq.environments import SpecError

    return isinstance(error, (SpecError, UserError))


class UserError(RuntimeError):
    """A failure the user can act on; its message is the whole story and never holds a secret."""
