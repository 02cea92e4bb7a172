"""Lines for the audit trail (``[audit]``): the CloudTrail trail, its logs bucket, the AWS Config recorder and rules.

- **Trail**: the first copy of management events in an account is free, so the trail's own line is $0, shown
  rather than hidden; a second trail in the same account (another environment turning ``[audit] cloudtrail`` on)
  would be billed per 100,000 events, which the line's note says.
- **Logs bucket** (the bucket a trail or a Config delivery channel writes to): ``trail_logs_gb`` in S3 Standard and
  ``trail_logs_put_requests`` deliveries, instead of the files bucket's assumptions.
- **Config**: ``config_items`` configuration items recorded a month, and ``config_rule_evaluations`` evaluations per
  rule a month. The delivery channel itself is free.
"""

from __future__ import annotations

from typing import Any

from rentaliq.cost.lines import Line, PricingContext, builds, props, refers_to

LOG_DELIVERY_TYPES = (("AWS::CloudTrail::Trail", "S3BucketName"), ("AWS::Config::DeliveryChannel", "S3BucketName"))


def receives_audit_logs(lid: str, ctx: PricingContext) -> bool:
    """Whether a trail or a Config delivery channel of the template delivers into bucket ``lid``."""
    return any(refers_to(props(r).get(prop), lid) for kind, prop in LOG_DELIVERY_TYPES for _, r in ctx.of_type(kind))


def trail_logs_bucket_lines(lid: str, ctx: PricingContext) -> list[Line]:
    u = ctx.usage
    return [
        ctx.line(lid, "Standard storage (trail and Config logs)", u.trail_logs_gb, "s3.standard", usage=("trail_logs_gb",)),
        ctx.line(lid, "PUT requests (log deliveries)", u.trail_logs_put_requests / 1000, "s3.put", usage=("trail_logs_put_requests",)),
    ]


@builds("AWS::CloudTrail::Trail")
def trail(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    note = "the first copy of management events in an account is free; a second trail in the same account is billed per 100,000 events"
    return [ctx.line(lid, "Management events (first copy, free)", 0, "cloudtrail.management_events_additional_copy", note=note)]


@builds("AWS::Config::ConfigurationRecorder")
def recorder(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    return [ctx.line(lid, "Configuration items recorded", ctx.usage.config_items, "config.configuration_item", usage=("config_items",))]


@builds("AWS::Config::ConfigRule")
def rule(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    return [
        ctx.line(lid, "Rule evaluations", ctx.usage.config_rule_evaluations, "config.rule_evaluation", usage=("config_rule_evaluations",)),
    ]
