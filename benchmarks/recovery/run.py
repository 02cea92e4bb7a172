"""Run the recovery benchmarks of issue 9 §3 on a private local cloud and print one table.

    .venv/bin/python -m benchmarks.recovery            # the issue's sizes: a 1 GiB database
    .venv/bin/python -m benchmarks.recovery --gib 0.2  # scaled down
    .venv/bin/python -m benchmarks.recovery --quick    # a small smoke run (~50 MiB, short load)

Every ratio is against the peer measured in the same run on the same data (see ``hand``).
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

from benchmarks.recovery import failover, lag
from benchmarks.recovery.cloud import private_bench
from benchmarks.recovery.copies import SOURCE, CopyBench, Figure

MIB_PER_SCALE = 15.1  # pgbench_accounts + its index + the small tables, per pgbench scale unit


def table(figures: list[Figure]) -> str:
    lines = [f"{'benchmark':<48} {'ours':>10} {'peer':>10} {'ratio':>6}  target"]
    for f in figures:
        ours = f"{f.ours:.2f} s" if f.unit == "s" else f"{f.ours:g}"
        peer = f"{f.peer:.2f} s" if f.peer is not None else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        if f.target is None:
            target = "reported only"
        elif f.peer is not None:
            target = f"ratio <= {f.target:g}"
        else:
            target = f"<= {f.target:g} {f.unit}"
        verdict = "" if f.target is None else ("  ok" if f.ok else "  MISSED")
        lines.append(f"{f.name:<48} {ours:>10} {peer:>10} {ratio:>6}  {target}{verdict}")
        if f.peer_name or f.detail:
            lines.append(f"{'':<48} {'; '.join(x for x in (('peer: ' + f.peer_name) if f.peer_name else '', f.detail) if x)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery", description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="database size in GiB (default 1, the issue's)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 0.05 GiB, 10 s of pgbench")
    parser.add_argument("--lag-seconds", type=int, default=30, help="length of the pgbench write load for replica lag (default 30)")
    parser.add_argument("--keep-state", action="store_true", help="keep the cloud's state dir (logs) for a post-mortem")
    parser.add_argument("--only", default="copies,lag,failover", help="comma-separated parts to run: copies, lag (needs copies), failover")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    gib, lag_seconds = (0.05, 10) if args.quick else (args.gib, args.lag_seconds)
    if gib <= 0 or lag_seconds <= 0:
        parser.error(f"--gib and --lag-seconds must be positive (got {gib}, {lag_seconds})")
    parts = set(args.only.split(","))
    if not parts <= {"copies", "lag", "failover"} or ("lag" in parts and "copies" not in parts):
        parser.error(f"--only {args.only!r}: choose from copies, lag, failover (lag needs copies)")
    scale = max(1, round(gib * 1024 / MIB_PER_SCALE))
    print(
        f"recovery benchmarks: {gib:g} GiB (pgbench scale {scale}), {os.cpu_count()} CPUs, {platform.node()}, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    started = time.perf_counter()
    figures: list[Figure] = []
    with private_bench(archive_seconds=1.0, keep=args.keep_state) as bench:
        copies = CopyBench(bench, scale)
        try:
            if "copies" in parts:
                figures += copies.run()
                print(table(figures), flush=True)
            if "lag" in parts:
                figures += lag.run(bench, lag_seconds)
            if "copies" in parts:
                # Two fresh instances share one WAL archive on this local cloud (moto gives every new
                # instance the same DbiResourceId, the archive's key): the source goes before the next.
                bench.delete(SOURCE)
            if "failover" in parts:
                figures += failover.run(bench)
        finally:
            copies.stop_hand_servers()
    print()
    print(table(figures))
    print(f"total {time.perf_counter() - started:.0f} s, load average now {os.getloadavg()[0]:.1f}")
    if args.json:
        print(json.dumps([{**f.__dict__, "ratio": f.ratio, "ok": f.ok} for f in figures], indent=2, default=str))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
