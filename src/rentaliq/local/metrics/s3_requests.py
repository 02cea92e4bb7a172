"""S3 request metrics: every answer of the S3 app counted per bucket, filter and status class, drained each tick.

S3 publishes AllRequests, 4xxErrors and 5xxErrors (unit Count, statistic Sum, dimensions ``BucketName`` and
``FilterId``) each minute for the buckets that have a metrics configuration. Here a Flask ``after_request``
hook on moto's S3 app (added when the dispatcher first hands the app out, so no server code changes) counts each
answer, after moto's error handling, so a 404 NoSuchKey counts as a 4xx. A request counts for a configuration
whose filter has no prefix or whose prefix starts the object key; tag and access-point filters are not
evaluated locally (such a configuration counts nothing). Counts live in memory until the next metrics tick
publishes them, so a crash loses at most one tick of counts, as CloudWatch's own delivery may.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote

from moto.moto_server import werkzeug_app
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
from moto.s3.utils import bucket_name_from_url

from rentaliq.local.metrics.publish import Datapoint
from rentaliq.local.metrics.s3_metrics_api import configurations

NAMESPACE = "AWS/S3"
_lock = threading.Lock()
_counts: dict[tuple[str, str, str, str], list[int]] = {}  # (account, region, bucket, filter id) -> [all, 4xx, 5xx]
_installed = False


def _bucket(account: str, name: str) -> Any:
    for backend in list(dict.values(s3_backends[account])):
        bucket = backend.buckets.get(name)
        if bucket is not None:
            return bucket
    return None


def _matches(config: dict[str, Any], key: str) -> bool:
    rule = config.get("Filter") or {}
    if not rule:
        return True
    if "Tag" in rule or "AccessPointArn" in rule or (rule.get("And") or {}).get("Tags") or (rule.get("And") or {}).get("AccessPointArn"):
        return False
    prefix = rule.get("Prefix", (rule.get("And") or {}).get("Prefix", "")) or ""
    return key.startswith(prefix)


def count(request: Any, status: int) -> None:
    """Count one answered S3 request (called for every request of the S3 app; cheap when no bucket is configured)."""
    if S3Response.subdomain_based_buckets(request):
        bucket_name = bucket_name_from_url(request.url) or ""
        key = unquote(request.path.lstrip("/"))
    else:
        bucket_name, _, key = unquote(request.path.lstrip("/")).partition("/")
    owner = s3_backends.bucket_accounts.get(bucket_name) if bucket_name else None
    if owner is None:
        return
    bucket = _bucket(owner[1], bucket_name)
    configs = getattr(bucket, "metrics_configurations", None) if bucket is not None else None
    if not configs:
        return
    with _lock:
        for config in list(configs.values()):
            if _matches(config, key):
                counter = _counts.setdefault((owner[1], bucket.region_name, bucket_name, config["Id"]), [0, 0, 0])
                counter[0] += 1
                counter[1] += 400 <= status < 500
                counter[2] += status >= 500


def drain() -> list[Datapoint]:
    """The counts since the last drain, as datapoints, for configurations that still exist."""
    with _lock:
        taken = dict(_counts)
        _counts.clear()
    points = []
    for (account, region, bucket_name, filter_id), (total, client, server) in sorted(taken.items()):
        bucket = _bucket(account, bucket_name)
        if bucket is None or filter_id not in configurations(bucket):
            continue
        dimensions = {"BucketName": bucket_name, "FilterId": filter_id}
        for name, value in (("AllRequests", total), ("4xxErrors", client), ("5xxErrors", server)):
            points.append(Datapoint(account, region, NAMESPACE, name, value, "Count", dimensions))
    return points


def _hook(app: Any) -> None:
    @app.after_request
    def counted(response: Any) -> Any:
        from flask import request

        try:
            count(request, int(response.status_code))
        except Exception:  # noqa: BLE001 - counting must never fail a request
            pass
        return response


def install() -> None:
    """Hook the S3 app the moment moto's dispatcher hands it out first, before it serves (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    original = werkzeug_app.DomainDispatcherApplication.get_application

    def get_application(self: Any, environ: dict[str, Any]) -> Any:
        app = original(self, environ)
        if getattr(app, "service", None) == "s3" and not getattr(app, "_rentaliq_counted", False):
            with self.lock:
                if not getattr(app, "_rentaliq_counted", False):
                    _hook(app)
                    app._rentaliq_counted = True
        return app

    werkzeug_app.DomainDispatcherApplication.get_application = get_application
