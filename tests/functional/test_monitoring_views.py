"""`rentaliq top` and `rentaliq report --html` against the session cloud, with datapoints and alarms the test makes.

The numbers checked are the ones this test put through PutMetricData: S3 request metrics under a filter id
no stack uses (so nothing else publishes into them), and RDS CPU for the lab instance, checked exactly when the
instance does not exist and against an independent GetMetricStatistics read when it does (then the local cloud
measures the real server too, and CloudWatch averages both). Alarms watch a metric nobody publishes, so their
state is the same whether or not the local cloud evaluates alarms: breaching -> ALARM, not breaching -> OK.
The report is opened in headless Chromium (Debian's package) and read through the DOM.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rentaliq import naming
from rentaliq.ops.monitoring.reader import read_snapshot
from tests.cli_runs import ok, one_line_error
from tests.cli_runs import rentaliq as cli

pytestmark = pytest.mark.functional

ENV = "lab"
FILTER = "views-test"  # a request-metrics filter id of the test's own
BREACH, CALM = "rentaliq-lab-viewtest-breach", "rentaliq-lab-viewtest-calm"
CPU = [12.5, 30.0, 47.5, 65.0, 82.5]
ERRORS_4XX = [3.0, 0.0, 7.0]
ERRORS_5XX = [1.0, 2.0]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def datum(name: str, dims: dict[str, str], at: datetime, value: float, unit: str) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()], "Timestamp": at, "Value": value, "Unit": unit}


@pytest.fixture(scope="module")
def seeded(target) -> dict[str, Any]:
    """Datapoints one per minute ending two minutes ago, and two alarms in known states."""
    cw = target.client("cloudwatch")
    last = minute(datetime.now(UTC)) - timedelta(minutes=2)
    db = {"DBInstanceIdentifier": naming.db_instance_id(ENV)}
    bucket = {"BucketName": naming.files_bucket(ENV), "FilterId": FILTER}

    def stamps(values: list[float]) -> list[datetime]:
        return [last - timedelta(minutes=len(values) - 1 - i) for i in range(len(values))]

    cw.put_metric_data(Namespace="AWS/RDS", MetricData=[datum("CPUUtilization", db, t, v, "Percent") for t, v in zip(stamps(CPU), CPU, strict=True)])
    cw.put_metric_data(
        Namespace="AWS/S3",
        MetricData=[datum("4xxErrors", bucket, t, v, "Count") for t, v in zip(stamps(ERRORS_4XX), ERRORS_4XX, strict=True)]
        + [datum("5xxErrors", bucket, t, v, "Count") for t, v in zip(stamps(ERRORS_5XX), ERRORS_5XX, strict=True)],
    )
    for name, missing, state in ((BREACH, "breaching", "ALARM"), (CALM, "notBreaching", "OK")):
        cw.put_metric_alarm(
            AlarmName=name,
            Namespace="RentalIQ/ViewsTest",
            MetricName="NeverPublished",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData=missing,
        )
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"views test: <{state}> & co")
    exists = bool([i for i in target.client("rds").describe_db_instances()["DBInstances"] if i["DBInstanceIdentifier"] == naming.db_instance_id(ENV)])
    yield {"last": last, "cpu_stamps": stamps(CPU), "db_exists": exists}
    cw.delete_alarms(AlarmNames=[BREACH, CALM])


def by_label(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["label"]: m for m in snapshot["metrics"]}


def values_at(metric: dict[str, Any], stamps: list[datetime]) -> list[float | None]:
    points = {datetime.fromisoformat(p["timestamp"]): p["value"] for p in metric["points"]}
    return [points.get(t) for t in stamps]


def test_top_once_json_returns_the_values_put(cloud_env, target, seeded) -> None:
    snapshot = json.loads(ok(cli(cloud_env, "top", ENV, "--once", "--json", "--minutes", "15")).stdout)
    metrics = by_label(snapshot)
    bucket = naming.files_bucket(ENV)
    errors4 = metrics[f"{bucket} 4xxErrors (FilterId={FILTER})"]
    errors5 = metrics[f"{bucket} 5xxErrors (FilterId={FILTER})"]
    assert [p["value"] for p in errors4["points"]] == ERRORS_4XX and errors4["current"] == ERRORS_4XX[-1]
    assert [p["value"] for p in errors5["points"]] == ERRORS_5XX and errors5["current"] == ERRORS_5XX[-1]
    assert errors4["stat"] == "Sum" and errors4["unit"] == "Count"

    cpu = metrics[f"{naming.db_instance_id(ENV)} CPUUtilization"]
    assert cpu["unit"] == "Percent" and cpu["stat"] == "Average"
    stamps = seeded["cpu_stamps"]
    if seeded["db_exists"]:  # the local cloud measures the real server too: CloudWatch's own average is the truth
        cw = target.client("cloudwatch")
        answer = cw.get_metric_statistics(
            Namespace="AWS/RDS",
            MetricName="CPUUtilization",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": naming.db_instance_id(ENV)}],
            StartTime=stamps[0],
            EndTime=stamps[-1] + timedelta(minutes=1),
            Period=60,
            Statistics=["Average"],
        )
        expected = {p["Timestamp"].astimezone(UTC): p["Average"] for p in answer["Datapoints"]}
        assert values_at(cpu, stamps) == pytest.approx([expected[t] for t in stamps])
    else:
        assert values_at(cpu, stamps) == CPU
        assert cpu["current"] == CPU[-1]

    states = {a["name"]: a["state"] for a in snapshot["alarms"]}
    assert states[BREACH] == "ALARM" and states[CALM] == "OK"
    assert all(a["name"].startswith(f"rentaliq-{ENV}-") for a in snapshot["alarms"])
    assert snapshot["instances"][0] == naming.db_instance_id(ENV) and snapshot["buckets"] == [bucket]


def get_metric_data_calls(target, window: timedelta) -> tuple[Any, list[str]]:
    calls: list[str] = []
    cw = target.client("cloudwatch")

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    cw.meta.events.register("before-call.cloudwatch", count)
    try:
        snapshot = read_snapshot(target, ENV, window, history=False)
    finally:
        cw.meta.events.unregister("before-call.cloudwatch", count)
    return snapshot, calls


def test_every_series_is_read_in_one_batched_request_per_time_range(target, seeded) -> None:
    # a short window: one request for the window, one for S3's daily storage metrics over the last days
    snapshot, calls = get_metric_data_calls(target, timedelta(minutes=15))
    assert len(snapshot.series) >= 13  # nine RDS metrics, two storage and two request metrics of the bucket
    assert calls.count("GetMetricData") == 2, calls
    daily = [s for s in snapshot.series if s.key.name in ("BucketSizeBytes", "NumberOfObjects")]
    assert daily and all(s.period_s == 86400 for s in daily)
    assert all(s.period_s == 60 for s in snapshot.series if s not in daily)
    # a window longer than the daily lookback: everything in one request, each query with its own period
    snapshot, calls = get_metric_data_calls(target, timedelta(days=5))
    assert calls.count("GetMetricData") == 1, calls
    bucket = naming.files_bucket(ENV)
    errors = next(s for s in snapshot.series if s.key.label == f"{bucket} 4xxErrors (FilterId={FILTER})")
    assert sum(errors.values) == sum(ERRORS_4XX)  # coarser periods, the same errors


def test_top_once_renders_the_table_with_alarm_states(cloud_env, seeded) -> None:
    out = ok(cli(cloud_env, "top", ENV, "--once", "--minutes", "15")).stdout
    lines = out.splitlines()
    breach = next(line for line in lines if BREACH in line)
    calm = next(line for line in lines if CALM in line)
    assert "ALARM" in breach and "OK" in calm and "ALARM" not in calm
    row = next(line for line in lines if f"5xxErrors (FilterId={FILTER})" in line)
    assert row.split("│")[3].strip() == "2"  # current value
    assert any(block in row for block in "▁▂▃▄▅▆▇█")  # sparkline
    for metric in ("CPUUtilization", "FreeStorageSpace", "ReadLatency", "NetworkTransmitThroughput", "BucketSizeBytes"):
        assert metric in out


def test_top_live_view_refreshes_until_ctrl_c_and_exits_0(cloud_env, seeded) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rentaliq.cli", "top", ENV, "--interval", "1", "--minutes", "15"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cloud_env,
    )
    time.sleep(4)  # start-up plus a few refreshes
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err and BREACH in out


def test_bad_options_are_one_line_errors(cloud_env, tmp_path) -> None:
    assert "--json needs --once" in one_line_error(cli(cloud_env, "top", ENV, "--json"), alone=True)
    assert "--minutes 0" in one_line_error(cli(cloud_env, "top", ENV, "--once", "--minutes", "0"), alone=True)
    assert "--period 90" in one_line_error(cli(cloud_env, "top", ENV, "--once", "--period", "90"), alone=True)
    assert "--hours 0" in one_line_error(cli(cloud_env, "report", ENV, "--html", str(tmp_path / "r.html"), "--hours", "0"), alone=True)
    assert "does not exist" in one_line_error(cli(cloud_env, "report", ENV, "--html", str(tmp_path / "missing" / "r.html")), alone=True)
    assert "staging" in one_line_error(cli(cloud_env, "top", "staging", "--once"), alone=True)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not found:
        pytest.fail("Chromium is not installed: `apt-get install -y chromium` (Debian's package; .ci/run installs it)", pytrace=False)
    return found


def open_in_chromium(page_file: Path) -> dict[str, Any]:
    """Render the page in headless Chromium; return its console messages, page errors, requests and DOM facts."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: install the dev extra (`pip install -e '.[dev]'`)", pytrace=False)
    console: list[str] = []
    requests: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rentaliq-chromium-") as profile, sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(profile, executable_path=chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            dom = page.evaluate(
                """() => ({
                    svgs: [...document.querySelectorAll('svg.plot')].map(s => ({metric: s.dataset.metric, points: +s.dataset.points,
                        lines: s.querySelectorAll('polyline, circle').length, width: s.getBoundingClientRect().width})),
                    history: [...document.querySelectorAll('#history tbody tr')].map(r => [...r.cells].map(c => c.textContent)),
                    alarms: [...document.querySelectorAll('#alarms tbody tr')].map(r => [...r.cells].map(c => c.textContent)),
                    spec: Object.fromEntries([...document.querySelectorAll('#spec tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent])),
                    scripts: document.querySelectorAll('script').length,
                    title: document.title,
                })"""
            )
        finally:
            browser.close()
    return {"console": console, "requests": requests, **dom}


def test_report_html_renders_in_chromium_with_plots_history_and_spec(cloud_env, seeded, tmp_path) -> None:
    page_file = tmp_path / "lab report.html"
    summary = json.loads(ok(cli(cloud_env, "report", ENV, "--html", str(page_file), "--hours", "1", "--json")).stdout)
    source = page_file.read_text(encoding="utf-8")
    assert "http://" not in source and "https://" not in source and "<script" not in source  # self-contained

    seen = open_in_chromium(page_file)
    assert seen["console"] == []
    assert seen["requests"] == [page_file.as_uri()]  # nothing fetched but the page itself
    assert seen["scripts"] == 0 and "lab" in seen["title"]

    plots = {s["metric"]: s for s in seen["svgs"]}
    assert len(seen["svgs"]) == summary["plots"] >= 3
    assert all(s["points"] > 0 and s["lines"] > 0 and s["width"] > 100 for s in seen["svgs"])  # a plot per metric with data, drawn
    bucket = naming.files_bucket(ENV)
    assert plots[f"{bucket} 4xxErrors (FilterId={FILTER})"]["points"] == len(ERRORS_4XX)
    assert plots[f"{bucket} 5xxErrors (FilterId={FILTER})"]["points"] == len(ERRORS_5XX)
    assert f"{naming.db_instance_id(ENV)} CPUUtilization" in plots

    alarm_rows = {row[0]: row for row in seen["alarms"]}
    assert alarm_rows[BREACH][1] == "ALARM" and alarm_rows[CALM][1] == "OK"
    assert alarm_rows[BREACH][5] == "views test: <ALARM> & co"  # escaped in the source, shown as written

    from rentaliq.environments import load_spec

    spec = load_spec(ENV)
    assert seen["spec"]["database.instance_class"] == spec.database.instance_class
    assert seen["spec"]["database.backup_retention_days"] == str(spec.database.backup_retention_days)
    assert seen["spec"]["monitoring.connections_threshold"] == str(spec.monitoring.connections_threshold)
    assert seen["spec"]["database.multi_az"] == ("yes" if spec.database.multi_az else "no")
    thresholds = {k.split(" ")[1]: v for k, v in seen["spec"].items() if k.startswith("alarm ")}
    assert thresholds[naming.alarm(ENV, "high-connections")] == str(spec.monitoring.connections_threshold)
    assert [p.name for p in tmp_path.iterdir()] == [page_file.name]  # the page, and no temp file beside it

    # last: the history needs DescribeAlarmHistory, which the local cloud's alarms add to moto
    history_alarms = {row[1] for row in seen["history"]}
    assert {BREACH, CALM} <= history_alarms, seen["history"]
    assert any(row[1] == BREACH and row[2] == "StateUpdate" and "ALARM" in row[3] for row in seen["history"]), seen["history"]
