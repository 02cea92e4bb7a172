"""`verify` against an endpoint that answers badly: a real HTTP server on loopback, no local cloud needed.

A 500 (with an XML error, with an HTML error page) or a 200 that is not an API answer is a failed check,
never "not checkable"; "not checkable" comes only from the declared list of unimplemented operations.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType

import boto3
import pytest
from botocore.config import Config

from rentaliq.deploy.target import Target
from rentaliq.environments import load_spec
from rentaliq.ops.verify import AREAS, FAIL, NOT_CHECKABLE, VerifyError, summary, verify
from rentaliq.ops.verify.secrets import Secret

XML_500 = (500, "application/xml", "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>")
HTML_500 = (500, "text/html", "<html><body><h1>500 Internal Server Error</h1><p>Traceback (most recent call last)</p></body></html>")
HTML_200 = (200, "text/html", "<!doctype html><html><body>Welcome to nginx!</body></html>")


@dataclass
class BadEndpoint:
    """An HTTP server that gives every request the same answer and remembers what was asked."""

    answer: tuple[int, str, str]
    requests: list[str] = field(default_factory=list)

    def serve(self) -> ThreadingHTTPServer:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("latin-1") if length else ""
                endpoint.requests.append(f"{self.command} {self.path} {self.headers.get('X-Amz-Target', '')} {body}")
                status, content_type, text = endpoint.answer
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, *args: object) -> None:
                pass

        return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


class OneAttempt(Target):
    """A target whose clients don't retry, so that a 500 costs one request, not five with back-off."""

    def client(self, service: str):  # type: ignore[no-untyped-def]
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self.endpoint_url, config=Config(retries={"max_attempts": 1}))
        return self._clients[service]


@pytest.fixture
def bad_endpoint(request) -> Iterator[tuple[BadEndpoint, str]]:
    endpoint = BadEndpoint(request.param)
    server = endpoint.serve()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield endpoint, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def target(name: str, endpoint_url: str) -> OneAttempt:
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    return OneAttempt(name, "us-east-1", endpoint_url, session)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_endpoint", [XML_500, HTML_500, HTML_200], indirect=True, ids=["500-xml", "500-html", "200-html"])
@pytest.mark.parametrize("name", ["local", "aws"])
def test_a_broken_answer_is_a_failed_check_never_not_checkable(bad_endpoint, name):
    endpoint, url = bad_endpoint
    checks = verify(target(name, url), load_spec("prod"))
    counts = summary(checks)
    assert counts["not_checkable"] == 0 and counts["passed"] == 0
    assert {c.area for c in checks if c.status == FAIL} == set(AREAS)
    stack = next(c for c in checks if c.area == "Stack")
    assert (stack.name, stack.status, stack.actual) == ("stack exists", FAIL, None) and stack.detail.startswith("describe_stacks")
    if endpoint.answer[0] == 500:
        assert "HTTP 500" in stack.detail
    # An unreadable secret answer is named by type only: the body could hold a value.
    assert not any("nginx" in c.detail or "Traceback" in c.detail for c in checks if c.area == "Secrets")


@pytest.mark.parametrize("bad_endpoint", [XML_500], indirect=True)
def test_only_a_declared_unimplemented_operation_is_not_checkable_and_it_is_not_called(bad_endpoint):
    endpoint, url = bad_endpoint
    declared = {"cloudformation:DescribeStacks"}
    checks = verify(target("local", url), load_spec("lab"), unimplemented=declared)
    not_checkable = [c for c in checks if c.status == NOT_CHECKABLE]
    assert [(c.area, c.name, c.actual) for c in not_checkable] == [("Stack", "stack exists", None)]
    assert "cloudformation:DescribeStacks" in not_checkable[0].detail
    assert not any("Action=DescribeStacks" in r for r in endpoint.requests)
    assert any("Action=DescribeDBInstances" in r for r in endpoint.requests)  # everything else was asked, and failed
    # The list is the local cloud's: a real account is asked, and its 500 is a failure.
    checks = verify(target("aws", url), load_spec("lab"), unimplemented=declared)
    assert summary(checks)["not_checkable"] == 0
    assert any("Action=DescribeStacks" in r for r in endpoint.requests)


def test_a_secret_value_is_not_in_the_repr_of_what_verify_read():
    secret = Secret("rentaliq/lab/api/keys", "arn:aws:secretsmanager:us-east-1:1:secret:x", MappingProxyType({"api_key": "s3cr3t-value-123"}))
    assert "s3cr3t-value-123" not in repr(secret) and "rentaliq/lab/api/keys" in repr(secret)


REFUSED_TOKEN = (
    403,
    "text/xml",
    (
        "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
        "<Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>"
    ),
)


@pytest.mark.parametrize("bad_endpoint", [REFUSED_TOKEN], indirect=True)
def test_refused_credentials_stop_the_audit_with_one_error(bad_endpoint):
    endpoint, url = bad_endpoint
    with pytest.raises(VerifyError, match="InvalidClientTokenId: the credentials for aws were refused"):
        verify(target("aws", url), load_spec("lab"))
    assert len(endpoint.requests) == 1  # nothing after the first refusal


def test_no_endpoint_at_all_is_an_error_not_a_list_of_failures():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: connections are refused
        with pytest.raises(VerifyError, match="cannot reach local"):
            verify(target("local", url), load_spec("lab"))
