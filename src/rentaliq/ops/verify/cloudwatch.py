"""CloudWatch area: the database alarms of contract.ALARMS (the table the stacks build them from), or their absence."""

from __future__ import annotations

from rentaliq import naming
from rentaliq.contract import ALARM_DIMENSION, ALARM_EVALUATION_PERIODS, ALARM_NAMESPACE, ALARMS
from rentaliq.ops.verify.checks import CLOUDWATCH
from rentaliq.ops.verify.reader import Audit


def check(audit: Audit) -> None:
    env, mon, add = audit.env, audit.spec.monitoring, audit.record.add
    names = [naming.alarm(env, a.what) for a in ALARMS]
    alarms = audit.read.paginate(CLOUDWATCH, "alarms readable", names, "cloudwatch", "describe_alarms", "MetricAlarms", AlarmNames=names)
    by_name = {a["AlarmName"]: a for a in alarms}
    db_id = naming.db_instance_id(env)
    for spec_alarm, name in zip(ALARMS, names, strict=True):
        alarm = by_name.get(name)
        if not mon.alarms:
            add(CLOUDWATCH, f"{name} absent", None, alarm["AlarmName"] if alarm else None, detail="monitoring.alarms is off")
            continue
        exists = add(CLOUDWATCH, f"{name} exists", name, alarm["AlarmName"] if alarm else None)
        if alarm is None or not exists:
            continue
        add(CLOUDWATCH, f"{name} metric", f"{ALARM_NAMESPACE} {spec_alarm.metric}", f"{alarm.get('Namespace')} {alarm.get('MetricName')}")
        add(CLOUDWATCH, f"{name} statistic", spec_alarm.statistic, alarm.get("Statistic"))
        add(CLOUDWATCH, f"{name} period (s)", mon.cpu_period_s, alarm.get("Period"))
        threshold = spec_alarm.threshold(mon)
        add(
            CLOUDWATCH,
            f"{name} threshold",
            threshold,
            alarm.get("Threshold"),
            ok=alarm.get("Threshold") is not None and abs(float(alarm["Threshold"]) - float(threshold)) < 1e-6,
        )
        add(CLOUDWATCH, f"{name} comparison", spec_alarm.comparison, alarm.get("ComparisonOperator"))
        add(CLOUDWATCH, f"{name} evaluation periods", ALARM_EVALUATION_PERIODS, alarm.get("EvaluationPeriods"))
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        add(CLOUDWATCH, f"{name} dimension", {ALARM_DIMENSION: db_id}, dims)
