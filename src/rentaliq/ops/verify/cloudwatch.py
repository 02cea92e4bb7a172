"""CloudWatch area: the alarms of contract.ALARMS (the table the stacks build them from) with their thresholds,
periods, dimensions, missing-data treatment and actions, or their absence; and the dashboard's metrics and alarms."""

from __future__ import annotations

import json
from typing import Any

from rentaliq import naming
from rentaliq.contract import ALARM_DIMENSION, ALARM_EVALUATION_PERIODS, ALARMS, RDS_METRICS, REQUEST_METRICS_FILTER_ID, S3_REQUEST_METRICS, S3_STORAGE_METRICS
from rentaliq.ops.verify import nat
from rentaliq.ops.verify.checks import CLOUDWATCH
from rentaliq.ops.verify.reader import Audit


def check(audit: Audit, topic_arn: str | None) -> None:
    env, mon, add = audit.env, audit.spec.monitoring, audit.record.add
    names = [a.name(env) for a in ALARMS]
    alarms = audit.read.paginate(CLOUDWATCH, "alarms readable", names, "cloudwatch", "describe_alarms", "MetricAlarms", AlarmNames=names)
    by_name = {a["AlarmName"]: a for a in alarms}
    arns = []
    for spec_alarm, name in zip(ALARMS, names, strict=True):
        alarm = by_name.get(name)
        if not (mon.alarms and spec_alarm.enabled(mon)):
            why = "monitoring.alarms is off" if not mon.alarms else "monitoring.request_metrics is off"
            add(CLOUDWATCH, f"{name} absent", None, alarm["AlarmName"] if alarm else None, detail=why)
            continue
        exists = add(CLOUDWATCH, f"{name} exists", name, alarm["AlarmName"] if alarm else None)
        if alarm is None or not exists:
            continue
        arns.append(alarm["AlarmArn"])
        add(CLOUDWATCH, f"{name} metric", f"{spec_alarm.namespace} {spec_alarm.metric}", f"{alarm.get('Namespace')} {alarm.get('MetricName')}")
        add(CLOUDWATCH, f"{name} statistic", spec_alarm.statistic, alarm.get("Statistic"))
        add(CLOUDWATCH, f"{name} period (s)", spec_alarm.period(mon), alarm.get("Period"))
        threshold = spec_alarm.threshold(mon)
        live = alarm.get("Threshold")
        add(CLOUDWATCH, f"{name} threshold", threshold, live, ok=live is not None and abs(float(live) - float(threshold)) < 1e-6)
        add(CLOUDWATCH, f"{name} comparison", spec_alarm.comparison, alarm.get("ComparisonOperator"))
        add(CLOUDWATCH, f"{name} evaluation periods", ALARM_EVALUATION_PERIODS, alarm.get("EvaluationPeriods"))
        add(CLOUDWATCH, f"{name} missing data", spec_alarm.treat_missing_data, alarm.get("TreatMissingData", "missing"))
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        add(CLOUDWATCH, f"{name} dimensions", spec_alarm.dimensions(env), dims)
        add(CLOUDWATCH, f"{name} actions enabled", True, alarm.get("ActionsEnabled"))
        expected_actions = [topic_arn] if topic_arn else ["the alerts topic"]
        add(CLOUDWATCH, f"{name} alarm actions", expected_actions, alarm.get("AlarmActions"))
        add(CLOUDWATCH, f"{name} OK actions", expected_actions, alarm.get("OKActions"))
    with audit.read.section(CLOUDWATCH, "dashboard"):
        _dashboard(audit, sorted(arns + nat.health_alarm_arns(audit)))  # the NAT instances' alarms are shown too


def expected_dashboard_metrics(audit: Audit) -> list[str]:
    """``namespace metric dimension=value ...`` for every metric the dashboard must graph."""
    env = audit.env
    db, bucket = naming.db_instance_id(env), naming.files_bucket(env)
    metrics = [f"AWS/RDS {m} {ALARM_DIMENSION}={db}" for m in RDS_METRICS]
    metrics += [f"AWS/S3 {m} BucketName={bucket} StorageType={storage}" for m, (_unit, storage) in S3_STORAGE_METRICS.items()]
    if audit.spec.monitoring.request_metrics:
        metrics += [f"AWS/S3 {m} BucketName={bucket} FilterId={REQUEST_METRICS_FILTER_ID}" for m in S3_REQUEST_METRICS]
    return sorted(metrics)


def dashboard_metrics(body: dict[str, Any]) -> list[str]:
    """The metrics a dashboard body graphs, as ``namespace metric dimension=value ...`` (CloudWatch's metric arrays:
    namespace, name, then dimension name/value pairs, then an optional rendering-options object)."""
    found = set()
    for widget in body.get("widgets", []):
        for metric in widget.get("properties", {}).get("metrics", []) or []:
            parts = [p for p in metric if not isinstance(p, dict)]
            if len(parts) >= 2:
                pairs = sorted(f"{parts[i]}={parts[i + 1]}" for i in range(2, len(parts) - 1, 2))
                found.add(" ".join([str(parts[0]), str(parts[1]), *pairs]))
    return sorted(found)


def _dashboard(audit: Audit, alarm_arns: list[str]) -> None:
    name, add = naming.dashboard(audit.env), audit.record.add
    answer = audit.read.call(CLOUDWATCH, f"dashboard {name} exists", name, "cloudwatch", "get_dashboard", DashboardName=name)
    if not add(CLOUDWATCH, f"dashboard {name} exists", name, answer.get("DashboardName")):
        return
    body = json.loads(answer.get("DashboardBody") or "{}")
    expected = expected_dashboard_metrics(audit)
    graphed = dashboard_metrics(body)
    missing = sorted(set(expected) - set(graphed))
    add(
        CLOUDWATCH,
        f"dashboard {name} metrics",
        expected,
        graphed,
        ok=not missing and set(graphed) <= set(expected),
        detail=f"missing: {', '.join(missing)}" if missing else "",
    )
    shown = sorted(arn for w in body.get("widgets", []) if w.get("type") == "alarm" for arn in w.get("properties", {}).get("alarms", []))
    add(CLOUDWATCH, f"dashboard {name} alarm states", alarm_arns, shown)
