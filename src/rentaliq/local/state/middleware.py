"""The WSGI middleware in front of moto, and the lock between requests and commits.

A request is *mutating* unless it is a GET/HEAD/OPTIONS without a mutating ``Action``, or an RPC
(JSON, query, rpc-v2) request whose action starts with Describe/List/Get/BatchGet/Head/Search/
Lookup/Query/Scan/Validate/Estimate/Simulate.  ``/moto-api/*`` is mutating (reset, seed, ...)
except its read-only GET pages; it snapshots everything.  Requests hold a shared lock while moto
runs them (bodies are read before); a commit takes it exclusively, so its snapshot never sees a
request half-applied.  After a mutating request has run, and *before* its status line and body are
handed to the HTTP server, what it touched is committed; a failed commit answers 500 (the client
must not believe an effect is durable when it is not).
"""

from __future__ import annotations

import io
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from rentaliq.local.state import tracking
from rentaliq.local.state.layout import CHUNK, PersistenceError
from rentaliq.local.state.s3bodies import externalize_new_keys
from rentaliq.local.state.snapshot import ALL

if TYPE_CHECKING:
    from rentaliq.local.state.core import Persistence

READ_ACTION_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "BatchGet",
    "Head",
    "Search",
    "Lookup",
    "Query",
    "Scan",
    "Validate",
    "Estimate",
    "Simulate",
)
MOTO_API_READ_PATHS = frozenset(
    {
        "/moto-api/",
        "/moto-api/lib.js",
        "/moto-api/data.json",
        "/moto-api/config",
        "/moto-api/state-manager/get-transition",
        "/moto-api/recorder/download-recording",
    }
)
EXCLUSIVE_TIMEOUT = 60.0  # seconds; a request holding the shared lock this long is a bug (the commit fails, 500)


class RWLock:
    """Many requests (shared) or one commit (exclusive).

    The exclusive wait needs no bound and no optimistic fallback as long as nobody waits for a
    commit while holding a shared hold.  That holds since CloudFormation operations run on a worker
    thread: its providers call this server over HTTP outside :meth:`Persistence.changing`, and
    commit after each block (``commit()`` inside a block raises; inside a request it defers to the
    request's own commit); the one request that waits for a committing thread (the CloudFormation
    API gate during crash recovery) gives its hold up first (:meth:`Persistence.released`).
    Requests still make nested *read* requests while holding one (a GetAtt or a dynamic reference
    resolved while creating a change set), so there is no writer preference: a waiting commit must
    not block those.  The wait is bounded all the same, so a new such bug fails one commit (a 500
    the test suite reports) instead of hanging the server.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False

    def acquire_read(self) -> None:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    def acquire_exclusive(self, timeout: float = EXCLUSIVE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._writer or self._readers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PersistenceError(f"requests held the state lock for more than {timeout:.0f} s")
                self._cond.wait(left)
            self._writer = True

    def release_exclusive(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


def _action_of(environ: dict[str, Any], body: bytes | None) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    path = environ.get("PATH_INFO", "")
    if path.startswith("/service/") and "/operation/" in path:  # smithy rpc-v2-cbor
        return path.rsplit("/operation/", 1)[-1].strip("/") or None
    qs = environ.get("QUERY_STRING", "")
    if "Action=" in qs:
        vals = parse_qs(qs).get("Action")
        if vals:
            return vals[0]
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        try:
            vals = parse_qs(body.decode("utf-8", "replace")).get("Action")
        except ValueError:
            vals = None
        if vals:
            return vals[0]
    return None


def classify(environ: dict[str, Any], body: bytes | None) -> tuple[bool, bool]:
    """(mutating, everything) for a request."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "")
    if path.startswith("/moto-api"):
        if method in ("GET", "HEAD") and (path in MOTO_API_READ_PATHS or path.startswith("/moto-api/static/")):
            return False, False
        return True, True
    action = _action_of(environ, body)
    if action is not None:
        return not action.startswith(READ_ACTION_PREFIXES), False
    return method not in ("GET", "HEAD", "OPTIONS"), False


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read())
    if not length:
        return b""
    n = int(length)
    chunks = []
    while n > 0:
        c = stream.read(min(n, CHUNK))
        if not c:
            break
        chunks.append(c)
        n -= len(c)
    return b"".join(chunks)


def _backend_dict_for(service: str | None) -> Any:
    if not service or service in ("moto_api", "instance_metadata"):
        return None
    try:
        from moto import backends

        return backends.get_backend(service)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a path moto serves with no backend of ours: nothing to track
        return None


def _no_write(data: bytes) -> None:  # pragma: no cover - Flask never uses write()
    raise RuntimeError("write() is not supported by the persistence middleware")


def _persistence_failed(start_response: Any, exc: Exception) -> list[bytes]:
    what = str(exc) if isinstance(exc, PersistenceError) else type(exc).__name__
    msg = f"RentalIQ local cloud could not persist this change ({what}); see server.log in the state dir"
    msg = msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (f"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>{msg}</Message></Error></ErrorResponse>").encode()
    start_response("500 Internal Server Error", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


class Middleware:
    """Runs a request under the shared lock with a :class:`~tracking.RequestContext`, then commits what it touched."""

    def __init__(self, persistence: Persistence, dispatcher: Any):
        self.p = persistence
        self.dispatcher = dispatcher

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        p = self.p
        body: bytes | None = None
        if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD", "OPTIONS"):
            # Read the body before taking the shared lock: a slow upload must not hold back commits.
            body = _read_body(environ)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("wsgi.input_terminated", None)
        mutating, everything = classify(environ, body)
        ctx = tracking.RequestContext()
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers, exc_info]
            return _no_write

        with p.active_request():
            tracking.set_context(ctx)
            try:
                with p.changing():
                    app = self.dispatcher.get_application(environ)
                    dispatched: Any = ALL if everything else _backend_dict_for(getattr(app, "service", None)) if mutating else None
                    try:
                        result, error = app(environ, capture), None
                    except Exception as exc:  # noqa: BLE001 - commit what the failed request changed, then re-raise
                        result, error = None, exc
            finally:
                tracking.set_context(None)
            keys, shards = p.dirty_for(ctx, dispatched, mutating)
            if keys:
                if ctx.new_keys:
                    externalize_new_keys(ctx.new_keys, p.blobs)
                try:
                    p.commit(p.enqueue(keys, shards))
                    failed = p.failed_among(keys)
                    if failed:
                        raise PersistenceError(", ".join(sorted(failed)))
                except Exception as exc:  # noqa: BLE001 - a failed commit fails the request (re-raised below)
                    if result is not None and hasattr(result, "close"):
                        result.close()
                    return _persistence_failed(start_response, exc)
            if error is not None:
                raise error
            start_response(*captured)
            return result
