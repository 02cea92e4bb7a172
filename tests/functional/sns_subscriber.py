"""A real HTTP endpoint subscribed to an SNS topic, as a service would run one: it confirms its subscription by
fetching the SubscribeURL and verifies every message's signature against the certificate at SigningCertURL
(SignatureVersion 1: RSA with SHA-1 over SNS's canonical string)."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

# The keys SNS signs, in order, per message type (AWS: "Verifying the signatures of Amazon SNS messages").
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def canonical(message: dict[str, Any]) -> bytes:
    keys = SIGNED_KEYS[message["Type"]]
    return "".join(f"{key}\n{message[key]}\n" for key in keys if key in message).encode()


def signature_verifies(message: dict[str, Any]) -> bool:
    assert message["SignatureVersion"] == "1"
    with urllib.request.urlopen(message["SigningCertURL"], timeout=10) as answer:
        certificate = x509.load_pem_x509_certificate(answer.read())
    try:
        certificate.public_key().verify(base64.b64decode(message["Signature"]), canonical(message), padding.PKCS1v15(), hashes.SHA1())  # type: ignore[union-attr,call-arg]
    except Exception:  # noqa: BLE001 - InvalidSignature, or a key that is no RSA key
        return False
    return True


class Subscriber:
    """What the endpoint received: each POST's headers and parsed JSON body, in order."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.url = ""
        self._lock = threading.Lock()

    def messages(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for _, body in self.received if body.get("Type") == kind]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], kind: str = "Notification", timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages(kind):
                if predicate(message):
                    return message
            time.sleep(0.2)
        raise AssertionError(f"no {kind} matching within {timeout:g} s; received: {[b.get('Subject') or b.get('Type') for _, b in self.received]}")


@contextmanager
def subscriber(confirm: bool = True, delay: float = 0.0) -> Iterator[Subscriber]:
    """Serve on a free loopback port; with ``confirm``, answer a SubscriptionConfirmation by GETting its SubscribeURL;
    with ``delay``, take that long to answer each notification (a slow endpoint)."""
    state = Subscriber()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state._lock:
                state.received.append((dict(self.headers.items()), body))
            if delay and body.get("Type") == "Notification":
                time.sleep(delay)
            self.send_response(200)
            self.end_headers()
            if confirm and body.get("Type") == "SubscriptionConfirmation":
                threading.Thread(target=lambda: urllib.request.urlopen(body["SubscribeURL"], timeout=10).read(), daemon=True).start()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/sns"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
