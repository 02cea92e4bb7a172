"""Alarms on the local cloud change state as CloudWatch's do, from datapoints the test publishes itself.

The session cloud evaluates every second (RENTALIQ_LOCAL_ALARM_SECONDS=1). Alarms here use 10 s periods (a
high-resolution period) and datapoints timestamped inside chosen complete periods, so a test never waits for a
minute boundary. Restart and kill -9 run on a private cloud of their own.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
import uuid
from datetime import UTC, datetime

import pytest

from tests.clouds import private_cloud
from tests.functional.test_local_cloud import _wait_dead

P = 10  # seconds per period


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _period_start(back: int) -> datetime:
    """A moment inside the complete period ``back`` periods before the current one (1 = the last complete)."""
    boundary = math.floor(time.time() / P) * P
    return datetime.fromtimestamp(boundary - back * P + 1, UTC)


def _put(cw, metric: str, value: float, back: int = 1, dims: list[dict] | None = None, namespace: str = "RentalIQ/Test") -> None:
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[{"MetricName": metric, "Value": value, "Timestamp": _period_start(back), "Dimensions": dims or []}],
    )


def _alarm(cw, name: str, metric: str, **overrides) -> None:
    params = {
        "AlarmName": name,
        "Namespace": "RentalIQ/Test",
        "MetricName": metric,
        "Statistic": "Average",
        "Period": P,
        "EvaluationPeriods": 1,
        "Threshold": 80.0,
        "ComparisonOperator": "GreaterThanThreshold",
        **overrides,
    }
    cw.put_metric_alarm(**params)


def _state(cw, name: str) -> dict:
    return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def _wait(cw, name: str, state: str, timeout: float = 25.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        alarm = _state(cw, name)
        if alarm["StateValue"] == state:
            return alarm
        assert time.monotonic() < deadline, f"{name} stayed {alarm['StateValue']} ({alarm['StateReason']}), expected {state}"
        time.sleep(0.25)


def _history(cw, name: str, item_type: str | None = None) -> list[dict]:
    kwargs = {"AlarmName": name, "ScanBy": "TimestampAscending"}
    if item_type:
        kwargs["HistoryItemType"] = item_type
    return cw.describe_alarm_history(**kwargs)["AlarmHistoryItems"]


@pytest.fixture(scope="module")
def cw(cloud):
    return cloud.client("cloudwatch")


def test_new_alarm_is_insufficient_data_then_alarm_then_ok_with_history(cw):
    name, metric = _name("cpu"), _name("m")
    _alarm(cw, name, metric, AlarmDescription="test alarm")
    created = _state(cw, name)
    assert (created["StateValue"], created["StateReason"]) == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation")
    assert "StateReasonData" not in created
    [config] = _history(cw, name)
    assert (config["HistoryItemType"], config["HistorySummary"], config["AlarmType"]) == ("ConfigurationUpdate", f'Alarm "{name}" created', "MetricAlarm")
    assert json.loads(config["HistoryData"])["createdAlarm"]["threshold"] == 80.0

    _put(cw, metric, 85.0)
    alarm = _wait(cw, name, "ALARM")
    assert re.fullmatch(
        r"Threshold Crossed: 1 datapoint \[85\.0 \(\d\d/\d\d/\d\d \d\d:\d\d:\d\d\)\] was greater than the threshold \(80\.0\)\.", alarm["StateReason"]
    ), alarm["StateReason"]
    data = json.loads(alarm["StateReasonData"])
    assert (data["version"], data["statistic"], data["period"], data["recentDatapoints"], data["threshold"]) == ("1.0", "Average", P, [85.0], 80.0)

    _put(cw, metric, 20.0, back=0)  # the current period: evaluated once it is complete
    ok = _wait(cw, name, "OK")
    assert "was not greater than the threshold (80.0)." in ok["StateReason"]

    updates = _history(cw, name, "StateUpdate")
    assert [u["HistorySummary"] for u in updates] == ["Alarm updated from INSUFFICIENT_DATA to ALARM", "Alarm updated from ALARM to OK"]
    second = json.loads(updates[1]["HistoryData"])
    assert second["oldState"]["stateValue"] == "ALARM" and second["newState"]["stateValue"] == "OK"
    assert second["newState"]["stateReason"] == ok["StateReason"]


@pytest.mark.slow
def test_missing_data_modes(cw):
    """One breaching datapoint two periods back, then nothing: ``missing`` goes INSUFFICIENT_DATA once the range
    (1 evaluation period + 2) no longer holds it, ``ignore`` keeps ALARM; with no data at all ``breaching`` alarms
    and ``notBreaching`` is OK."""
    metric = _name("m")
    missing, ignore, breaching, not_breaching = (_name(f"tmd-{m}") for m in ("missing", "ignore", "breaching", "notbreaching"))
    _alarm(cw, missing, metric, TreatMissingData="missing")
    _alarm(cw, ignore, metric, TreatMissingData="ignore")
    _alarm(cw, breaching, _name("silent"), TreatMissingData="breaching")
    _alarm(cw, not_breaching, _name("silent"), TreatMissingData="notBreaching")
    _put(cw, metric, 99.0, back=2)  # in the range for at least one more period

    assert _wait(cw, breaching, "ALARM")["StateReason"] == (
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [Breaching]."
    )
    assert _wait(cw, not_breaching, "OK")["StateReason"] == (
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [NonBreaching]."
    )
    _wait(cw, missing, "ALARM")
    _wait(cw, ignore, "ALARM")
    insufficient = _wait(cw, missing, "INSUFFICIENT_DATA", timeout=35)
    assert insufficient["StateReason"] == "Insufficient Data: 1 datapoint was unknown."
    assert [h["HistorySummary"] for h in _history(cw, missing, "StateUpdate")] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        "Alarm updated from ALARM to INSUFFICIENT_DATA",
    ]
    time.sleep(1.5)  # a pass after the range emptied
    assert [h["HistorySummary"] for h in _history(cw, ignore, "StateUpdate")] == ["Alarm updated from INSUFFICIENT_DATA to ALARM"]
    assert _state(cw, ignore)["StateValue"] == "ALARM"  # ignore: the state is kept while data is missing


def test_m_of_n(cw):
    metric = _name("m")
    two_of_three, three_of_three = _name("m-of-n-2"), _name("m-of-n-3")
    _alarm(cw, two_of_three, metric, EvaluationPeriods=3, DatapointsToAlarm=2)
    _alarm(cw, three_of_three, metric, EvaluationPeriods=3, DatapointsToAlarm=3)
    for back, value in ((3, 85.0), (2, 50.0), (1, 90.0)):
        _put(cw, metric, value, back=back)
    alarm = _wait(cw, two_of_three, "ALARM")
    assert re.fullmatch(
        r"Threshold Crossed: 2 out of the last 3 datapoints \[90\.0 \(.+?\), 85\.0 \(.+?\)\] were greater than the threshold \(80\.0\) "
        r"\(minimum 2 datapoints for OK -> ALARM transition\)\.",
        alarm["StateReason"],
    ), alarm["StateReason"]
    ok = _wait(cw, three_of_three, "OK")
    assert ok["StateReason"].startswith("Threshold Crossed: 1 out of the last 3 datapoints [50.0 (")
    assert ok["StateReason"].endswith("were not greater than the threshold (80.0) (minimum 1 datapoint for ALARM -> OK transition).") or ok[
        "StateReason"
    ].endswith("was not greater than the threshold (80.0) (minimum 1 datapoint for ALARM -> OK transition).")


def test_dimensions_statistic_and_unit_select_the_series(cw):
    metric = _name("m")
    dims = [{"Name": "DBInstanceIdentifier", "Value": "db-a"}]
    on_a, maximum = _name("dim-a"), _name("max")
    _alarm(cw, on_a, metric, Dimensions=dims)
    _alarm(cw, maximum, metric, Dimensions=dims, Statistic="Maximum", Unit="Percent")
    _put(cw, metric, 95.0, dims=[{"Name": "DBInstanceIdentifier", "Value": "db-b"}])  # another instance: not ours
    cw.put_metric_data(
        Namespace="RentalIQ/Test",
        MetricData=[{"MetricName": metric, "Dimensions": dims, "Timestamp": _period_start(1), "Value": v, "Unit": "Percent"} for v in (10.0, 20.0, 90.0)],
    )
    assert "[40.0 (" in _wait(cw, on_a, "OK")["StateReason"]  # the average of db-a's three values
    assert "[90.0 (" in _wait(cw, maximum, "ALARM")["StateReason"]


def test_update_keeps_state_and_set_alarm_state_writes_history(cw):
    name, metric = _name("upd"), _name("m")
    _alarm(cw, name, metric)
    _put(cw, metric, 85.0)
    _wait(cw, name, "ALARM")
    _alarm(cw, name, metric, Threshold=81.0)  # PutMetricAlarm again: "its state is left unchanged"
    assert _state(cw, name)["StateValue"] == "ALARM"
    configs = _history(cw, name, "ConfigurationUpdate")
    assert [c["HistorySummary"] for c in configs] == [f'Alarm "{name}" created', f'Alarm "{name}" updated']
    data = json.loads(configs[1]["HistoryData"])
    assert (data["originalUpdatedAlarm"]["threshold"], data["updatedAlarm"]["threshold"]) == (80.0, 81.0)

    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="manual test")
    assert _history(cw, name, "StateUpdate")[-1]["HistorySummary"] == "Alarm updated from ALARM to OK"
    cw.delete_alarms(AlarmNames=[name])
    assert _history(cw, name, "ConfigurationUpdate")[-1]["HistorySummary"] == f'Alarm "{name}" deleted'  # history outlives the alarm


def test_actions_that_cannot_run_are_failed_action_items(cw):
    name, metric = _name("act"), _name("m")
    missing_topic = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    stop_ec2 = "arn:aws:automate:us-east-1:ec2:stop"
    _alarm(cw, name, metric, AlarmActions=[missing_topic, stop_ec2])
    _put(cw, metric, 85.0)
    _wait(cw, name, "ALARM")
    deadline = time.monotonic() + 5
    while len(actions := _history(cw, name, "Action")) < 2:
        assert time.monotonic() < deadline, actions
        time.sleep(0.2)
    assert sorted(a["HistorySummary"] for a in actions) == sorted(f"Failed to execute action {arn}" for arn in (missing_topic, stop_ec2))
    assert {json.loads(a["HistoryData"])["actionState"] for a in actions} == {"Failed"}
    # the evaluator is still alive: another alarm still changes state
    other = _name("alive")
    _alarm(cw, other, metric)
    _wait(cw, other, "ALARM")


def test_describe_alarm_history_filters_and_pages(cw):
    from botocore.exceptions import ClientError

    name = _name("hist")
    _alarm(cw, name, _name("m"))
    for state in ("OK", "ALARM", "OK", "ALARM"):
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"to {state}")
    everything = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert everything[0]["Timestamp"] >= everything[-1]["Timestamp"]  # TimestampDescending by default
    first = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate", MaxRecords=3)
    assert len(first["AlarmHistoryItems"]) == 3 and first["NextToken"]
    rest = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate", MaxRecords=3, NextToken=first["NextToken"])
    assert len(rest["AlarmHistoryItems"]) == 1 and "NextToken" not in rest
    future = cw.describe_alarm_history(AlarmName=name, StartDate=datetime(2100, 1, 1, tzinfo=UTC))
    assert future["AlarmHistoryItems"] == []
    with pytest.raises(ClientError) as bad:
        cw.describe_alarm_history(AlarmName=name, HistoryItemType="Nonsense")
    assert bad.value.response["Error"]["Code"] == "ValidationError" and "Nonsense" in bad.value.response["Error"]["Message"]


@pytest.mark.slow
@pytest.mark.slow  # a private cloud, started twice (11-21 s each on a shared 2-core machine)
@pytest.mark.parametrize("how", ["stop", "kill -9"])
def test_alarm_state_and_history_survive_a_restart(how):
    os.environ.setdefault("RENTALIQ_LOCAL_ALARM_SECONDS", "1")
    with private_cloud("alarms") as cloud:
        cw = cloud.client("cloudwatch")
        name, metric = _name("persist"), _name("m")
        _alarm(cw, name, metric, TreatMissingData="ignore")  # ALARM however long the restart takes
        _put(cw, metric, 85.0, back=1)
        _wait(cw, name, "ALARM")
        before = _history(cw, name)
        if how == "stop":
            cloud.stop()
        else:
            pid = cloud.status().pid
            os.kill(pid, signal.SIGKILL)
            _wait_dead(pid)
        cloud.start(timeout=60)
        cw = cloud.client("cloudwatch")
        after = _state(cw, name)
        assert after["StateValue"] == "ALARM" and after["StateReason"].startswith("Threshold Crossed: 1 datapoint [85.0")
        assert [h["HistorySummary"] for h in _history(cw, name)][: len(before)] == [h["HistorySummary"] for h in before]
        # ... and the evaluator runs again after the restart
        _put(cw, metric, 10.0, back=0)
        _wait(cw, name, "OK")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Period": 45}, "Period (45) must be 10, 30 or a multiple of 60 seconds"),
        ({"Statistic": "Median"}, "Value 'Median' at 'statistic'"),
        ({"ComparisonOperator": "Bigger"}, "Value 'Bigger' at 'comparisonOperator'"),
        ({"TreatMissingData": "sometimes"}, "Value 'sometimes' at 'treatMissingData'"),
        ({"DatapointsToAlarm": 5, "EvaluationPeriods": 2}, "DatapointsToAlarm (5) must be between 1 and EvaluationPeriods (2)"),
        ({"ExtendedStatistic": "p99"}, "Exactly one of Statistic and ExtendedStatistic"),
        ({"Statistic": None, "ExtendedStatistic": "p999"}, "ExtendedStatistic 'p999' is not valid"),
        ({"Threshold": float("nan")}, "a finite number is required"),
        ({"AlarmActions": ["notanarn"]}, "Invalid arn syntax: notanarn"),
        ({"ComparisonOperator": "GreaterThanUpperThreshold"}, "ThresholdMetricId is required"),
    ],
)
def test_put_metric_alarm_refuses_what_aws_refuses_and_stores_nothing(cw, overrides, message):
    from botocore.exceptions import ClientError

    name = _name("invalid")
    params = {"AlarmName": name, "Namespace": "RentalIQ/Test", "MetricName": "m", "Statistic": "Average", "Period": P}
    params |= {"EvaluationPeriods": 1, "Threshold": 80.0, "ComparisonOperator": "GreaterThanThreshold"}
    with pytest.raises(ClientError) as error:
        cw.put_metric_alarm(**{k: v for k, v in {**params, **overrides}.items() if v is not None})
    assert error.value.response["Error"]["Code"] == "ValidationError" and message in error.value.response["Error"]["Message"]
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []
