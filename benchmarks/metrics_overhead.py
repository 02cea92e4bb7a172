"""What collecting metrics costs: pgbench TPS with the local cloud's metrics collection off, at the default
period (60 s) and at 1 s, and the collector's CPU per pass (issue 10, "Speed and cost": TPS ratio >= 0.98,
at most 2 % of one core per instance at the default period).

Run: .venv/bin/python -m benchmarks.metrics_overhead [--seconds 10] [--rounds 3] [--scale 5] [--clients 8]

Three local clouds start side by side (temp state dirs, free ports), each with one db.t3.micro instance
loaded by ``pgbench -i``: collection off (``RENTALIQ_LOCAL_METRICS_SECONDS=0``), at 60 s and at 1 s. The
pgbench runs (``-S`` read-only, then TPC-B-like) alternate between the three, round after round, so the
load of whoever else shares the machine falls on all three alike; the medians are compared.

The collector's CPU per pass is measured from outside: the local cloud server's CPU time (``/proc/<pid>/stat``,
its own plus its reaped children's, which counts the ``ss`` it runs) over an idle window, collection at 1 s
minus collection off, divided by the passes in the window. At the default period that cost recurs once a
minute: its share of one core is the per-pass CPU divided by 60 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from rentaliq.local.cloud import LocalCloud
from tests.aws_clients import one_try_client
from tests.functional.rds_client import SMALL_POSTGRES
from tests.ports import free_port

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
PASSWORD = "bench-metrics-password"
TICKS = os.sysconf("SC_CLK_TCK")
CONFIGS = {"off": "0", "60 s": "60", "1 s": "1"}


def _rds(cloud: LocalCloud):
    return one_try_client(cloud, "rds")


def _start(home: Path, period: str) -> tuple[LocalCloud, dict]:
    os.environ["RENTALIQ_LOCAL_METRICS_SECONDS"] = period
    os.environ["RENTALIQ_LOCAL_ARCHIVE_SECONDS"] = "30"
    cloud = LocalCloud(state_dir=home / f"state-{period}", port=free_port())
    cloud.start(timeout=90)
    rds = _rds(cloud)
    rds.create_db_instance(DBInstanceIdentifier="bench", MasterUserPassword=PASSWORD, BackupRetentionPeriod=0, **SMALL_POSTGRES)
    while (db := rds.describe_db_instances(DBInstanceIdentifier="bench")["DBInstances"][0])["DBInstanceStatus"] != "available":
        time.sleep(0.2)
    return cloud, db["Endpoint"]


def _pgbench(endpoint: dict, *args: str) -> str:
    env = {"PGPASSWORD": PASSWORD, "PGSSLMODE": "require", "PATH": "/usr/bin:/bin"}
    command = [PGBENCH, "-h", endpoint["Address"], "-p", str(endpoint["Port"]), "-U", SMALL_POSTGRES["MasterUsername"], *args, SMALL_POSTGRES["DBName"]]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


def _tps(output: str) -> float:
    for line in output.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise SystemExit(f"no tps in pgbench output:\n{output}")


def _server_cpu_s(cloud: LocalCloud) -> float:
    pid = cloud.status().pid
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICKS


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="length of each pgbench run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--idle", type=int, default=30, help="seconds of the idle window for the per-pass CPU")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="rentaliq-bench-metrics-", dir="/tmp"))
    os.chmod(home, 0o755)
    clouds: dict[str, tuple[LocalCloud, dict]] = {}
    try:
        for name, period in CONFIGS.items():
            clouds[name] = _start(home, period)
            _pgbench(clouds[name][1], "-i", "-q", "-s", str(args.scale))
        results: dict[str, dict[str, list[float]]] = {name: {"select-only": [], "tpc-b": []} for name in CONFIGS}
        order = list(CONFIGS)
        for round_ in range(args.rounds):
            for name in order if round_ % 2 == 0 else list(reversed(order)):
                endpoint = clouds[name][1]
                common = ["-c", str(args.clients), "-j", "2", "-T", str(args.seconds)]
                results[name]["select-only"].append(_tps(_pgbench(endpoint, *common, "-S")))
                results[name]["tpc-b"].append(_tps(_pgbench(endpoint, *common, "-N")))
        # Idle window: the servers' CPU with collection off vs at 1 s, side by side over the same seconds.
        before = {name: _server_cpu_s(clouds[name][0]) for name in ("off", "1 s")}
        time.sleep(args.idle)
        used = {name: _server_cpu_s(clouds[name][0]) - before[name] for name in ("off", "1 s")}
    finally:
        for cloud, _ in clouds.values():
            cloud.stop()
        shutil.rmtree(home, ignore_errors=True)

    print(f"pgbench: {args.clients} clients, scale {args.scale}, {args.rounds} rounds of {args.seconds} s per workload, medians")
    print(f"{'collection':<12}{'select-only tps':>18}{'ratio':>8}{'spread':>8}{'tpc-b (-N) tps':>18}{'ratio':>8}{'spread':>8}")
    base = {w: statistics.median(results["off"][w]) for w in ("select-only", "tpc-b")}
    for name in CONFIGS:
        row = f"{name:<12}"
        for workload in ("select-only", "tpc-b"):
            runs = results[name][workload]
            median = statistics.median(runs)
            row += f"{median:>18.0f}{median / base[workload]:>8.3f}{(max(runs) - min(runs)) / median:>8.1%}"
        print(row)
    print("spread: (max - min) / median of that configuration's runs, the noise a ratio has to be read against")
    per_pass = max(0.0, used["1 s"] - used["off"]) / args.idle
    print(f"server CPU over {args.idle} s idle: off {used['off']:.2f} s, collection at 1 s {used['1 s']:.2f} s")
    print(f"collector CPU per pass (1 instance): {per_pass * 1000:.1f} ms")
    print(f"at the default 60 s period: {per_pass / 60 * 100:.3f} % of one core per instance (budget 2 %)")
    print("target: TPS ratio >= 0.98 at the default period")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
