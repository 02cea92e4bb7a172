"""Run every runtime benchmark on a private local cloud and check the targets.

    .venv/bin/python -m benchmarks.runtime                 # everything (about 2-3 minutes)
    .venv/bin/python -m benchmarks.runtime --only secrets,database --json

Starts its own moto server (as a separate process, like the ``aws`` CLI it is compared with, so
that moto's request handling does not compete for this process's GIL) and a PostgreSQL 15 server
(TLS only), seeds the ``lab`` secrets and bucket exactly as deployed, runs the benchmarks, prints
each ratio with its target, and exits 1 if a hard target was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/runtime/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.runtime.common import Result, report
from tests.functional.runtime.seeded_cloud import SeededCloud

ENV = "lab"
ALL = ("secrets", "files", "database")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runtime", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {', '.join(ALL)}")
    parser.add_argument("--file-mib", type=int, default=256, help="size of the file transferred (MiB)")
    parser.add_argument("--file-rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON as well")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; allowed: {', '.join(ALL)}")

    aws_cli = str(Path(sys.executable).with_name("aws"))
    if "files" in wanted and not os.access(aws_cli, os.X_OK):
        parser.error(f"{aws_cli} not found: install awscli in the venv (pip install -e '.[dev]')")

    results: list[Result] = []
    started = time.monotonic()
    print("starting the local cloud (moto server process + PostgreSQL 15 with TLS) ...", flush=True)
    with SeededCloud(moto_mode="process") as cloud:
        cloud.seed_env(ENV)
        with cloud.activated(ENV):
            if "secrets" in wanted:
                from benchmarks.runtime import bench_secrets

                print("secrets ...", flush=True)
                results += bench_secrets.run(ENV)
            if "database" in wanted:
                from benchmarks.runtime import bench_database

                print("database ...", flush=True)
                results += bench_database.run(ENV, queries=args.queries)
            if "files" in wanted:
                from benchmarks.runtime import bench_files

                print(f"files ({args.file_mib} MiB x {args.file_rounds} rounds each way, each side) ...", flush=True)
                workdir = Path(tempfile.mkdtemp(prefix="rentaliq-rt-bench-", dir="/tmp"))
                try:
                    results += bench_files.run(
                        ENV,
                        aws_cli=aws_cli,
                        endpoint_url=cloud.endpoint_url,
                        aws_env={**os.environ, **cloud.env_vars()},
                        workdir=workdir,
                        size_mib=args.file_mib,
                        rounds=args.file_rounds,
                    )
                finally:
                    for leftover in workdir.iterdir():
                        leftover.unlink()
                    workdir.rmdir()
    print()
    print(report(results))
    missed = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(missed)}/{len(results)} ok, {len(missed)} missed; {time.monotonic() - started:.0f} s in all")
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
