"""`up`/`deploy` option checks through the real CLI: refused before anything is started or synthesized."""

from __future__ import annotations

import os
import subprocess
import sys


def rentaliq(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def test_an_unknown_allow_replacement_name_lists_the_allowed_ones(tmp_path):
    result = rentaliq("up", "qa", "--allow-replacement", "qa-db", env={"RENTALIQ_HOME": str(tmp_path / "home")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--allow-replacement 'qa-db' names no stateful resource here; allowed: qa-api-keys, qa-database," in result.stderr
    assert "prod-access-logs" not in result.stderr and "qa-access-logs" not in result.stderr
    assert not (tmp_path / "home").exists()  # nothing was started


def test_up_wants_one_environment_or_all():
    result = rentaliq("up")
    assert result.returncode == 1 and "give one environment (lab, qa, prod) or --all" in result.stderr


def test_errors_are_not_wrapped_when_stderr_is_a_pipe(tmp_path):
    result = rentaliq("up", "qa", "--allow-replacement", "x" * 150, env={"RENTALIQ_HOME": str(tmp_path / "home"), "COLUMNS": "80"})
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: --allow-replacement") and line.endswith("qa-s3-config")
    assert not (tmp_path / "home").exists()
