"""Upload and download of a large file: the SDK (in process, warm) against ``aws s3 cp`` (awscli v1).

The peer is the command a person or a script would run, so its figure includes the CLI's start-up
(about 0.35 s here); the SDK is measured the way a service uses it: a long-lived ``Files`` object.
Sides alternate round by round and the median round counts.  The file lives in a temporary
directory that is removed afterwards, and the downloads are compared byte for byte with it.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import time
from pathlib import Path

from benchmarks.runtime.common import Result, median
from rentaliq.runtime import Files, RuntimeConfig, Secrets

MiB = 1024 * 1024


def write_payload(path: Path, size_mib: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(size_mib // 16):
            fh.write(os.urandom(16 * MiB))
        fh.write(os.urandom((size_mib % 16) * MiB))


def run(env: str, *, aws_cli: str, endpoint_url: str, aws_env: dict[str, str], workdir: Path, size_mib: int = 256, rounds: int = 3) -> list[Result]:
    src = workdir / "payload.bin"
    write_payload(src, size_mib)
    size = src.stat().st_size
    files = Files(Secrets(RuntimeConfig(env=env)))
    bucket = files.bucket
    files.upload("bench/warm-up.txt", b"warm")  # client, secret and transfer threads ready, as in a service

    def aws(*args: str) -> None:
        subprocess.run([aws_cli, "s3", "cp", *args, "--endpoint-url", endpoint_url, "--quiet", "--no-progress"], check=True, env=aws_env)

    ours_up, ours_down, aws_up, aws_down, aws_tiny = [], [], [], [], []
    tiny = workdir / "tiny.txt"
    tiny.write_bytes(b"x")
    try:
        for _ in range(3):  # the CLI's fixed cost (interpreter and awscli start-up, one request)
            started = time.perf_counter()
            aws(str(tiny), f"s3://{bucket}/bench/tiny.txt")
            aws_tiny.append(time.perf_counter() - started)
        for r in range(rounds):
            for side in ("ours", "aws") if r % 2 == 0 else ("aws", "ours"):
                started = time.perf_counter()
                if side == "ours":
                    files.upload("bench/ours.bin", src)
                    ours_up.append(time.perf_counter() - started)
                else:
                    aws(str(src), f"s3://{bucket}/bench/aws.bin")
                    aws_up.append(time.perf_counter() - started)
            for side in ("aws", "ours") if r % 2 == 0 else ("ours", "aws"):
                target = workdir / f"{side}.out"
                target.unlink(missing_ok=True)
                started = time.perf_counter()
                if side == "ours":
                    files.download("bench/ours.bin", target)
                    ours_down.append(time.perf_counter() - started)
                else:
                    aws(f"s3://{bucket}/bench/aws.bin", str(target))
                    aws_down.append(time.perf_counter() - started)
        for side in ("ours", "aws"):
            if not filecmp.cmp(src, workdir / f"{side}.out", shallow=False):
                raise RuntimeError(f"{side}: the downloaded file differs from the uploaded one")
    finally:
        for key in ("bench/ours.bin", "bench/aws.bin", "bench/warm-up.txt", "bench/tiny.txt"):
            try:
                files.delete(key)
            except Exception:  # noqa: BLE001 - best-effort cleanup of the bench cloud
                pass
        files.close()
        for name in ("payload.bin", "ours.out", "aws.out", "tiny.txt"):
            (workdir / name).unlink(missing_ok=True)

    results = []
    startup = median(aws_tiny)
    for label, ours_runs, peer_runs in (("upload", ours_up, aws_up), ("download", ours_down, aws_down)):
        ours_s, peer_s = median(ours_runs), median(peer_runs)
        net = (peer_s - startup) / ours_s
        results.append(
            Result(
                f"files: {label} {size_mib} MiB",
                size / MiB / ours_s,
                size / MiB / peer_s,
                "MiB/s",
                peer_s / ours_s,
                ">=",
                1.0,
                peer_name="aws s3 cp",
                detail=f"{rounds} rounds, medians {ours_s:.2f} s vs {peer_s:.2f} s "
                f"(ours {', '.join(f'{t:.2f}' for t in ours_runs)}; aws {', '.join(f'{t:.2f}' for t in peer_runs)}); throughput ratio; "
                f"aws s3 cp of a 1-byte file takes {startup:.2f} s (CLI start-up), without it the ratio would be {net:.2f}",
            )
        )
    return results
