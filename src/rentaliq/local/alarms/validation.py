"""PutMetricAlarm's rules that moto 5.2.5 does not check: without them an alarm AWS refuses is stored and evaluated
(a 45 s period flips on 45 s buckets; "datapoints 5 of 2" reads "minimum -2 datapoints"; a NaN threshold).

Each broken rule is AWS's ValidationError, one line naming the value and what is allowed."""

from __future__ import annotations

import math
import re
from typing import Any

from moto.cloudwatch.exceptions import ValidationError

from rentaliq.local.alarms.evaluation import STATISTICS

OPERATORS = (
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
BAND_OPERATORS = OPERATORS[4:]  # anomaly detection: they compare with a band, ThresholdMetricId names it
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
_PERCENTILE = re.compile(r"p(100(\.0{1,2})?|\d{1,2}(\.\d{1,2})?)")


def _enum(value: str, field: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )


def check(params: dict[str, Any]) -> None:
    """Raise ValidationError for the first rule ``params`` (moto's put_metric_alarm arguments) breaks."""
    if params.get("rule") is not None:
        return  # a composite alarm: none of these apply
    operator = params.get("comparison_operator")
    _enum(operator, "comparisonOperator", OPERATORS)
    if params.get("treat_missing_data") is not None:
        _enum(params["treat_missing_data"], "treatMissingData", MISSING_DATA)
    if operator in BAND_OPERATORS:
        if not params.get("threshold_metric_id"):
            raise ValidationError(f"ComparisonOperator {operator} is for anomaly detection alarms: ThresholdMetricId is required.")
    elif params.get("threshold") is None or not math.isfinite(float(params["threshold"])):
        raise ValidationError(f"Threshold {params.get('threshold')!r} is not valid: a finite number is required.")
    periods = int(params.get("evaluation_periods") or 0)
    datapoints = params.get("datapoints_to_alarm")
    if datapoints is not None and not 1 <= int(datapoints) <= periods:
        raise ValidationError(f"DatapointsToAlarm ({datapoints}) must be between 1 and EvaluationPeriods ({periods}).")
    if params.get("metric_data_queries"):
        return  # metric math: period and statistic live in the queries
    statistic, extended = params.get("statistic"), params.get("extended_statistic")
    if bool(statistic) == bool(extended):
        raise ValidationError("Exactly one of Statistic and ExtendedStatistic must be given.")
    if statistic:
        _enum(statistic, "statistic", STATISTICS)
    elif not _PERCENTILE.fullmatch(extended):
        raise ValidationError(f"ExtendedStatistic {extended!r} is not valid: a percentile p0.0 to p100, e.g. p99 or p99.9.")
    period = int(params.get("period") or 0)
    if period not in (10, 30) and (period <= 0 or period % 60):
        raise ValidationError(f"Period ({period}) must be 10, 30 or a multiple of 60 seconds.")
    for key in ("alarm_actions", "ok_actions", "insufficient_data_actions"):
        for action in params.get(key) or []:
            if not str(action).startswith("arn:"):
                raise ValidationError(f"Invalid arn syntax: {action}")
