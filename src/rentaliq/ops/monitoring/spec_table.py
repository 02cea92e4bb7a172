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


def rows(spec: EnvironmentSpec, live: Mapping[str, Any] | None) -> tuple[SpecRow, ...]:
    """The spec's database, storage, monitoring and recovery values, each with its live counterpart if any."""
    out: list[SpecRow] = []
    for section in SECTIONS:
        for field, value in _fields(section, getattr(spec, section)):
            out.append(SpecRow(field, show(value), _live(field, value, live)))
    return tuple(out)
