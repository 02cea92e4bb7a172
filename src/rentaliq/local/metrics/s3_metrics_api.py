"""S3's bucket metrics configurations (request metrics), which moto 5.2.5 lacks, answered as S3 answers them.

``PUT/GET/DELETE /?metrics&id=ID`` and ``GET /?metrics`` (Put/Get/Delete/ListBucketMetricsConfiguration[s]) on
a bucket. A configuration has an ``Id`` (up to 64 letters, digits, ``-``, ``_``, ``.``) and an optional
``Filter`` (``Prefix``, ``Tag``, ``AccessPointArn`` or ``And`` of them); a bucket holds at most 1,000. A
missing one is ``404 NoSuchConfiguration`` ("The specified configuration does not exist."). They are kept on
moto's bucket object (``metrics_configurations``), so they persist with the bucket.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from xml.sax.saxutils import escape

import xmltodict
from moto.core.common_types import TYPE_RESPONSE
from moto.core.responses import ActionResult
from moto.s3.responses import S3Response

MAX_CONFIGURATIONS = 1000
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_installed = False


def configurations(bucket: Any) -> dict[str, dict[str, Any]]:
    found = getattr(bucket, "metrics_configurations", None)
    if found is None:
        found = bucket.metrics_configurations = {}
    return found


def _error(status: int, code: str, message: str) -> TYPE_RESPONSE:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message><RequestId>rentaliq-local</RequestId></Error>'
    )
    return status, {"content-type": "application/xml"}, body.encode()


def _filter_from_xml(raw: Any) -> dict[str, Any]:
    """The Filter element as the API shape: Prefix, Tag {Key, Value}, AccessPointArn, And {Prefix, Tags, AccessPointArn}."""
    if not isinstance(raw, dict):
        return {}
    result: dict[str, Any] = {}
    if raw.get("Prefix") is not None:
        result["Prefix"] = raw["Prefix"] or ""
    if isinstance(raw.get("Tag"), dict):
        result["Tag"] = {"Key": raw["Tag"].get("Key") or "", "Value": raw["Tag"].get("Value") or ""}
    if raw.get("AccessPointArn"):
        result["AccessPointArn"] = raw["AccessPointArn"]
    if isinstance(raw.get("And"), dict):
        both = raw["And"]
        tags = both.get("Tag") or []
        tags = tags if isinstance(tags, list) else [tags]
        result["And"] = {k: v for k, v in {"Prefix": both.get("Prefix"), "AccessPointArn": both.get("AccessPointArn")}.items() if v is not None}
        if tags:
            result["And"]["Tags"] = [{"Key": t.get("Key") or "", "Value": t.get("Value") or ""} for t in tags]
    return result


def _put(response: S3Response, bucket_name: str, config_id: str | None) -> TYPE_RESPONSE:
    bucket = response.backend.get_bucket(bucket_name)
    if not config_id:
        return _error(400, "InvalidArgument", "Missing required parameter id; the metrics configuration Id is required.")
    try:
        parsed = xmltodict.parse(response.body or b"<x/>").get("MetricsConfiguration")
    except Exception:  # noqa: BLE001 - any unparsable body is S3's MalformedXML
        parsed = None
    if not isinstance(parsed, dict):
        return _error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
    body_id = parsed.get("Id")
    if body_id != config_id:
        return _error(400, "InvalidArgument", f"The metrics configuration Id {body_id!r} does not match the id parameter {config_id!r}.")
    if not _ID.match(config_id):
        return _error(400, "InvalidArgument", f"Invalid metrics configuration Id {config_id!r}: 1-64 letters, digits, '-', '_' or '.'.")
    found = configurations(bucket)
    if config_id not in found and len(found) >= MAX_CONFIGURATIONS:
        return _error(400, "TooManyConfigurations", f"A bucket can have at most {MAX_CONFIGURATIONS} metrics configurations.")
    config: dict[str, Any] = {"Id": config_id}
    if parsed.get("Filter") is not None:
        config["Filter"] = _filter_from_xml(parsed["Filter"])
    found[config_id] = config
    return 204, {}, b""


def _get(response: S3Response, bucket_name: str, config_id: str) -> TYPE_RESPONSE:
    config = configurations(response.backend.get_bucket(bucket_name)).get(config_id)
    if config is None:
        return _error(404, "NoSuchConfiguration", "The specified configuration does not exist.")
    response.data["Action"] = "GetBucketMetricsConfiguration"
    return response.serialized(ActionResult({"MetricsConfiguration": config}))


def _list(response: S3Response, bucket_name: str) -> TYPE_RESPONSE:
    found = configurations(response.backend.get_bucket(bucket_name))
    response.data["Action"] = "ListBucketMetricsConfigurations"
    result: dict[str, Any] = {"IsTruncated": False}
    if found:
        result["MetricsConfigurationList"] = [found[k] for k in sorted(found)]
    return response.serialized(ActionResult(result))


def _delete(response: S3Response, bucket_name: str, config_id: str | None) -> TYPE_RESPONSE:
    found = configurations(response.backend.get_bucket(bucket_name))
    if not config_id or config_id not in found:
        return _error(404, "NoSuchConfiguration", "The specified configuration does not exist.")
    del found[config_id]
    return 204, {}, b""


def install() -> None:
    """Route ``?metrics`` bucket requests to the handlers above (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True

    def route(method_name: str, handler: Any) -> None:
        original = getattr(S3Response, method_name)

        @functools.wraps(original)
        def wrapper(self: S3Response, *args: Any) -> Any:
            bucket_name, querystring = args[-2], args[-1]
            if "metrics" not in querystring:
                return original(self, *args)
            self.data["Action"] = {"_bucket_response_get": "GetBucketMetricsConfiguration", "_bucket_response_put": "PutBucketMetricsConfiguration"}.get(
                method_name, "DeleteBucketMetricsConfiguration"
            )
            self._authenticate_and_authorize_s3_action(bucket_name=bucket_name)
            return handler(self, bucket_name, (querystring.get("id") or [None])[0])

        setattr(S3Response, method_name, wrapper)

    route("_bucket_response_get", lambda r, b, i: _get(r, b, i) if i is not None else _list(r, b))
    route("_bucket_response_put", _put)
    route("_bucket_response_delete", _delete)
