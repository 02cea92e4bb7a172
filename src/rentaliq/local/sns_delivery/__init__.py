"""SNS delivery on the local cloud as AWS does it: signed HTTP(S) POSTs with the confirmation handshake and AWS's
retry policy, and email deliveries captured where ``rentaliq alerts ENV`` reads them.

moto only POSTs notifications (signed with a throw-away key nobody can fetch, to any subscription, confirmed or
not) and drops email. Modules:

``signing``        the key, the certificate served at SigningCertURL, AWS's canonical strings
``messages``       the documents: confirmation, notification, email bodies, HTTP headers
``http_delivery``  POSTs off the request thread, retried by the delivery policy
``mailbox``        captured email / email-json deliveries under the state dir (bounded) and their reader
``subscriptions``  moto patches: pending until confirmed, ConfirmSubscription, per-protocol delivery
``routes``         SigningCertURL, SubscribeURL, UnsubscribeURL and ``/_rentaliq/sns/mail``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rentaliq.local.sns_delivery.mailbox import read as read_mailbox
from rentaliq.local.sns_delivery.routes import MAIL_PATH

__all__ = ["MAIL_PATH", "install", "read_mailbox", "route", "stop"]

_runtime: Any = None


def install(state_dir: Path) -> None:
    """Patch moto's SNS (idempotent) and open the signer and mailbox under ``state_dir``."""
    global _runtime
    from rentaliq.local.sns_delivery import subscriptions
    from rentaliq.local.sns_delivery.runtime import Runtime

    if _runtime is None:
        _runtime = Runtime(Path(state_dir))
    subscriptions.install(_runtime)


def route(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
    if _runtime is None:
        return None
    from rentaliq.local.sns_delivery.routes import handle

    return handle(_runtime, environ)


def stop() -> None:
    if _runtime is not None:
        _runtime.stop()
