"""The local cloud server process: moto's WSGI app behind a persistence middleware.

Run as ``python -m rentaliq.local.server --host 127.0.0.1 --port N --state-dir DIR``
(normally by :class:`rentaliq.local.cloud.LocalCloud`, which sends stdout/stderr to
``<state-dir>/server.log``).

Start-up order: validate arguments -> open the state dir (format check + lock) -> bind
the port -> ``extensions.install(state_dir, endpoint)`` (patches moto classes, so
it must run before any state is unpickled; ``RENTALIQ_LOCAL_ENDPOINT`` is set for
extensions that call the server over HTTP) -> restore the snapshot ->
``extensions.after_restore()`` -> serve.  SIGTERM/SIGINT: stop accepting, let in-flight
requests finish, take a final snapshot, garbage-collect blobs, ``extensions.before_stop()``,
exit 0.

Nothing that could contain a secret is written to stdout: werkzeug's per-request log
goes to ``<state-dir>/access.log`` as method, path (without query string), status and
size; request and response bodies are never logged.

Exit codes: 0 clean shutdown, 2 unusable state dir (incompatible format, damaged),
3 port already in use, 4 invalid arguments, 5 state dir in use by another server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rentaliq.urls import is_loopback

HEALTH_PATH = "/_rentaliq/health"
EXIT_STATE = 2
EXIT_PORT = 3
EXIT_ARGS = 4
EXIT_LOCKED = 5

log = logging.getLogger("rentaliq.local.server")


SERVER_ERRORS_ENV = "RENTALIQ_SERVER_ERRORS_FILE"


def _report_server_error(line: str) -> None:
    """An HTTP 5xx is a bug of the local cloud; the test suite sets this file and fails the test that caused one."""
    target = os.environ.get(SERVER_ERRORS_ENV)
    if target:
        with contextlib.suppress(OSError), open(target, "a", encoding="utf-8") as errors:
            errors.write(f"{os.getpid()} {line}\n")


def _fail(code: int, message: str) -> None:
    print(f"rentaliq local cloud: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rentaliq.local.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $RENTALIQ_LOCAL_PORT or 4566)")
    parser.add_argument("--state-dir", type=Path, default=None, help="state directory (default: see rentaliq.local.cloud)")
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address (exposes test credentials' cloud)")
    parser.add_argument("--log-level", default=os.environ.get("RENTALIQ_LOCAL_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--ephemeral",
        action="store_true",
        help="do not restore or save any state (plain moto plus extensions; for measurements and debugging)",
    )
    return parser.parse_args(argv)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            _fail(
                EXIT_PORT,
                f"port {port} on {host} is already in use by another process; choose another port (RENTALIQ_LOCAL_PORT=<port> or --port <port>)",
            )
        _fail(EXIT_PORT, f"cannot listen on {host}:{port}: {exc.strerror}")
    sock.set_inheritable(False)
    return sock


def _setup_logging(state_dir: Path, level: str) -> logging.Logger:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # werkzeug: errors only, to stderr (server.log); never its per-request lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    access = logging.getLogger("rentaliq.local.access")
    access.propagate = False
    access.setLevel(logging.INFO)
    handler = logging.handlers.RotatingFileHandler(state_dir / "access.log", maxBytes=5 * 1024 * 1024, backupCount=2, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access.addHandler(handler)
    return access


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    os.umask(0o077)
    with contextlib.suppress(Exception):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    host: str = args.host
    if not is_loopback(host) and not args.allow_remote:
        _fail(EXIT_ARGS, f"refusing to bind {host}: the local cloud accepts any credentials; use --allow-remote to override")
    port = args.port
    if port is None:
        port = int(os.environ.get("RENTALIQ_LOCAL_PORT", "4566"))
    if not 0 < port < 65536:
        _fail(EXIT_ARGS, f"invalid port {port}")
    state_dir: Path = args.state_dir
    if state_dir is None:
        from rentaliq.local.cloud import default_state_dir

        state_dir = default_state_dir()
    state_dir = state_dir.expanduser().resolve()

    t0 = time.perf_counter()
    from rentaliq.local import state as persistence_mod

    persistence = persistence_mod.Persistence(state_dir)
    try:
        persistence.open()
    except persistence_mod.StateFormatError as exc:
        _fail(EXIT_STATE, str(exc))
    except persistence_mod.StateLockedError as exc:
        _fail(EXIT_LOCKED, str(exc))
    access_log = _setup_logging(state_dir, args.log_level)
    sock = _bind(host, port)

    # SIGTERM/SIGINT from now on: stop serving (or do not start), final snapshot, exit 0.
    stopping = threading.Event()
    server: Any = None

    def on_signal(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("received %s, shutting down", signal.Signals(signum).name)
        if server is not None:
            threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    os.environ["MOTO_PORT"] = str(port)  # moto builds some self-referencing URLs from it

    # Heavy imports only now (argument/port errors above stay fast).
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from rentaliq.local import extensions

    endpoint = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    extensions.install(state_dir, endpoint)
    report: dict[str, Any] = {"services": 0, "seconds": 0.0, "ephemeral": args.ephemeral}
    if not args.ephemeral:
        persistence.install_hooks()
        try:
            report = persistence.restore()
        except persistence_mod.StateFormatError as exc:
            _fail(EXIT_STATE, str(exc))
    extensions.after_restore()

    dispatcher = DomainDispatcherApplication(create_backend_app)
    moto_app = dispatcher if args.ephemeral else persistence.middleware(dispatcher)
    from rentaliq.local import cloudtrail_events

    moto_app = cloudtrail_events.wrap(moto_app)  # outside persistence: it sees each call's final status
    started = time.time()
    info = {"pid": os.getpid(), "host": host, "port": port, "state_dir": str(state_dir), "started": started}

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["rentaliq.t0"] = time.perf_counter()
        if environ.get("PATH_INFO") == HEALTH_PATH:
            st = persistence.stats
            body = json.dumps(
                {
                    "status": "ok",
                    **info,
                    "format": persistence_mod.FORMAT_VERSION,
                    "restore": report,
                    "commits": {
                        "count": st.commits,
                        "seconds": round(st.seconds, 4),
                        "bytes": st.bytes_written,
                        "last_ms": st.last_ms,
                        "last_services": st.last_services,
                        "failures": st.failures,
                        "files": st.files_written,
                        "lock_wait_seconds": round(st.lock_wait_seconds, 4),
                    },
                }
            ).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        routed = extensions.route(environ)
        if routed is not None:
            start_response(routed[0], routed[1])
            return [routed[2]]
        return moto_app(environ, start_response)

    class QuietHandler(MotoRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            path = getattr(self, "path", "?").split("?", 1)[0]
            t0 = getattr(self, "environ", {}).get("rentaliq.t0")
            ms = f"{(time.perf_counter() - t0) * 1000:.1f}ms" if t0 else "-"
            access_log.info('%s "%s %s" %s %s %s', self.address_string(), getattr(self, "command", "-"), path, code, size, ms)
            if str(code).startswith("5"):
                _report_server_error(f"{getattr(self, 'command', '-')} {path} {code}")

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

        def log_error(self, format: str, *args: Any) -> None:
            log.warning("http: " + format, *args)

    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler, fd=sock.fileno())
    sock.close()  # werkzeug dup()ed it
    if stopping.is_set():  # signalled while restoring
        threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

    server_json = state_dir / "server.json"
    persistence_mod.atomic_write(server_json, json.dumps(info).encode(), fsync=False)
    log.info(
        "serving on http://%s:%s (state %s; restored %s services in %.3fs; ready %.3fs after launch)",
        host,
        port,
        state_dir,
        report["services"],
        report["seconds"],
        time.perf_counter() - t0,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        if not persistence.wait_idle(15):
            log.warning("requests still running after 15s; snapshotting anyway")
        t1 = time.perf_counter()
        try:
            persistence.close(snapshot=not args.ephemeral)
            log.info("final snapshot written in %.3fs", time.perf_counter() - t1)
        finally:
            try:
                extensions.before_stop()
            except Exception:
                log.exception("extensions.before_stop failed")
            with contextlib.suppress(Exception):
                server_json.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
