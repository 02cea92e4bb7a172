"""Lines for ``AWS::RDS::DBInstance``: instance hours, storage, backup storage, Performance Insights, Enhanced
Monitoring and exported logs, each read from the instance's template properties (not from the spec), so that the
bill follows what the stack really creates.

An off-hours schedule in the template (cost/scheduler.py) bills the hours it leaves the instance running instead
of the month's 730. Multi-AZ (a standby instance in a second zone) doubles the instance hours and the storage, as AWS bills it; backup
storage is not doubled. Storage is priced at its allocated size: autoscaling growth is usage the bill cannot know.
"""

from __future__ import annotations

from typing import Any

from rentaliq.cost.lines import Line, PricingContext, builds, props
from rentaliq.cost.scheduler import schedule_for

FREE_PI_RETENTION_DAYS = 7


def reserved_price_key(instance_class: object) -> str:
    return f"rds.reserved_1y_no_upfront.{instance_class}"


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else default


@builds("AWS::RDS::DBInstance")
def db_instance(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    p = props(resource)
    instance_class = p.get("DBInstanceClass")
    multi_az = p.get("MultiAZ") is True
    copies = 2 if multi_az else 1
    deployment = "Multi-AZ: primary + standby" if multi_az else "Single-AZ"
    storage_type = p.get("StorageType", "gp2")
    storage_gb = _int(p.get("AllocatedStorage"))
    hours: float = ctx.hours
    schedule_note = ""
    scheduled = schedule_for(lid, ctx)
    if ctx.spec.cost.reserved_instance:  # a reservation bills every hour, running or stopped
        hours_line = ctx.line(
            lid,
            f"Reserved instance hours, 1-year No Upfront ({instance_class}, {deployment})",
            hours * copies,
            reserved_price_key(instance_class),
            note="cost.reserved_instance: a 1-year reservation bought for this database",
        )
    else:
        if scheduled is not None:  # the template stops it off-hours: bill the hours its schedule leaves it running
            hours = scheduled.running_hours
            schedule_note = f", off-hours schedule: runs {hours:,.2f} of {ctx.hours} h"
        hours_line = ctx.line(lid, f"Instance hours ({instance_class}, {deployment}{schedule_note})", hours * copies, f"rds.instance.{instance_class}")
    lines = [
        hours_line,
        ctx.line(lid, f"Storage ({storage_type}, {storage_gb} GB{' x 2' if multi_az else ''})", storage_gb * copies, f"rds.storage.{storage_type}"),
    ]
    if _int(p.get("BackupRetentionPeriod"), 1) > 0:
        lines.append(ctx.line(lid, "Backup storage beyond the free 100 % of storage", ctx.usage.backup_gb, "rds.backup", usage=("backup_gb",)))
    if p.get("EnablePerformanceInsights") is True:
        retention = _int(p.get("PerformanceInsightsRetentionPeriod"), FREE_PI_RETENTION_DAYS)
        if retention != FREE_PI_RETENTION_DAYS:  # longer history is priced per vCPU; the table does not hold it yet
            lines.append(ctx.line(lid, f"Performance Insights ({retention}-day retention)", 1, "rds.performance_insights.long_term"))
        else:
            lines.append(ctx.line(lid, "Performance Insights (7-day retention: free)", 1, "rds.performance_insights.free"))
    interval = _int(p.get("MonitoringInterval"))
    if interval > 0:
        samples = hours * 3600 / interval  # Enhanced Monitoring samples only a running instance
        gb = samples * ctx.usage.enhanced_monitoring_kb / 1024**2
        lines.append(
            ctx.line(
                lid,
                f"Enhanced Monitoring log ingestion ({interval} s interval, {samples:,.0f} samples)",
                gb,
                "cloudwatch.logs.ingest",
                usage=("enhanced_monitoring_kb",),
                note="RDSOSMetrics log group",
            )
        )
    exports = p.get("EnableCloudwatchLogsExports") or []
    if exports:
        what = ", ".join(str(e) for e in exports)
        lines.append(ctx.line(lid, f"Exported logs ingestion ({what})", ctx.usage.db_log_gb, "cloudwatch.logs.ingest", usage=("db_log_gb",)))
        lines.append(
            ctx.line(
                lid,
                "Exported logs storage (one month's logs)",
                ctx.usage.db_log_gb,
                "cloudwatch.logs.storage",
                usage=("db_log_gb",),
                note="RDS creates these log groups with no expiry: storage grows each month",
            )
        )
    return lines
