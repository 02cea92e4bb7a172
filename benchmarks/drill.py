"""Benchmark `rentaliq drill prod` end to end on a database of about 100 MiB (issue 9, section 3: reported, not budgeted).

Run: .venv/bin/python -m benchmarks.drill [--mib 100]
A fresh local cloud (temp state dir, free port): `up prod`, a table filled until the database holds the given size,
then `rentaliq drill prod --json`, timed; prints the drill's own figures (RPO, RTO, tables) next to the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from tests.ports import free_port


def _cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"rentaliq {' '.join(args)} failed:\n{result.stderr}")
    return result


def _seed(endpoint_url: str, mib: int) -> int:
    from rentaliq.deploy.db_tls import ca_bundle
    from rentaliq.deploy.target import Target
    from rentaliq.runtime import RuntimeConfig, Secrets
    from rentaliq.runtime.database import connection_kwargs

    target = Target.local(endpoint_url)
    creds = Secrets(RuntimeConfig(env="prod"), client=target.client("secretsmanager")).credentials()
    with psycopg.connect(**connection_kwargs(creds, RuntimeConfig(env="prod", ca_bundle=ca_bundle(target)))) as conn:
        conn.execute("CREATE TABLE bench_listings (id bigint PRIMARY KEY, city text, body text)")
        batch = 100_000
        start = 0
        while True:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
            if size >= mib * 1024 * 1024:
                return int(size)
            conn.execute(
                "INSERT INTO bench_listings SELECT g, 'city ' || (g %% 500), repeat(md5(g::text), 3) FROM generate_series(%s, %s) g",
                (start + 1, start + batch),
            )
            conn.commit()
            start += batch


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=100)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="rentaliq-bench-", dir="/tmp"))
    os.chmod(home, 0o755)
    port = free_port()
    env = {**os.environ, "RENTALIQ_HOME": str(home / "state"), "RENTALIQ_LOCAL_PORT": str(port)}
    try:
        _cli(env, "up", "prod", "--outdir", str(home / "cdk.out"), "--json")
        size = _seed(f"http://127.0.0.1:{port}", args.mib)
        started = time.perf_counter()
        result = _cli(env, "drill", "prod", "--json", check=False)
        wall = time.perf_counter() - started
    finally:
        _cli(env, "local", "stop", check=False)
        shutil.rmtree(home, ignore_errors=True)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"rentaliq drill prod gave no report (exit {result.returncode}):\n{result.stderr}") from None
    print(f"database size                  {size / 1024**2:8.1f} MiB")
    print(f"drill prod, wall time          {wall:8.1f} s   (exit {result.returncode}, ok={report['ok']})")
    print(f"  of which: restore → verified {report['rto_seconds'] or float('nan'):8.1f} s   RTO, target below {report['rto_target_seconds']:.0f} s")
    rpo = report["rpo_seconds"] if report["rpo_seconds"] is not None else float("nan")
    print(f"  RPO measured                 {rpo:8.1f} s   target below {report['rpo_target_seconds']:.0f} s")
    lag = report["restorable_lag_max_seconds"] if report["restorable_lag_max_seconds"] is not None else float("nan")
    print(f"  markers not yet restorable   {lag:8.1f} s   at worst while waiting (also held against the RPO target)")
    print(f"  tables compared              {len(report['tables']):8d}     all match: {all(t['match'] for t in report['tables'])}")
    print(f"  markers written              {report['markers_written']:8d}     cleanup: {report['cleanup']}")
    for problem in report["problems"]:
        print(f"  problem: {problem}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
