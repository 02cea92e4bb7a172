"""Process manager for the local cloud (a persistent moto server on loopback).

Used by the CLI and the functional tests::

    cloud = LocalCloud()              # state dir and port from the environment / defaults
    cloud.start()                     # idempotent; detached server, survives this process
    s3 = cloud.client("s3")
    print(cloud.export_lines())       # eval "$(...)" in a shell: aws/boto3 then talk to it
    cloud.stop()

Files in the state dir owned by this module: ``server.pid`` (pid of the detached
server), ``port`` (the port last started on, reused by default) and ``server.log``
(the server's stdout/stderr).  The rest is documented in
:mod:`rentaliq.local.persistence`.

Only fake credentials (``test``/``test``) are ever produced here.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PORT = 4566  # same as LocalStack's, so tools that default to it work; overridable
DEFAULT_REGION = "us-east-1"
PORT_ENV = "RENTALIQ_LOCAL_PORT"
HOME_ENV = "RENTALIQ_HOME"
HEALTH_PATH = "/_rentaliq/health"
SERVER_MODULE = "rentaliq.local.server"
PID_FILE = "server.pid"
PORT_FILE = "port"
LOG_FILE = "server.log"
_LOG_ROTATE_BYTES = 10 * 1024 * 1024

# Popen objects of servers started by this process, so they are reaped (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class LocalCloudError(RuntimeError):
    """The local cloud could not be started/stopped; the message says what to do."""


class PortInUseError(LocalCloudError):
    pass


class IncompatibleStateError(LocalCloudError):
    pass


def default_state_dir() -> Path:
    """``$RENTALIQ_HOME``; else ``/var/lib/rentaliq`` as root; else the XDG state dir."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/rentaliq")
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "rentaliq"
    return Path.home() / ".local" / "state" / "rentaliq"


@dataclass(frozen=True)
class CloudStatus:
    running: bool
    pid: int | None
    endpoint: str
    state_dir: Path


def _parse_port(value: Any, source: str) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        raise LocalCloudError(f"invalid port {value!r} from {source}: expected an integer 1-65535") from None
    if not 0 < port < 65536:
        raise LocalCloudError(f"invalid port {port} from {source}: expected 1-65535")
    return port


class LocalCloud:
    def __init__(self, state_dir: Path | None = None, port: int | None = None, host: str = "127.0.0.1"):
        self.state_dir = Path(state_dir).expanduser().resolve() if state_dir is not None else default_state_dir().resolve()
        self.host = host
        if port is not None:
            self.port = _parse_port(port, "the port argument")
        elif os.environ.get(PORT_ENV):
            self.port = _parse_port(os.environ[PORT_ENV], PORT_ENV)
        else:
            persisted = self._read_int(PORT_FILE)
            self.port = persisted if persisted and 0 < persisted < 65536 else DEFAULT_PORT

    # ------------------------------------------------------------------ basics

    @property
    def endpoint_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _path(self, name: str) -> Path:
        return self.state_dir / name

    def _read_int(self, name: str) -> int | None:
        try:
            return int(self._path(name).read_text().strip())
        except (OSError, ValueError):
            return None

    def _write_text(self, name: str, text: str) -> None:
        path = self._path(name)
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def _health(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """The server's health document if *a RentalIQ local cloud* answers on our port."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", HEALTH_PATH)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                return None
            doc = json.loads(data)
            return doc if isinstance(doc, dict) and doc.get("status") == "ok" else None
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def _ours(self, health: dict[str, Any] | None) -> bool:
        return bool(health) and Path(str(health.get("state_dir"))) == self.state_dir  # type: ignore[union-attr]

    # ------------------------------------------------------------------ status

    def status(self) -> CloudStatus:
        pid = self._read_int(PID_FILE)
        health = self._health()
        if self._ours(health):
            hpid = int(health["pid"])  # type: ignore[index]
            if _alive(hpid) and (pid is None or pid == hpid):
                return CloudStatus(True, hpid, self.endpoint_url, self.state_dir)
        alive = pid is not None and _alive(pid) and _is_server_process(pid)
        return CloudStatus(False, pid if alive else None, self.endpoint_url, self.state_dir)

    # ------------------------------------------------------------------ start

    def start(self, timeout: float = 30) -> CloudStatus:
        st = self.status()
        if st.running:
            return st
        from rentaliq.local.persistence import StateFormatError, check_state_dir

        try:
            check_state_dir(self.state_dir)
        except StateFormatError as exc:
            raise IncompatibleStateError(str(exc)) from None

        if st.pid is not None:
            from rentaliq.deploy.commands import command

            # A server for this state dir exists but does not answer (yet): give it the
            # timeout to come up rather than racing it for the state-dir lock.
            if self._wait_ready(st.pid, None, timeout):
                return self.status()
            raise LocalCloudError(
                f"local cloud server pid {st.pid} (state dir {self.state_dir}) is running but does not answer on "
                f"{self.endpoint_url}; stop it first (LocalCloud.stop() / `{command('local', 'stop')}`)\n{self._log_tail()}"
            )

        self._check_port_free()
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)  # see persistence's docstring
        log_path = self._path(LOG_FILE)
        with contextlib.suppress(OSError):
            if log_path.stat().st_size > _LOG_ROTATE_BYTES:
                os.replace(log_path, log_path.with_name(LOG_FILE + ".1"))
        env = self._server_env()
        cmd = [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
        ]
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(map(shlex.quote, cmd))}\n".encode())
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
                cwd=str(self.state_dir),
            )
        finally:
            os.close(fd)
        _CHILDREN[proc.pid] = proc
        self._write_text(PID_FILE, f"{proc.pid}\n")
        if not self._wait_ready(proc.pid, proc, timeout):
            rc = proc.poll()
            if rc is None:
                self._terminate(proc.pid, 5)
                raise LocalCloudError(f"local cloud did not answer on {self.endpoint_url} within {timeout:.0f}s; last lines of {log_path}:\n{self._log_tail()}")
            with contextlib.suppress(OSError):
                self._path(PID_FILE).unlink()
            tail = self._log_tail()
            last = _last_server_error(tail)
            if rc == 3:
                raise PortInUseError(last or self._port_message())
            if rc == 5:  # another start() won the race for this state dir: use that server
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    st = self.status()
                    if st.running:
                        self._write_text(PID_FILE, f"{st.pid}\n")
                        return st
                    time.sleep(0.1)
                raise LocalCloudError(last or f"state dir {self.state_dir} is in use by another server")
            if rc == 2:
                raise IncompatibleStateError(last or f"state dir {self.state_dir} cannot be used; see {log_path}")
            raise LocalCloudError(f"local cloud server exited with code {rc} during start; last lines of {log_path}:\n{tail}")
        self._write_text(PORT_FILE, f"{self.port}\n")
        return self.status()

    def _server_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The server never needs real AWS credentials or profiles.
        for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(k, None)
        env["AWS_ACCESS_KEY_ID"] = "test"
        env["AWS_SECRET_ACCESS_KEY"] = "test"
        env.pop("AWS_ENDPOINT_URL", None)
        # Make `-m rentaliq.local.server` importable even when rentaliq is not installed
        # (e.g. PYTHONPATH=src in the parent, or sys.path set up by a test runner).
        import rentaliq

        src = str(Path(rentaliq.__file__).resolve().parent.parent)
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if src not in parts:
            env["PYTHONPATH"] = os.pathsep.join([src, *parts])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _wait_ready(self, pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return False
            if proc is None and not _alive(pid):
                return False
            health = self._health(timeout=1.0)
            if self._ours(health) and int(health["pid"]) == pid:  # type: ignore[index]
                return True
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        return False

    def _port_message(self) -> str:
        return f"port {self.port} on {self.host} is already in use by another process; choose another port for every command with {PORT_ENV}=<port>"

    def _check_port_free(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the server: ignore TIME_WAIT
            s.bind((self.host, self.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                other = self._health()
                if other:
                    raise PortInUseError(
                        f"port {self.port} on {self.host} is used by another RentalIQ local cloud "
                        f"(pid {other.get('pid')}, state dir {other.get('state_dir')}); choose another port for every command with "
                        f"{PORT_ENV}=<port>"
                    ) from None
                raise PortInUseError(self._port_message()) from None
            raise LocalCloudError(f"cannot use {self.host}:{self.port}: {exc.strerror}") from None
        finally:
            s.close()

    def _log_tail(self, lines: int = 25) -> str:
        try:
            with open(self._path(LOG_FILE), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 16384))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return "(no server.log)"
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ stop

    def stop(self, timeout: float = 20) -> None:
        pid = self._read_int(PID_FILE)
        health = self._health()
        if self._ours(health):
            pid = int(health["pid"])  # type: ignore[index]
        if pid is not None and _alive(pid) and (self._ours(health) or _is_server_process(pid)):
            self._terminate(pid, timeout)
        with contextlib.suppress(OSError):
            self._path(PID_FILE).unlink()

    def _terminate(self, pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if _wait_dead(pid, timeout):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_dead(pid, 5)

    # ------------------------------------------------------------------ clients

    def env(self, *, write_profile: bool = True) -> dict[str, str]:
        """Variables that send every aws CLI (v1, v2) and SDK call to this cloud, with test credentials only."""
        values = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": DEFAULT_REGION,
            "AWS_REGION": DEFAULT_REGION,
        }
        if write_profile:
            from rentaliq.local import aws_profile

            config, credentials, _ = aws_profile.write(self.state_dir, self.endpoint_url, DEFAULT_REGION)
            values.update({"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_PROFILE": aws_profile.PROFILE})
        return values

    def export_lines(self) -> str:
        # A real session token left in the shell would pair with the test keys: drop it. The aws wrapper goes first
        # on PATH (see rentaliq.local.aws_profile for why awscli v1 needs it).
        lines = "unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_DEFAULT_PROFILE\n" + "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.env().items())
        return lines + f'export PATH={shlex.quote(str(self.state_dir / "aws" / "bin"))}:"$PATH"\n'

    def client(self, service: str, region: str = DEFAULT_REGION) -> Any:
        """A boto3 client for the local cloud, with fake credentials. Ignores ``AWS_PROFILE``
        (a profile that exists only on the real account must not break local use)."""
        import boto3
        import botocore.session
        from botocore.config import Config
        from botocore.configprovider import ConstantProvider

        core = botocore.session.Session()
        core.get_component("config_store").set_config_provider("profile", ConstantProvider(None))
        session = boto3.session.Session(botocore_session=core, aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
        return session.client(
            service,
            endpoint_url=self.endpoint_url,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=120,
            ),
        )


# ---------------------------------------------------------------------- processes


def _alive(pid: int) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


def _is_server_process(pid: int) -> bool:
    """Whether ``pid`` runs our server module (never signal an unrelated process)."""
    if pid in _CHILDREN:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return SERVER_MODULE.encode() in fh.read()
    except OSError:
        return False  # no /proc (macOS): only trust the health endpoint


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    proc = _CHILDREN.get(pid)
    while time.monotonic() < deadline:
        if proc is not None:
            try:
                proc.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
                _CHILDREN.pop(pid, None)
                return True
            except subprocess.TimeoutExpired:
                continue
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _last_server_error(tail: str) -> str | None:
    for line in reversed(tail.splitlines()):
        if line.startswith("rentaliq local cloud: "):
            return line[len("rentaliq local cloud: ") :]
    return None
