"""Secret reads: cached against aws-secretsmanager-caching, uncached against a raw boto3 GetSecretValue.

Cached reads are CPU-bound micro-operations: each side runs ``cached_ops`` reads per round and the
best round counts (the timeit convention: noise only ever adds time).  Uncached reads are network
round trips to the local cloud: the two sides alternate call by call (order flipped every
iteration) so that drift in the server affects both equally, and the medians are compared.
"""

from __future__ import annotations

import time

import boto3
from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

from benchmarks.runtime.common import Result, median
from rentaliq import naming
from rentaliq.runtime import RuntimeConfig, Secrets

NAME = "db/credentials"


def run(env: str, *, rounds: int = 5, cached_ops: int = 30_000, uncached_ops: int = 400) -> list[Result]:
    secret_id = naming.secret_path(env, NAME)
    secrets = Secrets(RuntimeConfig(env=env))
    secrets.get(NAME)
    cache = SecretCache(SecretCacheConfig(), client=boto3.session.Session().client("secretsmanager"))
    cache.get_secret_string(secret_id)

    ours_runs, peer_runs = [], []
    for _ in range(rounds):
        get = secrets.get
        started = time.perf_counter()
        for _ in range(cached_ops):
            get(NAME)
        ours_runs.append((time.perf_counter() - started) / cached_ops)
        get_string = cache.get_secret_string
        started = time.perf_counter()
        for _ in range(cached_ops):
            get_string(secret_id)
        peer_runs.append((time.perf_counter() - started) / cached_ops)
    ours, peer = min(ours_runs), min(peer_runs)
    cached = Result(
        "secrets: cached read",
        ours,
        peer,
        "s",
        ours / peer,
        "<=",
        1.0,
        goal=0.5,
        peer_name="aws-secretsmanager-caching",
        detail=f"{cached_ops:,} reads x {rounds} rounds, best round; time ratio (lower is better)",
    )

    raw = boto3.session.Session().client("secretsmanager")
    raw.get_secret_value(SecretId=secret_id)
    secrets.refresh(NAME)
    ours_calls, raw_calls = [], []
    for i in range(uncached_ops):
        for side in (0, 1) if i % 2 == 0 else (1, 0):
            started = time.perf_counter()
            if side == 0:
                secrets.refresh(NAME)
            else:
                raw.get_secret_value(SecretId=secret_id)
            (ours_calls if side == 0 else raw_calls).append(time.perf_counter() - started)
    ours, peer = median(ours_calls), median(raw_calls)
    uncached = Result(
        "secrets: uncached read",
        ours,
        peer,
        "s",
        ours / peer,
        "<=",
        1.1,
        peer_name="boto3 get_secret_value",
        detail=f"{uncached_ops} calls each, interleaved, medians; time ratio (lower is better)",
    )
    return [cached, uncached]
