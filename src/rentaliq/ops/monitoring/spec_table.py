"""The spec table of the report: every value of the env spec that monitoring is about, beside the live value.

Read from the spec models field by field, so a threshold added to the spec appears here without a change; the
live column comes from the instance DescribeDBInstances reports (storage autoscaling or a scale-up make the
live value differ from the spec's, and that difference is what a reader of the report wants to see).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from rentaliq import naming
from rentaliq.contract import ALARMS
from rentaliq.ops.monitoring.catalog import UNITS
from rentaliq.ops.monitoring.models import AlarmView
from rentaliq.ops.monitoring.units import show as show_value
from rentaliq.spec import EnvironmentSpec

# spec field (section.name) -> DescribeDBInstances key of the same setting
LIVE_KEYS = {
    "database.instance_class": "DBInstanceClass",
    "database.allocated_storage_gib": "AllocatedStorage",
    "database.max_allocated_storage_gib": "MaxAllocatedStorage",
    "database.multi_az": "MultiAZ",
    "database.backup_retention_days": "BackupRetentionPeriod",
    "database.backup_window": "PreferredBackupWindow",
    "database.maintenance_window": "PreferredMaintenanceWindow",
    "database.performance_insights": "PerformanceInsightsEnabled",
    "database.enhanced_monitoring_interval_s": "MonitoringInterval",
    "database.deletion_protection": "DeletionProtection",
    "database.engine_version": "EngineVersion",
    "database.storage_type": "StorageType",
    "database.port": "DbInstancePort",
}
SECTIONS = ("database", "storage", "monitoring", "recovery")


@dataclass(frozen=True)
class SpecRow:
    field: str
    """``database.instance_class``"""
    spec: str
    live: str | None
    """The deployed value, None when the API has no such value (or the instance does not exist)."""

    @property
    def differs(self) -> bool:
        return self.live is not None and self.live != self.spec


def show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple | list):
        return ", ".join(show(v) for v in value) or "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fields(prefix: str, model: BaseModel) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found += _fields(f"{prefix}.{name}", value)
        else:
            found.append((f"{prefix}.{name}", value))
    return found


def _live(field: str, spec_value: Any, live: Mapping[str, Any] | None) -> str | None:
    key = LIVE_KEYS.get(field)
    if live is None or key is None or key not in live:
        return None
    value = live[key]
    if field == "database.engine_version" and isinstance(spec_value, str) and str(value).startswith(spec_value + "."):
        return spec_value  # "15" in the spec means any 15.x
    return show(value)


def _threshold(value: float, metric: str) -> str:
    unit = UNITS.get(metric, "")
    return show_value(value, unit) if unit else show(value)


def alarm_rows(spec: EnvironmentSpec, alarms: tuple[AlarmView, ...]) -> list[SpecRow]:
    """Each alarm the stacks build from the spec: its threshold in the spec beside the live alarm's."""
    if not spec.monitoring.alarms:
        return []
    live = {a.name: a for a in alarms}
    out = []
    for alarm in ALARMS:
        name = naming.alarm(spec.name.value, alarm.what)
        found = live.get(name)
        deployed = _threshold(found.threshold, alarm.metric) if found is not None and found.threshold is not None else None
        out.append(SpecRow(f"alarm {name} ({alarm.metric} {alarm.comparison})", _threshold(alarm.threshold(spec.monitoring), alarm.metric), deployed))
    return out


def rows(spec: EnvironmentSpec, live: Mapping[str, Any] | None, alarms: tuple[AlarmView, ...] = ()) -> tuple[SpecRow, ...]:
    """The spec's database, storage, monitoring and recovery values, each with its live counterpart if any, then
    the alarm thresholds with the deployed alarms'."""
    out: list[SpecRow] = []
    for section in SECTIONS:
        for field, value in _fields(section, getattr(spec, section)):
            out.append(SpecRow(field, show(value), _live(field, value, live)))
    return tuple(out + alarm_rows(spec, alarms))
