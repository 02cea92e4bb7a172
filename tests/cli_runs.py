"""The `rentaliq` command run as a user runs it (a subprocess, its own environment) and the two answers tests
expect of it: success, or the one-line error the CLI gives for bad input and refused operations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def rentaliq(env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m rentaliq.cli ARGS`` with exactly ``env``; ``timeout`` only bounds a hung command."""
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Exit 0 and no traceback; returns the result to read its output."""
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess[str], *, alone: bool = False) -> str:
    """Exit 1, no traceback, one ``error:`` line (returned). ``alone``: stderr holds nothing else either, for
    commands that print no progress there."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert not alone or lines == errors, result.stderr
    return errors[0]
