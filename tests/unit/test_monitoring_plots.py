"""The pictures of `rentaliq top` and `rentaliq report`: SVG plots (scales, empty and one-point series, escaping),
sparklines, units, the report page's escaping and the spec table. Pure functions: no cloud needed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from rentaliq.environments import load_spec
from rentaliq.ops.monitoring import catalog, html_report, spec_table
from rentaliq.ops.monitoring.models import AlarmView, HistoryEntry, MetricKey, Series, Snapshot
from rentaliq.ops.monitoring.reader import aligned_window, choose_period
from rentaliq.ops.monitoring.sparkline import BLOCKS, sparkline
from rentaliq.ops.monitoring.svg_plot import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, nice_ticks, plot
from rentaliq.ops.monitoring.units import scale, show

START = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=3)
INNER_W, INNER_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def parsed(svg: str) -> ET.Element:
    """The plot must be well-formed XML (inline SVG is parsed by the browser's HTML parser, but XML is stricter)."""
    return ET.fromstring(svg)


def polyline_points(root: ET.Element) -> list[tuple[float, float]]:
    line = root.find("polyline")
    assert line is not None
    return [tuple(float(c) for c in pair.split(",")) for pair in line.attrib["points"].split()]  # type: ignore[misc]


def texts(root: ET.Element, css_class: str) -> list[str]:
    return [t.text or "" for t in root.iter("text") if t.attrib.get("class") == css_class]


def test_points_land_where_their_time_and_value_say() -> None:
    stamps = [START, START + timedelta(minutes=90), END]
    root = parsed(plot("cpu", "Percent", stamps, [0.0, 50.0, 100.0], START, END))
    (x0, y0), (x1, y1), (x2, y2) = polyline_points(root)
    assert (x0, x1, x2) == pytest.approx((LEFT, LEFT + INNER_W / 2, LEFT + INNER_W), abs=0.1)
    # the value axis runs from 0 at the bottom to 100 at the top
    assert (y0, y1, y2) == pytest.approx((TOP + INNER_H, TOP + INNER_H / 2, TOP), abs=0.1)
    assert texts(root, "tick")[:5] == ["0", "25", "50", "75", "100"]
    assert texts(root, "plot-unit") == ["%"]


def test_bytes_are_plotted_in_gib_with_the_unit_on_the_axis() -> None:
    gib = 1024**3
    root = parsed(plot("free storage", "Bytes", [START, END], [10 * gib, 20 * gib], START, END))
    assert texts(root, "plot-unit") == ["GiB"]
    ticks = [float(t) for t in texts(root, "tick") if ":" not in t]
    assert min(ticks) == 0 and 20 <= max(ticks) <= 25


def test_time_axis_has_utc_labels_on_round_boundaries() -> None:
    root = parsed(plot("cpu", "Percent", [START], [1.0], START, END))
    labels = [t for t in texts(root, "tick") if ":" in t]
    assert labels[0] == "01:00" and labels[-1] == "04:00" and len(labels) >= 3
    assert texts(root, "axis-label") == ["time (UTC)"]


def test_a_window_longer_than_a_day_labels_dates() -> None:
    root = parsed(plot("cpu", "Percent", [START], [1.0], START, START + timedelta(days=3)))
    labels = [t for t in texts(root, "tick") if ":" in t]
    assert all(len(label) == len("11-30 00:00") for label in labels), labels


def test_an_empty_series_says_no_data_and_draws_no_line() -> None:
    root = parsed(plot("cpu", "Percent", [], [], START, END))
    assert texts(root, "no-data") == ["no data"]
    assert root.find("polyline") is None and root.find("circle") is None
    assert root.attrib["data-points"] == "0"


def test_one_point_is_a_dot_inside_the_plot_area() -> None:
    root = parsed(plot("connections", "Count", [START + timedelta(hours=1)], [42.0], START, END))
    assert root.find("polyline") is None
    (dot,) = root.findall("circle")
    cx, cy = float(dot.attrib["cx"]), float(dot.attrib["cy"])
    assert LEFT < cx < LEFT + INNER_W and TOP <= cy <= TOP + INNER_H


def test_names_are_escaped() -> None:
    name = 'rentaliq-lab-db <script>alert("x")</script> & co'
    svg = plot(name, "Percent", [START], [1.0], START, END)
    assert "<script" not in svg
    root = parsed(svg)
    assert texts(root, "plot-title") == [name]
    assert root.attrib["data-metric"] == name


def test_a_flat_zero_series_has_an_axis_from_zero_up() -> None:
    assert nice_ticks(0, 0)[0] == 0 and nice_ticks(0, 0)[-1] >= 1


def test_alarm_thresholds_are_shown_in_the_metric_unit() -> None:
    assert html_report.show_threshold(2147483648.0, "AWS/RDS FreeStorageSpace") == "2147483648 (2 GiB)"
    assert html_report.show_threshold(80.0, "AWS/RDS CPUUtilization") == "80"
    assert html_report.show_threshold(0.02, "AWS/RDS ReadLatency") == "0.02 (20 ms)"
    assert html_report.show_threshold(None) == ""


@pytest.mark.parametrize(("low", "high"), [(0, 100), (0, 7), (0.001, 0.004), (5, 5), (-3, 12), (0, 0)])
def test_ticks_cover_the_range_with_round_steps(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and len(ticks) >= 2
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1


def test_sparkline_spans_lowest_to_highest_block() -> None:
    line = sparkline([1, 2, 3, 4, 5, 6, 7, 8])
    assert line == BLOCKS
    assert sparkline([10, 0, 10]) == BLOCKS[-1] + BLOCKS[0] + BLOCKS[-1]


def test_sparkline_keeps_the_last_points_and_handles_flat_and_empty() -> None:
    assert sparkline(list(range(100)), width=10) == sparkline(list(range(90, 100)))
    assert len(sparkline(list(range(100)), width=10)) == 10
    assert sparkline([3.0, 3.0, 3.0]) == BLOCKS[0] * 3
    assert sparkline([]) == "" and sparkline([1.0], width=0) == ""


def test_units_people_read() -> None:
    assert show(0.0042, "Seconds") == "4.2 ms"
    assert show(55.5, "Percent") == "55.5%"
    assert show(3 * 1024**3, "Bytes") == "3 GiB"
    assert show(None, "Count") == "—"
    assert scale("Bytes/Second", [2048.0]) == (1024.0, "KiB/s")


def snapshot_with(name: str) -> Snapshot:
    key = MetricKey("AWS/RDS", "CPUUtilization", (("DBInstanceIdentifier", name),), "Average", "Percent")
    return Snapshot(
        env="lab",
        start=START,
        end=END,
        period_s=60,
        instances=(name,),
        buckets=("rentaliq-lab-files",),
        series=(Series(key, (START + timedelta(minutes=5),), (12.0,)), Series(key, (), ())),
        alarms=(AlarmView(name, "ALARM", "<b>threshold</b> crossed", START, "AWS/RDS CPUUtilization", "GreaterThanThreshold", 80.0),),
        history=(HistoryEntry(START, name, "StateUpdate", "Alarm updated from OK to <ALARM>"),),
        notes=("note with <tag>",),
    )


def test_report_page_escapes_everything_and_loads_nothing() -> None:
    page = html_report.render(snapshot_with('x"><img src=y>'), (), START)
    assert "<img" not in page and "<b>" not in page and "<ALARM>" not in page and "<tag>" not in page
    assert "&lt;ALARM&gt;" in page and "&lt;b&gt;threshold&lt;/b&gt;" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "default-src 'none'" in page
    assert page.count("<svg") == 1  # one plot: the series with data; the empty one is listed as without data


def test_spec_table_shows_spec_values_and_flags_live_differences() -> None:
    spec = load_spec("lab")
    live = {"DBInstanceClass": "db.t3.micro", "AllocatedStorage": 25, "MultiAZ": False, "BackupRetentionPeriod": 3, "EngineVersion": "15.4"}
    rows = {r.field: r for r in spec_table.rows(spec, live)}
    assert rows["database.instance_class"].spec == "db.t3.micro" and not rows["database.instance_class"].differs
    assert rows["database.allocated_storage_gib"].spec == str(spec.database.allocated_storage_gib)
    assert rows["database.allocated_storage_gib"].live == "25" and rows["database.allocated_storage_gib"].differs
    assert rows["database.engine_version"].live == "15" and not rows["database.engine_version"].differs
    assert rows["monitoring.connections_threshold"].spec == str(spec.monitoring.connections_threshold)
    assert rows["monitoring.connections_threshold"].live is None
    assert all(r.live is None for r in spec_table.rows(spec, None))


def test_spec_table_compares_alarm_thresholds_with_the_deployed_alarms() -> None:
    spec = load_spec("lab")
    deployed = (AlarmView("rentaliq-lab-db-high-connections", "OK", "", None, "AWS/RDS DatabaseConnections", "GreaterThanThreshold", 75.0),)
    rows = {r.field.split(" ")[1]: r for r in spec_table.rows(spec, None, deployed) if r.field.startswith("alarm ")}
    connections = rows["rentaliq-lab-db-high-connections"]
    assert connections.spec == str(spec.monitoring.connections_threshold) and connections.live == "75" and connections.differs
    storage = rows["rentaliq-lab-db-low-free-storage"]
    assert storage.spec == f"{spec.monitoring.free_storage_threshold_gib:g} GiB" and storage.live is None  # not deployed: no live value


def test_replicas_get_replica_lag_and_the_primary_does_not() -> None:
    found = catalog.Resources(("rentaliq-prod-db", "rentaliq-prod-db-replica"), ("rentaliq-prod-db-replica",), ("rentaliq-prod-files",), ())
    keys = catalog.rds_keys(found)
    lag = [k.resource for k in keys if k.name == "ReplicaLag"]
    assert lag == ["rentaliq-prod-db-replica"]
    per_instance = {r: sorted(k.name for k in keys if k.resource == r) for r in found.instances}
    assert len(per_instance["rentaliq-prod-db"]) == len(catalog.RDS_METRICS) == 9
    assert set(per_instance["rentaliq-prod-db-replica"]) - set(per_instance["rentaliq-prod-db"]) == {"ReplicaLag"}


def test_prod_watches_its_access_logs_bucket_too() -> None:
    assert catalog.env_buckets("prod") == ("rentaliq-prod-files", "rentaliq-access-logs")
    assert catalog.env_buckets("lab") == ("rentaliq-lab-files",)


@pytest.mark.parametrize(("window", "period"), [(timedelta(minutes=30), 60), (timedelta(hours=3), 60), (timedelta(hours=24), 720), (timedelta(days=7), 5040)])
def test_period_is_a_multiple_of_a_minute_giving_about_120_points(window: timedelta, period: int) -> None:
    assert choose_period(window) == period


def test_window_is_aligned_on_period_boundaries_and_covers_now() -> None:
    now = datetime(2026, 11, 30, 4, 17, 42, tzinfo=UTC)
    start, end = aligned_window(now, timedelta(minutes=30), 60)
    assert end == datetime(2026, 11, 30, 4, 18, tzinfo=UTC) and end > now
    assert start == datetime(2026, 11, 30, 3, 47, tzinfo=UTC)
    assert int(start.timestamp()) % 60 == 0


def test_tick_labels_keep_three_significant_digits_so_neighbours_never_read_the_same():
    from rentaliq.ops.monitoring.svg_plot import nice_ticks
    from rentaliq.ops.monitoring.units import number

    labels = [number(t) for t in nice_ticks(0, 0.02)]
    assert len(set(labels)) == len(labels), labels
    assert (number(0.015), number(1.25), number(12.34), number(1234.5), number(0.0004)) == ("0.015", "1.25", "12.3", "1,234", "0.0004")
