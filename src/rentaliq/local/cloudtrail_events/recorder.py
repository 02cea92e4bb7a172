"""The WSGI layer that turns every management API call the local cloud serves into a CloudTrail event.

It sits outside the persistence middleware, so it sees the final status of each call (an AccessDenied from IAM
enforcement, a ResourceNotFoundException, a 200) and writes the event before the response leaves the server.
What it records follows CloudTrail's event history:

- management events only: S3 object-level calls (GetObject, PutObject...) are data events, which CloudTrail
  records only for a trail that selects them; this history never has them;
- ``userIdentity`` from the signing access key (:mod:`identity`); calls CloudFormation makes while deploying a
  stack carry the identity of whoever started the stack operation, with ``invokedBy`` ``cloudformation.amazonaws.com``
  (the local providers mark their requests with :data:`INVOKED_BY_HEADER` and :data:`STACK_HEADER`);
- ``errorCode`` / ``errorMessage`` of a failed call, whatever the code;
- request parameters only through :func:`describe.safe_parameters` (never a secret value or a password).

The event name comes from moto's own routing of the request (a thread-local set in ``call_action`` and in the S3
responses' ``_set_action``), falling back to the request's ``Action`` or ``X-Amz-Target``.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from rentaliq.local.cloudtrail_events import describe, identity
from rentaliq.local.cloudtrail_events.lookup import LOOKUP_TARGET_SUFFIX, lookup_response
from rentaliq.local.cloudtrail_events.store import EventStore
from rentaliq.local.state.middleware import _action_of, _read_body

INVOKED_BY_HEADER = "X-RentalIQ-Invoked-By"
STACK_HEADER = "X-RentalIQ-Stack"
CLOUDFORMATION = "cloudformation.amazonaws.com"
STACK_OPERATIONS = frozenset(
    {"CreateStack", "UpdateStack", "DeleteStack", "CreateChangeSet", "ExecuteChangeSet", "ContinueUpdateRollback", "CancelUpdateStack"}
)
# Listing a bucket's objects is a data event in CloudTrail (ListObjects, ListObjectVersions, ListMultipartUploads).
S3_LIST_DATA_EVENTS = frozenset({"ListBucket", "ListBucketVersions", "ListBucketMultipartUploads"})
_SKIPPED_PREFIXES = ("/moto-api", "/_rentaliq")

_current = threading.local()


def note_action(service: str | None, action: str | None, object_level: bool = False) -> None:
    """Called from moto's response classes: what this thread's request is."""
    _current.action = (service, action, object_level)


def _taken_action() -> tuple[str | None, str | None, bool] | None:
    value = getattr(_current, "action", None)
    _current.action = None
    return value


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stack_of_change_set(arn: str, account: str, region: str) -> str | None:
    from moto.cloudformation.models import cloudformation_backends

    try:
        change_set = cloudformation_backends[account][region].change_sets.get(arn)
    except Exception:  # noqa: BLE001 - an unknown account or region: no stack to name
        return None
    return change_set.stack_name if change_set is not None else None


class Recorder:
    def __init__(self, store: EventStore, app: Callable[..., Iterable[bytes]]) -> None:
        self.store = store
        self.app = app
        # Who started the latest operation on each stack: the identity CloudFormation's own calls are made for.
        self.stack_principals: dict[str, tuple[dict[str, Any], str]] = {}
        for event in store.snapshot():
            self._remember_stack(event)

    def _remember_stack(self, event: dict[str, Any]) -> None:
        if event.get("eventSource") == CLOUDFORMATION and event.get("eventName") in STACK_OPERATIONS and not event.get("errorCode"):
            stack = (event.get("requestParameters") or {}).get("stackName")
            if stack and "invokedBy" not in event["userIdentity"]:
                self.stack_principals[stack] = (event["userIdentity"], event["_username"])

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(_SKIPPED_PREFIXES):
            return self.app(environ, start_response)
        body = b""
        if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD", "OPTIONS"):
            body = _read_body(environ)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("wsgi.input_terminated", None)
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).endswith(LOOKUP_TARGET_SUFFIX):
            status, headers, payload = lookup_response(self.store.snapshot(), body)
            self._record(environ, body, ("cloudtrail", "LookupEvents", False), int(status.split()[0]), headers, payload)
            start_response(status, headers)
            return [payload]
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers, exc_info]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        _current.action = None
        result = self.app(environ, capture)
        noted = _taken_action()
        if not captured:
            return result
        code = int(str(captured[0]).split()[0])
        error_body = b""
        if code >= 400:
            error_body = b"".join(result)
            if hasattr(result, "close"):
                result.close()
            result = [error_body]
        try:
            self._record(environ, body, noted, code, captured[1], error_body)
        except Exception:
            import logging

            logging.getLogger(__name__).exception("could not record a CloudTrail event")
        return result

    def _record(
        self,
        environ: dict[str, Any],
        body: bytes,
        noted: tuple[str | None, str | None, bool] | None,
        status: int,
        headers: list[tuple[str, str]],
        error_body: bytes,
    ) -> None:
        scope = identity.signature_scope(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None:
            return  # unsigned: not an API call of a principal (the health page, a presigned browser GET)
        access_key, region, signing_service = scope
        object_level = bool(noted and noted[2])
        if signing_service == "s3":
            # S3 is REST: its parameters are the path; a body is an object or a configuration, never parameters.
            bucket, object_key = describe.s3_target(environ)
            if object_level or object_key:
                return  # a data event: CloudTrail records those only for a trail that selects them
            params: dict[str, Any] = {"Bucket": bucket} if bucket else {}
        else:
            params = describe.raw_parameters(environ, body)
        name = noted[1] if noted and noted[1] else _action_of(environ, body)
        if not name or object_level:
            return  # calls nobody could name are no management events
        user_identity, username = identity.user_identity(access_key, "")
        account = user_identity["accountId"]
        source_ip = environ.get("REMOTE_ADDR", "")
        agent = environ.get("HTTP_USER_AGENT", "")
        invoked_by = environ.get("HTTP_" + INVOKED_BY_HEADER.upper().replace("-", "_"))
        if invoked_by == CLOUDFORMATION:
            stack = environ.get("HTTP_" + STACK_HEADER.upper().replace("-", "_"), "")
            principal, username = self.stack_principals.get(stack, (user_identity, username))
            user_identity = {**principal, "invokedBy": CLOUDFORMATION}
            source_ip = agent = CLOUDFORMATION
        source = describe.event_source(signing_service)
        if source == CLOUDFORMATION and "StackName" not in params and str(params.get("ChangeSetName", "")).startswith("arn:"):
            stack_name = _stack_of_change_set(params["ChangeSetName"], account, region)
            if stack_name:
                params["StackName"] = stack_name
        error_code, error_message = describe.error_of(status, headers, error_body)
        safe = describe.safe_parameters(params)
        event: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": user_identity,
            "eventTime": _now(),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": source_ip,
            "userAgent": agent,
            "requestParameters": {key[:1].lower() + key[1:]: value for key, value in safe.items()} if safe else None,
            "responseElements": None,
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": describe.is_read_only(name),
            "resources": describe.resources(params, signing_service),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "_username": username,
        }
        if error_code:
            event["errorCode"] = error_code
            if error_message:
                event["errorMessage"] = error_message
        self.store.append(event)
        self._remember_stack(event)


def install_hooks() -> None:
    """Let moto's response classes say which operation each request is (the names CloudTrail uses)."""
    from moto.core.responses import BaseResponse
    from moto.s3.responses import S3Response

    original_call = BaseResponse.call_action
    if getattr(original_call, "_rentaliq_cloudtrail", False):
        return

    def call_action(self: Any) -> Any:
        try:
            note_action(self.service_name, self._get_action())
        except Exception:  # noqa: BLE001 - naming the event must not fail the call
            pass
        return original_call(self)

    call_action._rentaliq_cloudtrail = True  # type: ignore[attr-defined]
    BaseResponse.call_action = call_action  # type: ignore[method-assign]

    original_set = S3Response._set_action

    def set_action(self: Any, action_resource_type: str, method: str, querystring: dict[str, Any]) -> None:
        original_set(self, action_resource_type, method, querystring)
        action = self.data.get("Action")
        note_action("s3", action, action_resource_type == "KEY" or action in S3_LIST_DATA_EVENTS)

    S3Response._set_action = set_action  # type: ignore[method-assign]
