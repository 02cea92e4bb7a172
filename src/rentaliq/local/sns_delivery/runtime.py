"""What SNS delivery needs at run time in the server process: the endpoint subscribers reach the local cloud at
(SubscribeURL, UnsubscribeURL, SigningCertURL), the signer, the mailbox and the HTTP deliverer."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from rentaliq.local.sns_delivery import http_delivery, messages
from rentaliq.local.sns_delivery.mailbox import Mailbox, path_in
from rentaliq.local.sns_delivery.signing import Signer


class Runtime:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.signer = Signer(self.state_dir / "sns")
        self.mailbox = Mailbox(path_in(self.state_dir))
        self._deliverer: http_delivery.Deliverer | None = None

    @property
    def endpoint(self) -> str:
        return os.environ.get("RENTALIQ_LOCAL_ENDPOINT", "http://127.0.0.1:4566")

    @property
    def deliverer(self) -> http_delivery.Deliverer:
        if self._deliverer is None:
            self._deliverer = http_delivery.Deliverer()
        return self._deliverer

    def post(self, subscription: Any, body: bytes, headers: dict[str, str]) -> None:
        policy = http_delivery.policy_for(subscription.attributes.get("DeliveryPolicy"), getattr(subscription.topic, "delivery_policy", None))
        self.deliverer.submit(subscription.endpoint, body, headers, http_delivery.retry_delays(policy))

    def capture(self, subscription: Any, kind: str, message_id: str, subject: str, body: str) -> None:
        self.mailbox.add(
            {
                "Id": str(uuid.uuid4()),
                "Timestamp": messages.timestamp(),
                "Type": kind,
                "Protocol": subscription.protocol,
                "Endpoint": subscription.endpoint,
                "TopicArn": subscription.topic.arn,
                "SubscriptionArn": subscription.arn,
                "MessageId": message_id,
                "Subject": subject,
                "Body": body,
            }
        )

    def stop(self) -> None:
        if self._deliverer is not None:
            self._deliverer.stop()
            self._deliverer = None
