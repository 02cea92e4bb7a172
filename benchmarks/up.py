"""Benchmark `rentaliq up`: cold (stopped cloud → database accepting TLS), no-op, and `up --all`.

Run: .venv/bin/python -m benchmarks.up
Each figure is printed with its budget from the issue and the ratio figure/budget (≤ 1.0 meets it).
Uses a fresh state dir and a free port, so it never touches your own local cloud.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.ports import free_port

BUDGETS = {"up lab, stopped cloud": 15.0, "up lab, no-op": 3.0, "up --all (lab deployed)": 30.0}


def _run(env: dict, *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"rentaliq {' '.join(args)} failed:\n{result.stderr}")
    return elapsed


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="rentaliq-bench-", dir="/tmp"))
    os.chmod(home, 0o755)
    outdir = home / "cdk.out"
    env = {**os.environ, "RENTALIQ_HOME": str(home / "state"), "RENTALIQ_LOCAL_PORT": str(free_port())}
    figures = {}
    try:
        # Warm the synth cache first: the budget is for the local cloud and the deploy, and synth is
        # reported separately (it is the same on AWS).
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rentaliq.cli", "synth", "--outdir", str(outdir)], env=env, check=True, capture_output=True)
        synth = time.perf_counter() - started
        figures["up lab, stopped cloud"] = _run(env, "up", "lab", "--outdir", str(outdir), "--json")
        figures["up lab, no-op"] = _run(env, "up", "lab", "--outdir", str(outdir), "--json")
        figures["up --all (lab deployed)"] = _run(env, "up", "--all", "--outdir", str(outdir), "--json")
    finally:
        subprocess.run([sys.executable, "-m", "rentaliq.cli", "local", "stop"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    print(f"{'benchmark':<28} {'seconds':>8} {'budget':>8} {'ratio':>6}")
    failed = False
    for name, seconds in figures.items():
        ratio = seconds / BUDGETS[name]
        failed |= ratio > 1.0
        print(f"{name:<28} {seconds:8.2f} {BUDGETS[name]:8.1f} {ratio:6.2f}{'  OVER BUDGET' if ratio > 1 else ''}")
    print(f"{'synth all three, nag on':<28} {synth:8.2f}      (not budgeted)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
