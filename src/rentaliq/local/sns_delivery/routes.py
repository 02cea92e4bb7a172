"""The HTTP paths the local cloud serves for SNS outside moto's API:

``GET /SimpleNotificationService-<digest>.pem``
    the signing certificate (SigningCertURL), as ``sns.<region>.amazonaws.com`` serves it.
``GET /?Action=ConfirmSubscription&TopicArn=..&Token=..``
    the SubscribeURL: confirms (unauthenticated), answers AWS's XML.
``GET /?Action=Unsubscribe&SubscriptionArn=..``
    the UnsubscribeURL (refused when the subscription was confirmed with AuthenticateOnUnsubscribe).
``GET /_rentaliq/sns/mail[?topic=ARN&endpoint=ADDRESS&since=ISO8601&limit=N]``
    the captured email deliveries, newest first, as ``{"deliveries": [...]}`` (see :mod:`.mailbox`).

Unsigned GETs only (no Authorization header): every API call of an SDK is signed, so none is taken from moto.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from rentaliq.local.sns_delivery.runtime import Runtime

MAIL_PATH = "/_rentaliq/sns/mail"
Response = tuple[str, list[tuple[str, str]], bytes]
_NS = "http://sns.amazonaws.com/doc/2010-03-31/"


def _xml(status: str, body: str) -> Response:
    data = f'<?xml version="1.0" encoding="UTF-8"?>\n{body}'.encode()
    return status, [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))], data


def _error(status: str, code: str, message: str) -> Response:
    return _xml(
        status,
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>",
    )


def _json(status: str, doc: Any) -> Response:
    data = json.dumps(doc).encode()
    return status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))], data


def handle(runtime: Runtime, environ: dict[str, Any]) -> Response | None:
    """The answer for one of the paths above, or None (moto answers)."""
    if environ.get("REQUEST_METHOD") != "GET" or environ.get("HTTP_AUTHORIZATION"):
        return None
    path = environ.get("PATH_INFO") or "/"
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING") or "").items()}
    if path == f"/{runtime.signer.cert_name}":
        pem = runtime.signer.cert_pem
        return "200 OK", [("Content-Type", "application/x-pem-file"), ("Content-Length", str(len(pem)))], pem
    if path == MAIL_PATH:
        return _mail(runtime, query)
    if path == "/" and query.get("Action") == "ConfirmSubscription":
        return _confirm(query)
    if path == "/" and query.get("Action") == "Unsubscribe":
        return _unsubscribe(query)
    return None


def _mail(runtime: Runtime, query: dict[str, str]) -> Response:
    since = None
    if query.get("since"):
        try:
            since = datetime.fromisoformat(query["since"].replace("Z", "+00:00"))
        except ValueError:
            return _json("400 Bad Request", {"error": f"since={query['since']!r} is not an ISO 8601 time"})
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    limit = int(query["limit"]) if query.get("limit", "").isdigit() else None
    found = runtime.mailbox.read(topic_arn=query.get("topic"), endpoint=query.get("endpoint"), since=since, limit=limit)
    return _json("200 OK", {"deliveries": found})


def _backend_for(arn: str) -> Any:
    from moto.sns.models import sns_backends

    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "sns":
        return None
    return sns_backends[parts[4]][parts[3]]


def _changing_then_commit(change: Any) -> Any:
    """Run ``change`` under the persistence lock, commit SNS afterwards (this runs outside any request)."""
    from moto.sns.models import sns_backends

    from rentaliq.local import state

    current = state.current()
    if current is None:
        return change()
    with current.changing():
        result = change()
    if getattr(current, "closed", False):
        return result  # stopping: the final snapshot is written, never commit after it
    current.mark_dirty(sns_backends)
    current.commit()
    return result


def _confirm(query: dict[str, str]) -> Response:
    from moto.sns.exceptions import SNSInvalidParameter, SNSNotFoundError

    from rentaliq.local.sns_delivery.subscriptions import confirm

    topic_arn, token = query.get("TopicArn", ""), query.get("Token", "")
    backend = _backend_for(topic_arn)
    if backend is None:
        return _error("404 Not Found", "NotFound", "Topic does not exist")
    try:
        subscription = _changing_then_commit(lambda: confirm(backend, topic_arn, token, authenticated=False))
    except SNSNotFoundError:
        return _error("404 Not Found", "NotFound", "Topic does not exist")
    except SNSInvalidParameter:
        return _error("400 Bad Request", "InvalidParameter", "Invalid token")
    return _xml(
        "200 OK",
        f'<ConfirmSubscriptionResponse xmlns="{_NS}"><ConfirmSubscriptionResult><SubscriptionArn>{escape(subscription.arn)}'
        f"</SubscriptionArn></ConfirmSubscriptionResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
        "</ResponseMetadata></ConfirmSubscriptionResponse>",
    )


def _unsubscribe(query: dict[str, str]) -> Response:
    arn = query.get("SubscriptionArn", "")
    backend = _backend_for(arn)
    subscription = backend.subscriptions.get(arn) if backend is not None else None
    if subscription is None:
        return _error("404 Not Found", "NotFound", "Subscription does not exist")
    if getattr(subscription, "rentaliq_authenticate_unsubscribe", False):
        return _error("403 Forbidden", "AuthorizationError", "Unsubscribe requires an authenticated request for this subscription")
    _changing_then_commit(lambda: backend.unsubscribe(arn))
    return _xml(
        "200 OK",
        f'<UnsubscribeResponse xmlns="{_NS}"><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></UnsubscribeResponse>',
    )
