"""How to spell a `rentaliq` command so that a user can paste it.

After `./setup.sh` the console script lives in `.venv/bin/` and is usually not on PATH, so a hint that says
`rentaliq psql lab` fails when pasted. Every hint the library or the CLI prints goes through `command()`, which
answers the way this process was invoked: `rentaliq` when that name on PATH is this very program, else the path
it was started by (`.venv/bin/rentaliq`), else `python -m rentaliq.cli` with this interpreter.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from functools import cache
from pathlib import Path


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it (`.venv/bin/rentaliq`), else absolute."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except (OSError, ValueError):
        return str(path.absolute())
    return str(relative) if str(relative).startswith(".") else f"./{relative}" if "/" not in str(relative) else str(relative)


@cache
def program() -> str:
    """The shell words that run this CLI, as the user can paste them."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    on_path = shutil.which("rentaliq")
    if Path(argv0).name == "rentaliq":
        if on_path and _same_file(on_path, argv0):
            return "rentaliq"
        return shlex.quote(_shown(Path(argv0)))
    script = Path(sys.executable).parent / "rentaliq"
    if script.is_file():
        if on_path and _same_file(on_path, script):
            return "rentaliq"
        return shlex.quote(_shown(script))
    return f"{shlex.quote(sys.executable)} -m rentaliq.cli"


def command(*args: str) -> str:
    """`command("psql", "lab")` -> `.venv/bin/rentaliq psql lab` (or `rentaliq psql lab` when that works)."""
    return " ".join([program(), *args])
