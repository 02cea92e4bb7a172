"""Lines for stored data: S3 buckets (storage per class, requests, request metrics) and Secrets Manager secrets.

A bucket's storage comes from the usage assumptions: a bucket that receives another bucket's access logs holds
``access_logs_gb`` in S3 Standard; any other bucket is a files bucket priced with the ``files_*`` assumptions, in the
classes its lifecycle and configuration can reach. A request-metrics configuration is billed as CloudWatch custom
metrics. Secrets Manager bills per secret, so each secret is its own line (DESIGN.md's lesson).
"""

from __future__ import annotations

from typing import Any

from rentaliq.cost.audit import receives_audit_logs, trail_logs_bucket_lines
from rentaliq.cost.lines import Line, PricingContext, builds, props, refers_to


def _receives_access_logs(lid: str, ctx: PricingContext) -> bool:
    return any(refers_to(props(r).get("LoggingConfiguration", {}).get("DestinationBucketName"), lid) for _, r in ctx.of_type("AWS::S3::Bucket"))


def _reachable_classes(p: dict[str, Any]) -> set[str]:
    rules = (p.get("LifecycleConfiguration") or {}).get("Rules") or []
    transitions = {t.get("StorageClass") for rule in rules for t in rule.get("Transitions") or []}
    transitions |= {t.get("StorageClass") for rule in rules for t in rule.get("NoncurrentVersionTransitions") or []}
    return {"STANDARD"} | {c for c in transitions if isinstance(c, str)}


@builds("AWS::S3::Bucket")
def bucket(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    p, u = props(resource), ctx.usage
    lines: list[Line] = []
    if receives_audit_logs(lid, ctx):  # the trail's bucket: priced with the [audit] assumptions (cost.audit)
        return trail_logs_bucket_lines(lid, ctx)
    if _receives_access_logs(lid, ctx):
        lines.append(ctx.line(lid, "Standard storage (access logs)", u.access_logs_gb, "s3.standard", usage=("access_logs_gb",)))
    else:
        reachable = _reachable_classes(p)
        for storage_class, label, gb, key, field in (
            ("STANDARD", "Standard", u.files_standard_gb, "s3.standard", "files_standard_gb"),
            ("STANDARD_IA", "Standard-IA", u.files_standard_ia_gb, "s3.standard_ia", "files_standard_ia_gb"),
            (
                "INTELLIGENT_TIERING",
                "Intelligent-Tiering (Infrequent Access tier)",
                u.files_intelligent_tiering_gb,
                "s3.intelligent_tiering.infrequent",
                "files_intelligent_tiering_gb",
            ),
            ("GLACIER", "Glacier Flexible Retrieval", u.files_glacier_gb, "s3.glacier_flexible", "files_glacier_gb"),
        ):
            if storage_class in reachable:
                lines.append(ctx.line(lid, f"{label} storage", gb, key, usage=(field,)))
            elif gb:  # an assumption the bucket can never hold: say so instead of billing it
                lines.append(ctx.line(lid, f"{label} storage: not reachable by this bucket's lifecycle", 0, key, usage=(field,)))
        if "INTELLIGENT_TIERING" in reachable:
            lines.append(
                ctx.line(
                    lid,
                    "Intelligent-Tiering monitoring",
                    u.files_intelligent_tiering_objects / 1000,
                    "s3.intelligent_tiering.monitoring",
                    usage=("files_intelligent_tiering_objects",),
                )
            )
        lines.append(ctx.line(lid, "PUT/COPY/POST/LIST requests", u.files_put_requests / 1000, "s3.put", usage=("files_put_requests",)))
        lines.append(ctx.line(lid, "GET requests", u.files_get_requests / 1000, "s3.get", usage=("files_get_requests",)))
    for config in p.get("MetricsConfigurations") or []:
        lines.append(
            ctx.line(
                lid,
                f"Request metrics {config.get('Id', '')!r} (CloudWatch metrics)",
                u.request_metrics,
                "cloudwatch.metric",
                usage=("request_metrics",),
            )
        )
    return lines


@builds("AWS::SecretsManager::Secret")
def secret(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    return ctx.monthly_plus_calls(lid, ("Secret", "secretsmanager.secret"), ("API calls", "secretsmanager.api"), "secret_api_calls")
