"""Lines for what watches the environment: alarms, dashboards, flow logs, log groups, the alerts topic and its key.

Per-account free tiers (10 alarms, 3 dashboards, 5 GB of logs, 1 M SNS requests, 20,000 KMS requests) are not
subtracted: the three environments may share an account, and subtracting them per environment would count them
three times.
"""

from __future__ import annotations

from typing import Any

from rentaliq.cost.lines import Line, PricingContext, builds, props, refers_to

HIGH_RESOLUTION_BELOW_S = 60  # CloudWatch: an alarm with a period under 60 s is a high-resolution alarm
NEVER_EXPIRES_MONTHS = 12  # a log group with no retention is priced as holding a year of logs


def _metric_count(p: dict[str, Any]) -> int:
    """Metrics an alarm evaluates: one, or each metric of a metric-math alarm (expressions are not metrics)."""
    metrics = p.get("Metrics")
    if isinstance(metrics, list):
        return sum(1 for m in metrics if isinstance(m, dict) and "MetricStat" in m) or 1
    return 1


@builds("AWS::CloudWatch::Alarm")
def alarm(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    p = props(resource)
    periods = [p.get("Period", 60)] + [m["MetricStat"].get("Period", 60) for m in p.get("Metrics") or [] if isinstance(m, dict) and "MetricStat" in m]
    high_resolution = min(int(x) for x in periods) < HIGH_RESOLUTION_BELOW_S
    kind = "high-resolution" if high_resolution else "standard"
    key = "cloudwatch.alarm.high_resolution" if high_resolution else "cloudwatch.alarm.standard"
    return [ctx.line(lid, f"Alarm ({kind}, period {min(int(x) for x in periods)} s)", _metric_count(p), key)]


@builds("AWS::CloudWatch::Dashboard")
def dashboard(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    return [ctx.line(lid, "Dashboard", 1, "cloudwatch.dashboard")]


@builds("AWS::EC2::FlowLog")
def flow_log(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    p = props(resource)
    if p.get("LogDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
        destination = p.get("LogDestinationType")  # S3 or Firehose delivery: no price in the table yet, so an error names it
        return [ctx.line(lid, f"Flow logs to {destination}", 1, f"vpc.flow_logs.{destination}")]
    return [ctx.line(lid, "Flow log ingestion (vended logs)", ctx.usage.flow_log_gb, "cloudwatch.logs.vended_ingest", usage=("flow_log_gb",))]


@builds("AWS::Logs::LogGroup")
def log_group(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    """Storage of what flows in: a flow log's group holds ``retention`` worth of ``flow_log_gb`` (stored uncompressed
    here: an upper bound, since CloudWatch bills compressed bytes)."""
    retention_days = props(resource).get("RetentionInDays")
    months = int(retention_days) / 30 if retention_days else NEVER_EXPIRES_MONTHS
    feeds_flow_log = any(refers_to(props(r), lid) for _, r in ctx.of_type("AWS::EC2::FlowLog"))
    monthly_gb, usage = (ctx.usage.flow_log_gb, ("flow_log_gb",)) if feeds_flow_log else (0.0, ())
    kept = f"{retention_days} days" if retention_days else "never expires: a year"
    return [ctx.line(lid, f"Log storage ({kept} of logs)", monthly_gb * months, "cloudwatch.logs.storage", usage=usage)]


@builds("AWS::SNS::Topic")
def topic(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    publishes = ctx.usage.sns_publishes
    lines = [ctx.line(lid, "Publish requests", publishes / 1_000_000, "sns.publish", usage=("sns_publishes",))]
    subscriptions = [props(r) for _, r in ctx.of_type("AWS::SNS::Subscription") if refers_to(props(r).get("TopicArn"), lid)]
    for protocol, key, per in (("email", "sns.delivery.email", 100_000), ("https", "sns.delivery.https", 1_000_000), ("http", "sns.delivery.https", 1_000_000)):
        count = sum(1 for s in subscriptions if s.get("Protocol") == protocol)
        if count:
            lines.append(ctx.line(lid, f"Deliveries to {count} {protocol} subscription(s)", publishes * count / per, key, usage=("sns_publishes",)))
    return lines


@builds("AWS::KMS::Key")
def kms_key(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    return ctx.monthly_plus_calls(lid, ("Customer managed key", "kms.key"), ("Requests", "kms.request"), "kms_requests")
