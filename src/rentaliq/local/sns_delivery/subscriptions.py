"""moto patches that make HTTP(S) and email subscriptions behave as on AWS: pending until confirmed, a real
confirmation handshake, and deliveries only to confirmed subscriptions.

- Subscribe (http, https, email, email-json) creates the subscription with ``PendingConfirmation`` true and
  ``ConfirmationWasAuthenticated`` false, sends a SubscriptionConfirmation (a POST, or a captured mail), and answers
  ``pending confirmation`` unless ``ReturnSubscriptionArn`` is true. Subscribing again while pending resends it.
- ConfirmSubscription with the token (valid 3 days) confirms; through the API the confirmation is authenticated,
  through the SubscribeURL (an unsigned GET, :mod:`.routes`) it is not. A wrong token: InvalidParameter.
- Publish delivers to confirmed subscriptions only: a signed JSON Notification (or the raw message with
  RawMessageDelivery) POSTed to http(s); for email the subject and text with AWS's unsubscribe footer; for email-json
  the signed JSON. Filter policies and ``MessageStructure=json`` apply as in moto.
- Unsubscribing a confirmed HTTP(S) endpoint sends it an UnsubscribeConfirmation whose SubscribeURL restores
  the subscription (3 days).
- ListSubscriptions(ByTopic) show a pending subscription's ARN as ``PendingConfirmation``; the topic's
  SubscriptionsPending/SubscriptionsConfirmed attributes count them.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.parse
import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.sns import models as sns_models
from moto.sns import responses as sns_responses
from moto.sns.exceptions import SNSInvalidParameter, SNSNotFoundError

from rentaliq.local.sns_delivery import messages
from rentaliq.local.sns_delivery.runtime import Runtime

CONFIRMING = ("http", "https", "email", "email-json")
SENT_KEPT = 100  # published messages a topic remembers (moto kept them all)
TOKEN_SECONDS = 3 * 24 * 3600
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_installed = False


def pending(subscription: Any) -> bool:
    return bool(subscription.attributes.get("PendingConfirmation"))


def recount(backend: Any, topic: Any) -> None:
    subs = [s for s in backend.subscriptions.values() if s.topic.arn == topic.arn]
    topic.subscriptions_pending = sum(1 for s in subs if pending(s))
    topic.subscriptions_confimed = len(subs) - topic.subscriptions_pending


def listed(subscription: Any) -> dict[str, Any]:
    """A subscription as ListSubscriptions(ByTopic) shows it: a pending one's ARN is ``PendingConfirmation``."""
    return {
        "SubscriptionArn": "PendingConfirmation" if pending(subscription) else subscription.arn,
        "Owner": subscription.owner,
        "Protocol": subscription.protocol,
        "Endpoint": subscription.endpoint,
        "TopicArn": subscription.topic.arn,
    }


def _check_endpoint(protocol: str, endpoint: str) -> None:
    if protocol in ("http", "https"):
        if not endpoint.lower().startswith(f"{protocol}://"):
            raise SNSInvalidParameter(f"Invalid parameter: Endpoint must match the specified protocol ({protocol})")
        try:
            host = urllib.parse.urlsplit(endpoint).hostname
        except ValueError:
            host = None
        if not host:
            raise SNSInvalidParameter("Invalid parameter: Endpoint is not a valid URL")
    if protocol in ("email", "email-json") and not _EMAIL.fullmatch(endpoint or ""):
        raise SNSInvalidParameter("Invalid parameter: Email address")


def send_confirmation(runtime: Runtime, subscription: Any) -> None:
    token = secrets.token_hex(64)
    now = time.time()
    tokens = {t: at for t, at in getattr(subscription, "rentaliq_tokens", {}).items() if now - at <= TOKEN_SECONDS}
    tokens[token] = now  # every confirmation sent stays usable for its 3 days, as on AWS
    subscription.rentaliq_tokens = tokens
    topic_arn = subscription.topic.arn
    url = messages.subscribe_url(runtime.endpoint, topic_arn, token)
    doc = messages.confirmation(str(uuid.uuid4()), token, topic_arn, url)
    if subscription.protocol == "email":
        runtime.capture(
            subscription, "SubscriptionConfirmation", doc["MessageId"], messages.EMAIL_CONFIRMATION_SUBJECT, messages.email_confirmation_body(topic_arn, url)
        )
        return
    signed = runtime.signer.sign(doc, runtime.endpoint, _signature_version(subscription))
    if subscription.protocol == "email-json":
        runtime.capture(subscription, "SubscriptionConfirmation", doc["MessageId"], messages.EMAIL_CONFIRMATION_SUBJECT, messages.dumps(signed))
        return
    headers = messages.http_headers("SubscriptionConfirmation", doc["MessageId"], topic_arn, None)
    runtime.post(subscription, json.dumps(signed).encode("utf-8"), headers)


def send_unsubscribe_confirmation(runtime: Runtime, backend: Any, subscription: Any) -> None:
    """An unsubscribed HTTP(S) endpoint gets an UnsubscribeConfirmation; its SubscribeURL restores the subscription."""
    token, now = secrets.token_hex(64), time.time()
    stash = {t: (sub, at) for t, (sub, at) in getattr(backend, "rentaliq_unsubscribed", {}).items() if now - at <= TOKEN_SECONDS}
    stash[token] = (subscription, now)
    backend.rentaliq_unsubscribed = stash
    topic_arn = subscription.topic.arn
    doc = messages.unsubscribe_confirmation(str(uuid.uuid4()), token, topic_arn, subscription.arn, messages.subscribe_url(runtime.endpoint, topic_arn, token))
    signed = runtime.signer.sign(doc, runtime.endpoint, _signature_version(subscription))
    headers = messages.http_headers("UnsubscribeConfirmation", doc["MessageId"], topic_arn, subscription.arn)
    runtime.post(subscription, json.dumps(signed).encode("utf-8"), headers)


def _restore(backend: Any, topic_arn: str, token: str) -> Any:
    """The subscription an UnsubscribeConfirmation's token restores, put back; None if there is none."""
    stash = getattr(backend, "rentaliq_unsubscribed", {})
    found = stash.get(token)
    if found is None or found[0].topic.arn != topic_arn or time.time() - found[1] > TOKEN_SECONDS:
        return None
    subscription = found[0]
    del stash[token]
    backend.subscriptions[subscription.arn] = subscription
    recount(backend, subscription.topic)
    return subscription


def _signature_version(subscription: Any) -> str:
    return str(getattr(subscription.topic, "signature_version", "1") or "1")


def confirm(backend: Any, topic_arn: str, token: str, authenticated: bool, authenticate_on_unsubscribe: bool = False) -> Any:
    """Confirm the subscription ``token`` was sent for; the subscription (already confirmed: unchanged)."""
    if topic_arn not in backend.topics:
        raise SNSNotFoundError("Topic does not exist")
    for subscription in backend.subscriptions.values():
        issued = getattr(subscription, "rentaliq_tokens", {}).get(token) if token else None
        if subscription.topic.arn != topic_arn or issued is None:
            continue
        if not pending(subscription):
            return subscription
        if time.time() - issued > TOKEN_SECONDS:
            break
        subscription.attributes["PendingConfirmation"] = False
        subscription.attributes["ConfirmationWasAuthenticated"] = authenticated
        subscription.confirmed = True
        subscription.rentaliq_authenticate_unsubscribe = authenticate_on_unsubscribe
        recount(backend, subscription.topic)
        return subscription
    restored = _restore(backend, topic_arn, token) if token else None
    if restored is not None:
        return restored
    raise SNSInvalidParameter("Invalid token")


def deliver(runtime: Runtime, subscription: Any, message: str, message_id: str, subject: str | None, attributes: dict[str, Any] | None) -> None:
    """One published message to one confirmed http(s)/email/email-json subscription."""
    topic_arn = subscription.topic.arn
    unsubscribe = messages.unsubscribe_url(runtime.endpoint, subscription.arn)
    if subscription.protocol == "email":
        body = messages.email_notification_body(message, unsubscribe)
        runtime.capture(subscription, "Notification", message_id, subject or messages.EMAIL_DEFAULT_SUBJECT, body)
        return
    raw = subscription.protocol in ("http", "https") and str(subscription.attributes.get("RawMessageDelivery")).lower() == "true"
    if raw:
        headers = messages.http_headers("Notification", message_id, topic_arn, subscription.arn, raw=True)
        runtime.post(subscription, message.encode("utf-8"), headers)
        return
    signed = runtime.signer.sign(messages.notification(message_id, topic_arn, subject, message), runtime.endpoint, _signature_version(subscription))
    signed["UnsubscribeURL"] = unsubscribe
    if attributes:
        signed["MessageAttributes"] = messages.message_attributes(attributes)
    if subscription.protocol == "email-json":
        runtime.capture(subscription, "Notification", message_id, subject or messages.EMAIL_DEFAULT_SUBJECT, messages.dumps(signed))
        return
    headers = messages.http_headers("Notification", message_id, topic_arn, subscription.arn)
    runtime.post(subscription, json.dumps(signed).encode("utf-8"), headers)


def install(runtime: Runtime) -> None:
    """Patch moto's SNS (idempotent)."""
    global _installed
    if _installed:
        return
    backend_cls, sub_cls, resp_cls = sns_models.SNSBackend, sns_models.Subscription, sns_responses.SNSResponse
    original_subscribe, original_unsubscribe = backend_cls.subscribe, backend_cls.unsubscribe
    original_publish, original_response_subscribe = sub_cls.publish, resp_cls.subscribe

    def subscribe(self: Any, topic_arn: str, endpoint: str, protocol: str) -> Any:
        if protocol in CONFIRMING:
            _check_endpoint(protocol, endpoint)
        existing = self._find_subscription(topic_arn, endpoint, protocol)
        subscription = original_subscribe(self, topic_arn, endpoint, protocol)
        if protocol in CONFIRMING:
            if existing is None:
                subscription.attributes["PendingConfirmation"] = True
                subscription.attributes["ConfirmationWasAuthenticated"] = False
                subscription.confirmed = False
            if pending(subscription):
                send_confirmation(runtime, subscription)
        recount(self, subscription.topic)
        return subscription

    def unsubscribe(self: Any, subscription_arn: str) -> None:
        subscription = self.subscriptions.get(subscription_arn)
        original_unsubscribe(self, subscription_arn)
        if subscription is not None:
            recount(self, subscription.topic)
            if subscription.protocol in ("http", "https") and not pending(subscription):
                send_unsubscribe_confirmation(runtime, self, subscription)

    def publish(
        self: Any, message: str, message_id: str, subject: str | None = None, message_attributes: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> None:
        if self.protocol not in CONFIRMING:
            return original_publish(self, message, message_id, subject, message_attributes, *args, **kwargs)
        if pending(self):
            return None  # AWS delivers nothing to an unconfirmed subscription
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(message_attributes, message):
            return None
        if kwargs.get("message_structure") == "json":
            message = self._parse_message_structure(message, self.protocol)
        deliver(runtime, self, message, message_id, subject, message_attributes)
        return None

    def response_subscribe(self: Any) -> ActionResult:
        result = original_response_subscribe(self)
        if str(self._get_param("ReturnSubscriptionArn")).lower() == "true":
            return result
        found = self.backend._find_subscription(self._get_param("TopicArn"), self._get_param("Endpoint"), self._get_param("Protocol"))
        if found is not None and pending(found):
            return ActionResult({"SubscriptionArn": "pending confirmation"})
        return result

    def confirm_subscription(self: Any) -> ActionResult:
        authenticate = str(self._get_param("AuthenticateOnUnsubscribe")).lower() == "true"
        subscription = confirm(self.backend, self._get_param("TopicArn"), self._get_param("Token"), True, authenticate)
        return ActionResult({"SubscriptionArn": subscription.arn})

    def list_subscriptions(self: Any) -> ActionResult:
        found, token = self.backend.list_subscriptions(next_token=self._get_param("NextToken"))
        return ActionResult({"Subscriptions": [listed(s) for s in found], "NextToken": token})

    def list_subscriptions_by_topic(self: Any) -> ActionResult:
        found, token = self.backend.list_subscriptions_by_topic(self._get_param("TopicArn"), next_token=self._get_param("NextToken"))
        return ActionResult({"Subscriptions": [listed(s) for s in found], "NextToken": token})

    backend_cls.subscribe = subscribe  # type: ignore[method-assign]
    backend_cls.unsubscribe = unsubscribe  # type: ignore[method-assign]
    sub_cls.publish = publish  # type: ignore[method-assign]
    resp_cls.subscribe = response_subscribe  # type: ignore[method-assign]
    resp_cls.confirm_subscription = confirm_subscription  # type: ignore[method-assign]
    resp_cls.list_subscriptions = list_subscriptions  # type: ignore[method-assign]
    resp_cls.list_subscriptions_by_topic = list_subscriptions_by_topic  # type: ignore[method-assign]
    original_topic_publish = sns_models.Topic.publish

    def topic_publish(self: Any, *args: Any, **kwargs: Any) -> str:
        """moto keeps every published message on its topic (about 3 KB each, pickled with every SNS commit):
        keep the newest ``SENT_KEPT``, which is all anything reads back (moto's test-only sent_notifications)."""
        message_id: str = original_topic_publish(self, *args, **kwargs)
        del self.sent_notifications[:-SENT_KEPT]
        return message_id

    sns_models.Topic.publish = topic_publish  # type: ignore[method-assign]
    _installed = True
