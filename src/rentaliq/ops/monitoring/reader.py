"""Read an environment's snapshot: every series of the window in one batched GetMetricData request.

One request for all series (paged only by CloudWatch's own limits: 500 queries a call, NextToken for long
answers; a second one for S3's daily storage metrics when the window is shorter than their lookback), never one
per metric: a frame of `rentaliq top` must stay cheap at a refresh every few seconds, and
on AWS GetMetricData is billed per metric read, not per call, so batching costs nothing extra.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rentaliq.deploy.target import Target
from rentaliq.ops.monitoring import alarms as alarm_reader
from rentaliq.ops.monitoring import catalog
from rentaliq.ops.monitoring.models import MetricKey, Series, Snapshot

MAX_QUERIES = 500  # GetMetricData's limit per call
DAY = 86400
DAILY_LOOKBACK = timedelta(days=3)  # S3 reports storage metrics once a day, about a day late


def choose_period(window: timedelta, points: int = 120) -> int:
    """A period (a multiple of 60 s, CloudWatch's standard resolution) giving about ``points`` datapoints over ``window``."""
    seconds = max(60, int(window.total_seconds() // max(points, 1)))
    return max(60, (seconds // 60) * 60)


def aligned_window(end: datetime, window: timedelta, period: int) -> tuple[datetime, datetime]:
    """Start and end on period boundaries (AWS rounds them so; the local cloud gets the same buckets)."""
    end_epoch = int(end.timestamp())
    stop = end_epoch - end_epoch % period + period
    start = stop - int(window.total_seconds()) - period
    start -= start % period
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(stop, UTC)


def _query(index: int, key: MetricKey, period: int) -> dict[str, Any]:
    return {
        "Id": f"m{index}",
        "MetricStat": {
            "Metric": {"Namespace": key.namespace, "MetricName": key.name, "Dimensions": [{"Name": k, "Value": v} for k, v in key.dimensions]},
            "Period": period,
            "Stat": key.stat,
        },
        "ReturnData": True,
    }


def metric_data(target: Target, keys: list[MetricKey], start: datetime, end: datetime, period: int | list[int]) -> list[Series]:
    """The datapoints of every key over [start, end), oldest first; a key without data gets an empty series.

    ``period`` is one for all keys or one per key (GetMetricData takes a period per query, one time range per call).
    """
    periods = period if isinstance(period, list) else [period] * len(keys)
    client = target.client("cloudwatch")
    found: dict[str, dict[datetime, float]] = {f"m{i}": {} for i in range(len(keys))}
    for first in range(0, len(keys), MAX_QUERIES):
        queries = [_query(first + i, key, periods[first + i]) for i, key in enumerate(keys[first : first + MAX_QUERIES])]
        token: str | None = None
        while True:
            extra = {"NextToken": token} if token else {}
            answer = client.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending", **extra)
            for result in answer.get("MetricDataResults", []):
                points = found.setdefault(result["Id"], {})
                for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    points[stamp.astimezone(UTC)] = float(value)
            token = answer.get("NextToken")
            if not token:
                break
    series = []
    for i, key in enumerate(keys):
        ordered = sorted(found[f"m{i}"].items())
        series.append(Series(key, tuple(t for t, _ in ordered), tuple(v for _, v in ordered), periods[i], start))
    return series


def read_series(target: Target, keys: list[MetricKey], window: timedelta, period: int, now: datetime) -> tuple[list[Series], datetime, datetime]:
    """Every key's series over the window, in one GetMetricData request per time range (one or two).

    S3's storage metrics are daily: they are read per day over at least DAILY_LOOKBACK, so a short window (`top`'s
    30 minutes) still shows the bucket's size. When the window is that long anyway, one request reads everything.
    """
    start, end = aligned_window(now, window, period)
    daily = [k.name in catalog.DAILY for k in keys]
    daily_start, daily_end = aligned_window(now, max(window, DAILY_LOOKBACK), DAY)
    periods = [max(period, DAY) if is_daily else period for is_daily in daily]
    if window >= DAILY_LOOKBACK or not any(daily):  # the window reaches back as far: one request with per-key periods
        return metric_data(target, keys, start, end, periods), start, end
    regular = [k for k, is_daily in zip(keys, daily, strict=True) if not is_daily]
    by_key = dict(zip(regular, metric_data(target, regular, start, end, period), strict=True))
    slow = [k for k, is_daily in zip(keys, daily, strict=True) if is_daily]
    by_key.update(zip(slow, metric_data(target, slow, daily_start, daily_end, DAY), strict=True))
    return [by_key[k] for k in keys], start, end


def read_snapshot(
    target: Target,
    env: str,
    window: timedelta,
    period: int | None = None,
    now: datetime | None = None,
    found: catalog.Resources | None = None,
    history: bool = True,
) -> Snapshot:
    """The env's resources (read unless given), the spec's metrics over the last ``window``, its alarms and (unless
    ``history`` is false: the live view shows states, not history) their history."""
    period = period or choose_period(window)
    found = found or catalog.resources(target, env)
    keys = catalog.rds_keys(found) + catalog.s3_keys(target, found.buckets)
    series, start, end = read_series(target, keys, window, period, now or datetime.now(UTC))
    alarms = alarm_reader.env_alarms(target, env)
    items, note = alarm_reader.env_history(target, env, start, end) if history else ((), None)
    notes = found.notes + ((note,) if note else ())
    return Snapshot(env, start, end, period, found.instances, found.buckets, tuple(series), alarms, items, notes)
