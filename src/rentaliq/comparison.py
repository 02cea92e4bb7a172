"""The spec's "Environment Comparison" table, generated from the environment specs (never typed twice)."""

from __future__ import annotations

from collections.abc import Callable

from rentaliq.environments import EnvironmentSpec


def _yes_no(value: bool) -> str:
    return "Yes" if value else "No"


def _monitoring(spec: EnvironmentSpec) -> str:
    interval = spec.database.enhanced_monitoring_interval_s
    return f"Yes ({interval}s)" if interval else "No"


# (row label as the spec prints it, how to render a spec's value for it)
ROWS: tuple[tuple[str, Callable[[EnvironmentSpec], str]], ...] = (
    ("RDS Instance Class", lambda s: s.database.instance_class),
    ("Storage", lambda s: f"{s.database.allocated_storage_gib} GB"),
    ("Max Storage", lambda s: f"{s.database.max_allocated_storage_gib} GB"),
    ("Multi-AZ", lambda s: _yes_no(s.database.multi_az)),
    ("Backup Retention", lambda s: f"{s.database.backup_retention_days} days"),
    ("Performance Insights", lambda s: _yes_no(s.database.performance_insights)),
    ("Enhanced Monitoring", _monitoring),
    ("Deletion Protection", lambda s: _yes_no(s.database.deletion_protection)),
    ("Final Snapshot", lambda s: "Create" if s.database.final_snapshot else "Skip"),
    ("CloudWatch Logs", lambda s: _yes_no(bool(s.database.cloudwatch_log_exports))),
    ("S3 Versioning", lambda s: _yes_no(s.storage.versioning)),
    ("S3 Access Logs", lambda s: _yes_no(s.storage.access_logs)),
    ("S3 Intelligent Tier", lambda s: _yes_no(s.storage.intelligent_tiering)),
    ("Secret Recovery", lambda s: f"{s.secrets.recovery_window_days} days"),
    ("Estimated Cost/Month", lambda s: f"~${s.cost.monthly_usd_low:g}-{s.cost.monthly_usd_high:g}"),
)


def comparison_table(specs: list[EnvironmentSpec]) -> list[tuple[str, dict[str, str]]]:
    """Rows of (feature, {env: rendered value}), in the spec's order."""
    return [(label, {spec.name.value: render(spec) for spec in specs}) for label, render in ROWS]
