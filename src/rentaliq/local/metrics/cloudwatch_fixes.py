"""CloudWatch read APIs as CloudWatch answers them, where moto 5.2.5 differs (checked against moto's source).

- ListMetrics lists each metric (namespace, name, dimension set) once. moto compares dimension sets so that
  two with more than one dimension never match (every S3 metric was listed once per datapoint) and never
  de-duplicates metrics without dimensions; it also walked every datapoint for every listed metric.
- GetMetricStatistics and GetMetricData match the *exact* dimension set, as CloudWatch does (a query with
  ``BucketName`` alone finds nothing of a metric published with ``BucketName`` + ``StorageType``); moto matched
  any superset in GetMetricStatistics, and ignored the namespace in GetMetricData when dimensions were given.
- Datapoints are grouped in periods aligned on multiples of the period (since the epoch), each period's
  timestamp its start, as CloudWatch aligns them; moto started the first period at the first datapoint
  (GetMetricStatistics) or at StartTime (GetMetricData), and GetMetricData re-scanned every datapoint per period.
- GetMetricStatistics refuses a request for more than 1,440 datapoints with CloudWatch's
  InvalidParameterCombination, as CloudWatch does; moto answered any number.
- Aware and naive times compare (moto stores naive UTC; request times may carry a zone).

GetMetricData queries with metric-math expressions still go to moto's implementation.
"""

from __future__ import annotations

import datetime
import functools
import math
import re
from typing import Any

from moto.cloudwatch import models as cw

from rentaliq.local.alarms.evaluation import STATISTICS, statistic
from rentaliq.local.alarms.series import sample_of

_EPOCH = datetime.datetime(1970, 1, 1)
MAX_DATAPOINTS = 1440  # GetMetricStatistics answers at most this many (periods x statistics) per call
_installed = False


def naive_utc(moment: Any) -> datetime.datetime:
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


def _dimension_key(dimensions: Any) -> tuple[tuple[str, str], ...]:
    pairs = []
    for d in dimensions or []:
        if isinstance(d, dict):
            pairs.append((str(d.get("Name")), str(d.get("Value"))))
        else:
            pairs.append((str(d.name), str(d.value)))
    return tuple(sorted(pairs))


def _period_start(moment: datetime.datetime, period: int) -> datetime.datetime:
    seconds = int((moment - _EPOCH).total_seconds())
    return _EPOCH + datetime.timedelta(seconds=seconds - seconds % period)


def matching(backend: Any, namespace: str, name: str, dimensions: Any, start: datetime.datetime, end: datetime.datetime, unit: str | None) -> list[Any]:
    wanted = _dimension_key(dimensions)
    return [
        d
        for d in backend.get_all_metrics()
        if d.namespace == namespace
        and d.name == name
        and start <= naive_utc(d.timestamp) < end
        and (not unit or d.unit == unit)
        and _dimension_key(d.dimensions) == wanted
    ]


def buckets(data: list[Any], period: int, stats: list[str]) -> list[cw.Statistics]:
    grouped: dict[datetime.datetime, cw.Statistics] = {}
    for datum in sorted(data, key=lambda d: naive_utc(d.timestamp)):
        at = _period_start(naive_utc(datum.timestamp), period)
        bucket = grouped.get(at)
        if bucket is None:
            bucket = grouped[at] = cw.Statistics(stats, at)
        bucket.metric_data.append(datum)
        bucket.unit = datum.unit
    return [grouped[k] for k in sorted(grouped)]


def _check_period(period: Any) -> None:
    """CloudWatch's periods: 1, 5, 10 or 30 s (high resolution) or a multiple of 60 (moto divided by zero: a 500)."""
    try:
        ok = int(period) in (1, 5, 10, 30) or (int(period) > 0 and int(period) % 60 == 0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise cw.InvalidParameterValue(f"The parameter Period must be 1, 5, 10, 30 or a multiple of 60, not {period!r}.")


_PERCENTILE = re.compile(r"p(100(\.0{1,2})?|\d{1,2}(\.\d{1,2})?)")


def is_statistic(name: str) -> bool:
    """One of CloudWatch's five statistics, or a percentile p0-p100 with up to two decimals."""
    return name in STATISTICS or bool(_PERCENTILE.fullmatch(name or ""))


def value_of(bucket: cw.Statistics, stat: str) -> float | None:
    """``stat`` over one period's datapoints, percentiles included (moto answered None for those: a 500)."""
    return statistic(stat, [sample_of(d) for d in bucket.metric_data])


def get_metric_statistics(
    self: Any, namespace: str, metric_name: str, start_time: Any, end_time: Any, period: int, stats: list[str], dimensions: Any, unit: str | None = None
) -> list[cw.Statistics]:
    start, end = naive_utc(start_time).replace(microsecond=0), naive_utc(end_time).replace(microsecond=0)
    if start >= end:
        raise cw.InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
    _check_period(period)
    for i, stat in enumerate(stats, 1):
        if stat not in STATISTICS:
            raise cw.InvalidParameterValue(f"The parameter Statistics.member.{i} must be a value in the set [ {', '.join(STATISTICS)} ].")
    requested = math.ceil((end - start).total_seconds() / int(period)) * len(stats)
    if requested > MAX_DATAPOINTS:
        raise cw.InvalidParameterCombination(
            f"You have requested up to {requested:,} datapoints, which exceeds the limit of {MAX_DATAPOINTS:,}. "
            "You may reduce the datapoints requested by increasing Period, or decreasing the time range."
        )
    return buckets(matching(self, namespace, metric_name, dimensions, start, end, unit), int(period), stats)


def list_metrics(self: Any, next_token: str | None, namespace: str, metric_name: str, dimensions: Any) -> tuple[str | None, list[Any]]:
    if next_token:
        return _original_list_metrics(self, next_token, namespace, metric_name, dimensions)
    wanted = [cw.Dimension(d["Name"], d.get("Value")) for d in dimensions or []]
    seen: dict[tuple[Any, ...], Any] = {}
    for datum in self.get_all_metrics():
        if (namespace and datum.namespace != namespace) or (metric_name and datum.name != metric_name):
            continue
        key = (datum.namespace, datum.name, _dimension_key(datum.dimensions))
        if key in seen:
            continue
        if wanted and any(not any(w.name == d.name and (w.value is None or w.value == d.value) for d in datum.dimensions) for w in wanted):
            continue
        seen[key] = datum
    return self._get_paginated(list(seen.values()))


def _check_queries(queries: list[dict[str, Any]]) -> None:
    """GetMetricData's rules for queries without metric math: a unique Id starting lowercase, a MetricStat, a valid Stat."""
    ids = [q.get("Id", "") for q in queries]
    for i, (query, query_id) in enumerate(zip(queries, ids, strict=True), 1):
        where = f"MetricDataQueries.member.{i}"
        if not re.fullmatch(r"[a-z][a-zA-Z0-9_]*", query_id):
            raise cw.ValidationError(f"The value {query_id} for parameter {where}.Id is not valid: it must start with a lowercase letter.")
        if ids.count(query_id) > 1:
            raise cw.ValidationError(f"The value {query_id} for parameter {where}.Id is used more than once.")
        if "MetricStat" not in query:
            raise cw.ValidationError(f"Exactly one of MetricStat and Expression must be given in {where}.")
        stat = query["MetricStat"].get("Stat", "")
        if not is_statistic(stat):
            raise cw.ValidationError(f"The value {stat} for parameter {where}.MetricStat.Stat is not a valid statistic.")


def get_metric_data(self: Any, queries: list[dict[str, Any]], start_time: Any, end_time: Any, scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
    if any("Expression" in q for q in queries):
        return _original_get_metric_data(self, queries, naive_utc(start_time), naive_utc(end_time), scan_by)
    start, end = naive_utc(start_time).replace(microsecond=0), naive_utc(end_time).replace(microsecond=0)
    if start > end:
        raise cw.ValidationError("The parameter EndTime must be greater than StartTime.")
    if start == end:
        raise cw.ValidationError("The parameter StartTime must not equal parameter EndTime.")
    _check_queries(queries)
    results = []
    for query in queries:
        stat = query["MetricStat"]
        metric = stat["Metric"]
        _check_period(stat.get("Period"))
        data = matching(self, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"), start, end, stat.get("Unit"))
        grouped = buckets(data, int(stat["Period"]), [stat["Stat"]])
        if scan_by == "TimestampDescending":
            grouped.reverse()
        values = [(b.timestamp, value_of(b, stat["Stat"])) for b in grouped]
        values = [(t, v) for t, v in values if v is not None]  # a percentile of aggregated datapoints only: no value
        if query.get("ReturnData", True) in (True, "true", "True"):
            results.append(
                {
                    "id": query["Id"],
                    "label": query.get("Label") or metric["MetricName"],
                    "values": [v for _, v in values],
                    "timestamps": [t for t, _ in values],
                    "status_code": "Complete",
                }
            )
    return results


_original_list_metrics = cw.CloudWatchBackend.list_metrics
_original_get_metric_data = cw.CloudWatchBackend.get_metric_data


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    for name, fix in (("get_metric_statistics", get_metric_statistics), ("list_metrics", list_metrics), ("get_metric_data", get_metric_data)):
        setattr(cw.CloudWatchBackend, name, functools.wraps(getattr(cw.CloudWatchBackend, name))(fix))
