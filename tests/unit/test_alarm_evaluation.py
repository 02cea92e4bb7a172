"""The pure alarm rules: CloudWatch's documented missing-data table, M of N, operators, statistics, reasons;
plus the pure helpers of SNS delivery (retry schedule, canonical string) and of `rentaliq alerts` (--since)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rentaliq.local.alarms.evaluation import ALARM, INSUFFICIENT_DATA, OK, Datapoint, Rule, evaluate, statistic
from rentaliq.local.sns_delivery.http_delivery import policy_for, retry_delays
from rentaliq.local.sns_delivery.signing import canonical
from rentaliq.ops.alerts import AlertsError, parse_since

T0 = 1_764_500_400.0  # a 60 s period boundary


def _points(pattern: str, breach: float = 90.0, ok: float = 10.0, period: int = 60) -> list[Datapoint | None]:
    """``"0 - X - X"`` (oldest first; 0 not breaching, X breaching, - missing) as datapoints."""
    out: list[Datapoint | None] = []
    for i, mark in enumerate(pattern.split()):
        start = T0 + i * period
        out.append(None if mark == "-" else Datapoint(start, breach if mark == "X" else ok, 1.0))
    return out


def _rule(treat: str, n: int = 3, m: int = 3, op: str = "GreaterThanThreshold") -> Rule:
    return Rule(period=60, evaluation_periods=n, datapoints_to_alarm=m, comparison=op, threshold=50.0, treat_missing=treat)


# The table of "How alarm state is evaluated when data is missing" (3 of 3, evaluation range 5), per mode;
# None: the alarm keeps its current state.
DOCUMENTED = [
    ("0 - X - X", {"missing": OK, "ignore": OK, "breaching": OK, "notBreaching": OK}),
    ("- - - - 0", {"missing": OK, "ignore": OK, "breaching": OK, "notBreaching": OK}),
    ("- - - - -", {"missing": INSUFFICIENT_DATA, "ignore": None, "breaching": ALARM, "notBreaching": OK}),
    ("0 X X - X", {"missing": ALARM, "ignore": ALARM, "breaching": ALARM, "notBreaching": ALARM}),
    ("- - X - -", {"missing": None, "ignore": None, "breaching": ALARM, "notBreaching": OK}),
]


@pytest.mark.parametrize("treat", ["missing", "ignore", "breaching", "notBreaching"])
@pytest.mark.parametrize(("pattern", "expected"), DOCUMENTED, ids=[row[0] for row in DOCUMENTED])
def test_documented_missing_data_table(pattern, expected, treat):
    rule = _rule(treat)
    assert rule.range_periods == 5
    for current in (OK, ALARM, INSUFFICIENT_DATA):
        outcome = evaluate(rule, _points(pattern), current, T0 + 400)
        want = expected[treat]
        # evaluate() answers None when the state would not change
        assert outcome.state == (None if want in (None, current) else want), (pattern, treat, current)


def test_m_of_n_needs_m_breaching_among_the_last_n():
    points = _points("0 0 X 0 X")  # last 3: X 0 X
    assert evaluate(_rule("missing", n=3, m=2), points, OK, T0).state == ALARM
    assert evaluate(_rule("missing", n=3, m=3), points, ALARM, T0).state == OK
    assert evaluate(_rule("missing", n=2, m=1), _points("X X X 0 0"), ALARM, T0).state == OK  # older breaches are out


@pytest.mark.parametrize(
    ("op", "value", "breaches"),
    [
        ("GreaterThanThreshold", 50.0, False),
        ("GreaterThanThreshold", 50.1, True),
        ("GreaterThanOrEqualToThreshold", 50.0, True),
        ("LessThanThreshold", 50.0, False),
        ("LessThanThreshold", 49.9, True),
        ("LessThanOrEqualToThreshold", 50.0, True),
        ("LessThanOrEqualToThreshold", 50.1, False),
    ],
)
def test_comparison_operators(op, value, breaches):
    rule = _rule("missing", n=1, m=1, op=op)
    outcome = evaluate(rule, [None, None, Datapoint(T0, value, 1)], INSUFFICIENT_DATA, T0)
    assert outcome.state == (ALARM if breaches else OK)


def test_reason_strings_as_aws_writes_them():
    one = Rule(period=60, evaluation_periods=1, datapoints_to_alarm=1, comparison="GreaterThanThreshold", threshold=80.0)
    at = datetime(2026, 11, 29, 10, 0, tzinfo=UTC).timestamp()
    outcome = evaluate(one, [None, None, Datapoint(at, 85.0, 1)], OK, at + 90)
    assert outcome.reason == "Threshold Crossed: 1 datapoint [85.0 (29/11/26 10:00:00)] was greater than the threshold (80.0)."
    assert outcome.data["recentDatapoints"] == [85.0]
    assert outcome.data["evaluatedDatapoints"] == [{"timestamp": "2026-11-29T10:00:00.000+0000", "sampleCount": 1, "value": 85.0}]
    back = evaluate(one, [None, None, Datapoint(at, 12.5, 1)], ALARM, at + 90)
    assert back.reason == "Threshold Crossed: 1 datapoint [12.5 (29/11/26 10:00:00)] was not greater than the threshold (80.0)."

    two_of_three = _rule("missing", n=3, m=2)
    outcome = evaluate(two_of_three, _points("0 0 X 0 X"), OK, T0)
    assert outcome.reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [90.0 (")
    assert outcome.reason.endswith("] were greater than the threshold (50.0) (minimum 2 datapoints for OK -> ALARM transition).")

    empty = evaluate(_rule("missing"), _points("- - - - -"), OK, T0)
    assert empty.reason == "Insufficient Data: 3 datapoints were unknown."
    filled = evaluate(_rule("breaching", n=1, m=1), [None, None, None], OK, T0)
    assert filled.reason == "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [Breaching]."


def test_statistics_over_raw_and_aggregated_samples():
    raw = [(v, 1.0, v, v, v) for v in (1.0, 2.0, 3.0, 4.0, 10.0)]
    assert statistic("Average", raw) == 4.0
    assert statistic("Sum", raw) == 20.0
    assert statistic("Minimum", raw) == 1.0
    assert statistic("Maximum", raw) == 10.0
    assert statistic("SampleCount", raw) == 5.0
    assert statistic("p50", raw) == 3.0
    assert statistic("p99", raw) == 10.0
    aggregated = [(30.0, 3.0, 5.0, 15.0, None)]  # StatisticValues: sum 30 of 3 samples
    assert statistic("Average", raw + aggregated) == 50.0 / 8
    assert statistic("Maximum", raw + aggregated) == 15.0
    assert statistic("p50", aggregated) is None  # no raw values: no percentile
    assert statistic("Average", []) is None


def test_low_sample_count_percentiles_can_be_ignored():
    p99 = Rule(period=60, evaluation_periods=1, datapoints_to_alarm=1, comparison="GreaterThanThreshold", threshold=1.0, statistic="p99")
    few = [None, None, Datapoint(T0, 5.0, 20)]
    assert evaluate(p99, few, OK, T0).state == ALARM  # evaluate (the default)
    ignoring = Rule(**{**p99.__dict__, "ignore_low_sample_count": True})
    assert ignoring.minimum_samples == pytest.approx(1000.0)
    assert evaluate(ignoring, few, OK, T0).state is None
    assert evaluate(ignoring, [None, None, Datapoint(T0, 5.0, 1000)], OK, T0).state == ALARM


def test_retry_schedule_is_aws_default_and_bounded():
    assert retry_delays(None) == [20.0, 20.0, 20.0]  # 3 retries, 20 s apart
    custom = {"numRetries": 5, "numNoDelayRetries": 1, "numMinDelayRetries": 1, "minDelayTarget": 2, "maxDelayTarget": 8, "numMaxDelayRetries": 1}
    delays = retry_delays(custom)
    assert delays[0] == 0.0 and delays[1] == 2.0 and delays[-1] == 8.0 and len(delays) == 5
    assert len(retry_delays({"numRetries": 10_000})) == 100
    sub = '{"healthyRetryPolicy": {"numRetries": 1, "minDelayTarget": 1, "maxDelayTarget": 1}}'
    topic = '{"http": {"defaultHealthyRetryPolicy": {"numRetries": 2}}}'
    assert policy_for(sub, topic) == {"numRetries": 1, "minDelayTarget": 1, "maxDelayTarget": 1}
    assert policy_for(None, topic) == {"numRetries": 2}
    assert policy_for(None, None) is None


def test_canonical_strings_follow_the_documented_field_order():
    note = {"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "hi", "Timestamp": "ts", "UnsubscribeURL": "u"}
    assert canonical(note) == "Message\nhi\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    assert canonical({**note, "Subject": "s"}) == "Message\nhi\nMessageId\nm\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    confirm = {"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "k", "TopicArn": "t", "Message": "x", "SubscribeURL": "u", "Timestamp": "ts"}
    assert canonical(confirm) == "Message\nx\nMessageId\nm\nSubscribeURL\nu\nTimestamp\nts\nToken\nk\nTopicArn\nt\nType\nSubscriptionConfirmation\n"


def test_since_accepts_durations_and_iso_times():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_since("30m", now) == datetime(2026, 11, 30, 11, 30, tzinfo=UTC)
    assert parse_since("2d", now) == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-30T04:00:00Z", now) == datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    assert parse_since("2026-11-30T04:00:00", now).tzinfo is not None
    with pytest.raises(AlertsError, match="--since 'yesterday' is not a time"):
        parse_since("yesterday", now)
