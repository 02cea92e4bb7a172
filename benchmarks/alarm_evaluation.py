"""Benchmark one alarm evaluation pass of the local cloud over 1,000 alarms (issue 10: under 1 s).

Run: .venv/bin/python -m benchmarks.alarm_evaluation [--instances 250] [--hours 3] [--peer-sample 20]

In process, on moto's own CloudWatch backend (no server, so nothing but evaluation is timed): ``--instances`` DB
instances each publish 4 AWS/RDS metrics once a minute for ``--hours`` (250 x 4 x 180 = 180,000 datapoints by
default), and 1,000 alarms watch them with the spec's kinds of rules (CPU > 80 for 5 x 60 s, connections, free
storage, read latency; periods 60 and 300, M of N, every missing-data mode).

Figures: the cold pass (the index built from every datapoint), the steady pass (one new minute of datapoints
appended, as every evaluation interval on a running cloud), and the named peer measured in the same run: a naive
pass that asks moto's ``get_metric_statistics`` for each alarm's evaluation range (a scan of all datapoints per
alarm), timed on ``--peer-sample`` alarms and scaled to 1,000. The index's period statistics are checked against a
brute-force scan on the sampled alarms, so the fast path is also the right one.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from datetime import UTC, datetime

ACCOUNT, REGION = "123456789012", "us-east-1"
METRICS = (
    ("CPUUtilization", "GreaterThanThreshold", 80.0, lambda r: r.uniform(5, 95)),
    ("DatabaseConnections", "GreaterThanThreshold", 60.0, lambda r: float(r.randint(0, 90))),
    ("FreeStorageSpace", "LessThanThreshold", 2e9, lambda r: r.uniform(1e9, 2e10)),
    ("ReadLatency", "GreaterThanThreshold", 0.02, lambda r: r.uniform(0.001, 0.03)),
)
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


def _naive(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _populate(backend, instances: int, hours: int, now: float, rnd: random.Random) -> None:
    minutes = hours * 60
    for i in range(instances):
        dims = [{"Name": "DBInstanceIdentifier", "Value": f"bench-db-{i:04d}"}]
        for metric, _, _, draw in METRICS:
            data = [
                {"MetricName": metric, "Dimensions": dims, "Value": draw(rnd), "Timestamp": _naive(now - (minutes - k) * 60 + 1)}
                for k in range(minutes)
                if not (i % 10 == 0 and k > minutes - 15)  # every tenth instance stopped 15 minutes ago
            ]
            backend.put_metric_data("AWS/RDS", data)


def _alarms(backend, count: int, instances: int, rnd: random.Random) -> None:
    for n in range(count):
        i, (metric, op, threshold, _) = n % instances, METRICS[(n // instances) % len(METRICS)]
        period = 300 if n % 3 == 0 else 60
        periods = 1 if period == 300 else 5
        backend.put_metric_alarm(
            name=f"bench-{n:04d}",
            namespace="AWS/RDS",
            metric_name=metric,
            comparison_operator=op,
            evaluation_periods=periods,
            datapoints_to_alarm=max(1, periods - n % 3),
            period=period,
            threshold=threshold,
            statistic=("Average", "Maximum", "Minimum", "Sum")[n % 4] if n % 7 else None,
            description="",
            dimensions=[{"Name": "DBInstanceIdentifier", "Value": f"bench-db-{i:04d}"}],
            alarm_actions=[],
            treat_missing_data=TREATMENTS[n % 4],
            extended_statistic=None if n % 7 else "p90",
        )


def _peer_pass(backend, alarms, now: float) -> float:
    """The naive pass: moto's get_metric_statistics over each alarm's evaluation range."""
    started = time.perf_counter()
    for alarm in alarms:
        span = alarm.period * (alarm.evaluation_periods + 2)
        end = math.floor(now / alarm.period) * alarm.period
        backend.get_metric_statistics(
            alarm.namespace,
            alarm.metric_name,
            _naive(end - span),
            _naive(end),
            alarm.period,
            [alarm.statistic or "Average"],
            [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
        )
    return time.perf_counter() - started


def _check(evaluator, backend, alarms, now: float) -> int:
    """Compare the index's period statistics with a brute-force scan of moto's list; the number of periods checked."""
    from rentaliq.local.alarms.evaluation import statistic
    from rentaliq.local.alarms.evaluator import target_of
    from rentaliq.local.alarms.series import epoch, key_of, sample_of

    index = evaluator.indexes[(ACCOUNT, REGION)]
    checked = 0
    for alarm in alarms:
        target = target_of(alarm)
        rule = target.rule
        boundary = math.floor(now / rule.period) * rule.period
        starts = [boundary - rule.period * (rule.range_periods - i) for i in range(rule.range_periods)]
        fast = index.get(target.key).periods(rule.statistic, rule.period, starts, None)
        for start, got in zip(starts, fast, strict=True):
            samples = [
                sample_of(d)
                for d in backend.metric_data
                if key_of(d.namespace, d.name, d.dimensions) == target.key and start <= epoch(d.timestamp) < start + rule.period
            ]
            want = statistic(rule.statistic, samples)
            assert (got is None and want is None) or (got is not None and want is not None and math.isclose(got.value, want)), (alarm.name, start, got, want)
            checked += 1
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=250)
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--alarms", type=int, default=1000)
    parser.add_argument("--peer-sample", type=int, default=20)
    args = parser.parse_args()

    from moto.cloudwatch.models import cloudwatch_backends

    from rentaliq.local.alarms import lifecycle
    from rentaliq.local.alarms.evaluator import Evaluator

    lifecycle.install()
    rnd = random.Random(10)
    now = math.floor(time.time() / 300) * 300 + 1.0
    backend = cloudwatch_backends[ACCOUNT][REGION]
    t0 = time.perf_counter()
    _populate(backend, args.instances, args.hours, now, rnd)
    _alarms(backend, args.alarms, args.instances, rnd)
    print(f"setup: {len(backend.metric_data):,} datapoints, {len(backend.alarms):,} alarms in {time.perf_counter() - t0:.1f}s")

    evaluator = Evaluator()
    started = time.perf_counter()
    changes = evaluator.plan(now)
    cold = time.perf_counter() - started
    evaluator.apply(changes)  # no persistence in process: states and history change in moto only

    steady: list[float] = []
    for minute in range(1, 6):
        tick = now + 60 * minute
        for i in range(args.instances):
            dims = [{"Name": "DBInstanceIdentifier", "Value": f"bench-db-{i:04d}"}]
            backend.put_metric_data(
                "AWS/RDS", [{"MetricName": m, "Dimensions": dims, "Value": d(rnd), "Timestamp": _naive(tick - 59)} for m, _, _, d in METRICS]
            )
        started = time.perf_counter()
        evaluator.apply(evaluator.plan(tick))
        steady.append(time.perf_counter() - started)
    final = now + 300

    sample = rnd.sample(sorted(backend.alarms.values(), key=lambda a: a.name), args.peer_sample)
    peer = _peer_pass(backend, sample, final) * len(backend.alarms) / len(sample)
    checked = _check(evaluator, backend, sample, final)
    per_pass = statistics.median(steady)
    states: dict[str, int] = {}
    for alarm in backend.alarms.values():
        states[alarm.state_value] = states.get(alarm.state_value, 0) + 1

    print(f"state changes on the cold pass: {len(changes):,}; states now: {states}")
    print(f"cold pass (index built from {len(backend.metric_data):,} datapoints): {cold:.3f}s   budget 1 s   ratio {cold / 1.0:.2f}")
    print(f"steady pass, median of {len(steady)} (one new minute of datapoints): {per_pass:.3f}s   budget 1 s   ratio {per_pass / 1.0:.3f}")
    print(f"peer: naive per-alarm moto get_metric_statistics, scaled from {len(sample)} alarms: {peer:.1f}s per pass")
    print(f"steady pass vs peer: {per_pass / peer:.5f} ({peer / per_pass:,.0f}x faster); cold pass vs peer: {cold / peer:.4f}")
    print(f"index statistics equal a brute-force scan on {checked} periods of {len(sample)} alarms")


if __name__ == "__main__":
    main()
