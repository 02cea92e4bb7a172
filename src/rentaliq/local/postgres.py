"""Real PostgreSQL 15 servers behind the local cloud's RDS DB instances.

Emulating RDS with a fake wire protocol would let application bugs (SQL, TLS,
auth, extensions) slip through to AWS, so every local DB instance is a real
``postgres`` process on 127.0.0.1 with the same shape as an RDS instance: a
master user that is powerful but not a superuser, scram-sha-256 passwords,
TLS that can be made mandatory (``rds.force_ssl``) and pg_stat_statements.

Layout under ``root_dir`` (one directory per instance)::

    <root_dir>/<instance-id>/
        instance.json   metadata that lets a later process restart the server on the same port
        admin.secret    password of the internal superuser ``rdsadmin`` (0600, never logged)
        server.crt      public copy of the self-signed server certificate, for sslrootcert=
        server.log      server log (pg_ctl -l)
        run/            Unix socket directory (absent when the path would be too long)
        data/           PGDATA, owned by the server user

Admin tasks (creating the master role and database, changing passwords,
reloading pg_hba) connect over TCP+TLS as ``rdsadmin`` with the random password
from ``admin.secret``, so they work even when there is no Unix socket and from
TCP nothing but password authentication is ever accepted.  The name mirrors
RDS, whose own superuser is also ``rdsadmin``, and keeps ``postgres`` free for
the (very common) master username ``postgres``.

PostgreSQL refuses to run as root, so when this process is root every server
process (initdb, pg_ctl, postgres) runs as the ``postgres`` system user.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import os
import pwd
import random
import re
import secrets
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg import sql

logger = logging.getLogger(__name__)

__all__ = [
    "ADMIN_USER",
    "Endpoint",
    "PostgresEngine",
    "PostgresEngineError",
    "PostgresInstanceNotFound",
    "PostgresNotInstalled",
    "find_pg_bin",
]

PG_MAJOR = 15
ADMIN_USER = "rdsadmin"
"""Internal bootstrap superuser; reserved, like on RDS."""

HOST = "127.0.0.1"
Status = Literal["running", "stopped", "absent"]

_PG_BIN_ENV = "RENTALIQ_PG_BIN"
_DEFAULT_PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
_INSTALL_HINT = (
    f"install the server with `apt-get install postgresql-{PG_MAJOR}` (Debian/Ubuntu) "
    f"or set {_PG_BIN_ENV} to the directory holding initdb, pg_ctl and postgres"
)

# Below Linux's default ephemeral range (32768-60999): a port picked there could be
# taken by some outgoing connection by the time a later process restarts the server.
_PORT_RANGE = (20000, 29999)
_SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_START_TIMEOUT_S = 30
_STOP_TIMEOUT_S = 60
_LOG_TAIL_LINES = 5
_INSTANCE_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
_RESERVED_ROLES = {ADMIN_USER, "rds_superuser", "public", "none"}
_RESERVED_DBS = {"template0", "template1", ADMIN_USER}
_HBA_MARKER = "# Managed by rentaliq.local.postgres"


@dataclass(frozen=True)
class Endpoint:
    """Where clients reach an instance; stable for the instance's lifetime, like an RDS endpoint."""

    host: str
    port: int


class PostgresNotInstalled(RuntimeError):
    """The PostgreSQL 15 server binaries are missing, so no RDS instance can be backed."""


class PostgresEngineError(RuntimeError):
    """A server could not be created, started, stopped or administered."""


class PostgresInstanceNotFound(PostgresEngineError):
    """The instance has no (completely created) directory under root_dir."""


# --------------------------------------------------------------------------- binaries


def find_pg_bin() -> Path:
    """Locate PostgreSQL 15 server binaries.

    RDS instances are pinned to major version 15, and a data directory made by
    another major version cannot be started by 15, so other versions are
    refused rather than used.  An explicit RENTALIQ_PG_BIN is never second-guessed
    with a fallback: a wrong setting must be noticed.
    """
    explicit = os.environ.get(_PG_BIN_ENV)
    if explicit:
        return _check_bin_dir(Path(explicit), f"{_PG_BIN_ENV}={explicit}")

    candidates: list[Path] = [_DEFAULT_PG_BIN]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    problems: list[str] = []
    for candidate in dict.fromkeys(candidates):  # de-duplicate, keep order
        try:
            return _check_bin_dir(candidate, str(candidate))
        except PostgresNotInstalled as exc:
            problems.append(str(exc).split(";")[0])
    raise PostgresNotInstalled(
        f"PostgreSQL {PG_MAJOR} server binaries not found ({', '.join(problems)}); {_INSTALL_HINT}"
    )


def _check_bin_dir(bin_dir: Path, label: str) -> Path:
    missing = [name for name in _REQUIRED_BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise PostgresNotInstalled(f"{label}: no {', '.join(missing)}; {_INSTALL_HINT}")
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PostgresNotInstalled(f"{label}: cannot run postgres --version ({exc}); {_INSTALL_HINT}") from exc
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out.stdout)
    if not match:
        raise PostgresNotInstalled(f"{label}: unrecognised `postgres --version` output; {_INSTALL_HINT}")
    if int(match.group(1)) != PG_MAJOR:
        raise PostgresNotInstalled(
            f"{label}: is PostgreSQL {match.group(1)}, RDS instances need {PG_MAJOR}; {_INSTALL_HINT}"
        )
    return bin_dir


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _ServerUser:
    """The OS account the servers run as; ``switch`` means we are root and must drop to it."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    switch: bool


def _resolve_server_user() -> _ServerUser:
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return _ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, (), entry.pw_dir, switch=False)
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresEngineError(
            "running as root, but PostgreSQL refuses to run as root and there is no 'postgres' "
            f"system user to run it as; {_INSTALL_HINT.split(' or ')[0]} (creates the user) "
            "or run the local cloud as an ordinary user"
        ) from None
    if entry.pw_uid == 0:
        raise PostgresEngineError("the 'postgres' system user has uid 0; PostgreSQL refuses to run as root")
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, switch=True)


def _locale() -> str:
    """C.UTF-8 keeps byte-order collation (deterministic) while upper()/lower() still handle non-ASCII."""
    for candidate in ("/usr/lib/locale/C.utf8", "/usr/lib/locale/C.UTF-8"):
        if Path(candidate).exists():
            return "C.UTF-8"
    return "C"


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _self_signed_cert(common_name: str) -> tuple[bytes, bytes]:
    """A P-256 key is generated in ~1 ms, keeping create() fast; RSA-2048 costs ~100 ms."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def _pg_error(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or _one_line(str(exc))


@dataclass(frozen=True)
class _Meta:
    """Persisted per-instance facts (never the password) so another process can manage the server."""

    instance_id: str
    port: int
    force_ssl: bool
    master_username: str
    dbname: str | None
    ready: bool = False  # False while create() runs; a leftover False means a crashed create
    desired: Literal["running", "stopped"] = "running"  # what start_all() restores
    pg_major: int = PG_MAJOR
    created_at: str = ""


# --------------------------------------------------------------------------- engine


class PostgresEngine:
    """One real PostgreSQL server per RDS instance, all under root_dir (e.g. <state>/postgres/<instance-id>/).

    Thread-safe within one process (moto serves requests from threads); two
    processes must not manage the same root_dir at the same time.
    """

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = Path(root_dir).absolute()
        # Resolved lazily so that a local cloud without RDS instances works
        # on machines without PostgreSQL.
        self._pg_bin: Path | None = None
        self._user: _ServerUser | None = None
        self._guard = threading.Lock()
        self._port_guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}

    # ------------------------------------------------------------------ public API

    def create(
        self,
        instance_id: str,
        *,
        master_username: str,
        master_password: str,
        dbname: str | None,
        force_ssl: bool = True,
        port: int | None = None,
    ) -> Endpoint:
        """Create and start a server; on an existing instance only make sure it runs.

        Idempotent because the local cloud replays its state after a restart.
        A half-created instance (crash mid-create) is wiped and created again.
        """
        _check_instance_id(instance_id)
        _check_role_name(master_username)
        _check_password(instance_id, master_password)
        if dbname is not None:
            _check_db_name(dbname)
        if port is not None and not 1024 <= port <= 65535:
            raise PostgresEngineError(f"postgres instance {instance_id!r}: port {port} is outside 1024-65535")
        with self._lock(instance_id):
            meta = self._read_meta(instance_id)
            if meta is not None and meta.ready:
                logger.info("postgres instance %s already exists; ensuring it runs", instance_id)
                return self._start_locked(meta, remember=True)
            if self._dir(instance_id).exists():
                logger.warning("postgres instance %s: removing leftovers of an unfinished create", instance_id)
                self._destroy_locked(instance_id)
            started = time.monotonic()
            try:
                endpoint = self._create_locked(
                    instance_id, master_username, master_password, dbname, force_ssl, port
                )
            except BaseException:
                with suppress(Exception):
                    self._destroy_locked(instance_id)
                raise
            logger.info(
                "created postgres instance %s on %s:%d in %.2fs",
                instance_id,
                endpoint.host,
                endpoint.port,
                time.monotonic() - started,
            )
            return endpoint

    def start(self, instance_id: str) -> Endpoint:
        """Start the server (no-op when running) and wait until it accepts connections."""
        with self._lock(instance_id):
            return self._start_locked(self._require_meta(instance_id), remember=True)

    def stop(self, instance_id: str) -> None:
        """Fast shutdown (like RDS StopDBInstance); start_all() will then leave it stopped."""
        with self._lock(instance_id):
            meta = self._require_meta(instance_id)
            self._stop_locked(instance_id)
            if meta.desired != "stopped":
                self._write_meta(replace(meta, desired="stopped"))

    def reboot(self, instance_id: str) -> Endpoint:
        """Stop and start, so settings that need a restart take effect (RDS RebootDBInstance)."""
        with self._lock(instance_id):
            meta = self._require_meta(instance_id)
            self._stop_locked(instance_id)
            return self._start_locked(meta, remember=True)

    def delete(self, instance_id: str) -> None:
        """Stop the server and remove everything of the instance; no-op when absent."""
        _check_instance_id(instance_id)
        with self._lock(instance_id):
            if not self._dir(instance_id).exists():
                return
            self._destroy_locked(instance_id)
            logger.info("deleted postgres instance %s", instance_id)
        with self._guard:
            self._locks.pop(instance_id, None)

    def rename(self, instance_id: str, new_id: str) -> Endpoint:
        """Move an instance to a new identifier (RDS ModifyDBInstance NewDBInstanceIdentifier).

        The server is stopped, its directory renamed and, if it was meant to run, started again under the
        new name on the same port, so no server is ever left running under the old identifier.
        """
        _check_instance_id(new_id)
        with self._lock(instance_id), self._lock(new_id):
            meta = self._require_meta(instance_id)
            if self._dir(new_id).exists():
                raise PostgresEngineError(f"postgres instance {new_id!r} already exists under {self.root_dir}")
            self._stop_locked(instance_id)
            self._dir(instance_id).rename(self._dir(new_id))
            meta = replace(meta, instance_id=new_id)
            self._write_meta(meta)
            if meta.desired == "running":
                self._start_locked(meta, remember=False)
        with self._guard:
            self._locks.pop(instance_id, None)
        logger.info("renamed postgres instance %s to %s", instance_id, new_id)
        return Endpoint(HOST, meta.port)

    def recover(self, instance_id: str, on_down: Callable[[], None], attempts: int = 3) -> bool:
        """Restart a server that should run but died (crash, kill -9); False when nothing was to do.

        Checked under the instance lock, so a stop, reboot or delete in progress is never mistaken
        for a crash. ``on_down`` runs before the restart (the caller shows the recovery). A start
        right after a kill -9 can meet the dead postmaster's children still leaving, hence retries.
        """
        with self._lock(instance_id):
            meta = self._require_meta(instance_id)
            if meta.desired != "running" or self._postmaster_pid(instance_id) is not None:
                return False
            on_down()
            for attempt in range(1, attempts + 1):
                try:
                    self._start_locked(meta, remember=False)
                    return True
                except (PostgresEngineError, OSError) as exc:  # OSError: e.g. its data directory is gone
                    if attempt == attempts:
                        raise PostgresEngineError(f"postgres instance {instance_id!r} did not come back: {exc}") from None
                    time.sleep(1)
        return False

    def set_master_password(self, instance_id: str, username: str, password: str) -> None:
        """Change a role's password (RDS ModifyDBInstance MasterUserPassword).

        The password is hashed client-side into a SCRAM verifier, so the
        plaintext never reaches the server's statement text, logs or
        pg_stat_statements, and never appears on any command line.
        """
        _check_role_name(username)
        _check_password(instance_id, password)
        with self._lock(instance_id):
            meta = self._require_running(instance_id)
            with self._admin_connection(meta) as conn:
                try:
                    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
                    if exists is None:
                        raise PostgresEngineError(
                            f"postgres instance {instance_id!r}: role {username!r} does not exist"
                        )
                    conn.execute(
                        sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                            sql.Identifier(username), sql.Literal(_verifier(conn, username, password))
                        )
                    )
                except psycopg.Error as exc:
                    raise PostgresEngineError(
                        f"postgres instance {instance_id!r}: cannot change the password of {username!r}: {_pg_error(exc)}"
                    ) from None
        logger.info("postgres instance %s: password of role %s changed", instance_id, username)

    def set_force_ssl(self, instance_id: str, force_ssl: bool) -> None:
        """Rewrite pg_hba (the rds.force_ssl parameter) and wait until new connections obey it."""
        with self._lock(instance_id):
            meta = replace(self._require_meta(instance_id), force_ssl=force_ssl)
            self._write_meta(meta)
            self._write_hba(meta)
            if self._postmaster_pid(instance_id) is not None:
                self._reload(meta)
        logger.info("postgres instance %s: force_ssl=%s", instance_id, force_ssl)

    def endpoint(self, instance_id: str) -> Endpoint | None:
        """The endpoint of an existing instance, running or not (it never changes)."""
        meta = self._read_meta(instance_id) if _INSTANCE_ID_RE.match(instance_id) else None
        if meta is None or not meta.ready:
            return None
        return Endpoint(HOST, meta.port)

    def status(self, instance_id: str) -> Status:
        """Cheap (no subprocess): reads postmaster.pid and probes the pid."""
        if self.endpoint(instance_id) is None:
            return "absent"
        return "running" if self._postmaster_pid(instance_id) is not None else "stopped"

    def instances(self) -> list[str]:
        """Completely created instances, sorted."""
        if not self.root_dir.is_dir():
            return []
        return sorted(p.name for p in self.root_dir.iterdir() if self.endpoint(p.name) is not None)

    def tls_cert_path(self, instance_id: str) -> Path:
        """The self-signed server certificate, usable as sslrootcert with sslmode=verify-full."""
        self._require_meta(instance_id)
        return self._dir(instance_id) / "server.crt"

    def start_all(self) -> dict[str, Endpoint]:
        """Start every instance not stopped via stop(), in parallel (local cloud start-up).

        Instances stopped on purpose stay stopped, as on RDS; errors are
        collected so one broken instance does not keep the others down.
        """
        wanted = [i for i in self.instances() if self._desired(i) == "running"]
        results = self._for_each(wanted, self.start)
        return {i: ep for i, ep in results.items() if isinstance(ep, Endpoint)}

    def stop_all(self) -> None:
        """Stop every running server (local cloud shutdown) without marking them as stopped."""

        def stop_keep_desired(instance_id: str) -> None:
            with self._lock(instance_id):
                self._stop_locked(instance_id)

        self._for_each([i for i in self.instances() if self.status(i) == "running"], stop_keep_desired)

    # ------------------------------------------------------------------ create

    def _create_locked(
        self,
        instance_id: str,
        master_username: str,
        master_password: str,
        dbname: str | None,
        force_ssl: bool,
        port: int | None,
    ) -> Endpoint:
        pg_bin = self._bin()
        user = self._server_user()
        self._ensure_root_dir(instance_id)
        inst = self._dir(instance_id)
        inst.mkdir(mode=0o700)
        if user.switch:
            os.chmod(inst, 0o755)  # postgres must reach data/, run/ and server.log

        with self._port_guard:  # claim the port in instance.json before another create can pick it
            chosen = self._choose_port(instance_id, port)
            meta = _Meta(
                instance_id=instance_id,
                port=chosen,
                force_ssl=force_ssl,
                master_username=master_username,
                dbname=dbname,
                created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            )
            self._write_meta(meta)

        data = inst / "data"
        data.mkdir(mode=0o700)
        self._chown(data)
        self._write(inst / "server.log", b"", 0o600, server_owned=True)
        admin_password = secrets.token_urlsafe(32)
        self._write(inst / "admin.secret", admin_password.encode(), 0o600, server_owned=False)
        pwfile = inst / ".initdb-pwfile"
        self._write(pwfile, admin_password.encode() + b"\n", 0o600, server_owned=True)
        try:
            self._run(
                instance_id,
                "initdb",
                [
                    str(pg_bin / "initdb"),
                    "-D", str(data),
                    "-U", ADMIN_USER,
                    f"--pwfile={pwfile}",
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    f"--locale={_locale()}",
                    "--no-sync",  # a crash during local create just means create again
                    "--no-instructions",
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)

        cert_pem, key_pem = _self_signed_cert(instance_id)
        self._write(data / "server.crt", cert_pem, 0o644, server_owned=True)
        self._write(data / "server.key", key_pem, 0o600, server_owned=True)
        self._write(inst / "server.crt", cert_pem, 0o644, server_owned=False)
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# RentalIQ local cloud settings (rewritten on every start)\ninclude 'rentaliq.conf'\n")

        self._start_locked(meta, remember=False)
        try:
            # In template1 first, so dbname and every database created later inherit it:
            # pg_stat_statements is not a trusted extension, so the (non-superuser) master
            # could not create it, while on RDS it can.
            with self._admin_connection(meta, dbname="template1") as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            with self._admin_connection(meta) as conn:
                self._bootstrap_sql(conn, master_username, master_password, dbname)
        except psycopg.Error as exc:
            raise PostgresEngineError(
                f"postgres instance {instance_id!r}: cannot create master user/database: {_pg_error(exc)}"
            ) from None
        self._write_meta(replace(meta, ready=True))
        return Endpoint(HOST, meta.port)

    @staticmethod
    def _bootstrap_sql(conn: psycopg.Connection, username: str, password: str, dbname: str | None) -> None:
        # rds_superuser mirrors RDS: monitoring and signalling powers without being a superuser,
        # so code that only works as superuser fails locally as it would on AWS.
        conn.execute("CREATE ROLE rds_superuser NOLOGIN")
        conn.execute("GRANT pg_monitor, pg_signal_backend, pg_checkpoint TO rds_superuser")
        conn.execute(
            sql.SQL("CREATE ROLE {} WITH LOGIN CREATEDB CREATEROLE PASSWORD {} IN ROLE rds_superuser").format(
                sql.Identifier(username), sql.Literal(_verifier(conn, username, password))
            )
        )
        if dbname is None:
            return
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(username))
            )
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(username))
            )

    def _choose_port(self, instance_id: str, requested: int | None) -> int:
        claimed: set[int] = set()
        for other in self.root_dir.iterdir():
            if other.name != instance_id:
                with suppress(PostgresEngineError):  # a corrupt neighbour must not block new instances
                    if (meta := self._read_meta(other.name)) is not None:
                        claimed.add(meta.port)
        if requested is not None:
            if requested in claimed:
                raise PostgresEngineError(
                    f"postgres instance {instance_id!r}: port {requested} is already used by another instance"
                )
            if not _port_bindable(requested):
                raise PostgresEngineError(
                    f"postgres instance {instance_id!r}: port {requested} is already in use on {HOST}"
                )
            return requested
        rng = random.SystemRandom()
        for _ in range(200):
            candidate = rng.randint(*_PORT_RANGE)
            if candidate not in claimed and _port_bindable(candidate):
                return candidate
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # crowded range: any free port
            probe.bind((HOST, 0))
            return int(probe.getsockname()[1])

    # ------------------------------------------------------------------ start / stop

    def _start_locked(self, meta: _Meta, *, remember: bool) -> Endpoint:
        instance_id = meta.instance_id
        if remember and meta.desired != "running":
            meta = replace(meta, desired="running")
            self._write_meta(meta)
        endpoint = Endpoint(HOST, meta.port)
        if self._postmaster_pid(instance_id) is not None:
            return endpoint
        inst = self._dir(instance_id)
        self._check_traversable(inst, instance_id)
        # Re-derived on every start, so a moved root_dir or edited metadata still yields a working server.
        self._write_conf(meta)
        self._write_hba(meta)
        log = inst / "server.log"
        if not log.exists():
            self._write(log, b"", 0o600, server_owned=True)
        started = time.monotonic()
        result = self._run(
            instance_id,
            "start",
            [
                str(self._bin() / "pg_ctl"),
                "start",
                "-D", str(inst / "data"),
                "-l", str(log),
                "-w",
                "-t", str(_START_TIMEOUT_S),
                "-s",
            ],
            timeout=_START_TIMEOUT_S + 15,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresEngineError(
                f"postgres instance {instance_id!r}: server did not start on {HOST}:{meta.port} "
                f"(pg_ctl exit {result.returncode}); "
                f"server log tail: {self._log_tail(instance_id)}"
            )
        logger.info(
            "started postgres instance %s on %s:%d in %.2fs",
            instance_id,
            HOST,
            meta.port,
            time.monotonic() - started,
        )
        return endpoint

    def _stop_locked(self, instance_id: str, mode: str = "fast") -> None:
        if self._postmaster_pid(instance_id) is None:
            return
        result = self._run(
            instance_id,
            "stop",
            [
                str(self._bin() / "pg_ctl"),
                "stop",
                "-D", str(self._dir(instance_id) / "data"),
                "-m", mode,
                "-w",
                "-t", str(_STOP_TIMEOUT_S),
                "-s",
            ],
            timeout=_STOP_TIMEOUT_S + 15,
            check=False,
        )
        if result.returncode != 0 and self._postmaster_pid(instance_id) is not None:
            why = _one_line(result.stderr or result.stdout) or f"pg_ctl exit {result.returncode}"
            raise PostgresEngineError(
                f"postgres instance {instance_id!r}: server did not stop ({why}); "
                f"server log tail: {self._log_tail(instance_id)}"
            )
        logger.info("stopped postgres instance %s", instance_id)

    def _destroy_locked(self, instance_id: str) -> None:
        try:
            self._stop_locked(instance_id)
        except PostgresEngineError:
            self._stop_locked(instance_id, mode="immediate")
        shutil.rmtree(self._dir(instance_id))

    def _reload(self, meta: _Meta) -> None:
        """SIGHUP is asynchronous; wait until a new session sees the postmaster's new load time.

        A session forked after the postmaster reloaded also carries its new
        pg_hba, so callers can rely on the change as soon as this returns.
        """
        with self._admin_connection(meta) as conn:
            before = conn.execute("SELECT pg_conf_load_time()").fetchone()
            conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while True:
            with self._admin_connection(meta) as conn:
                after = conn.execute("SELECT pg_conf_load_time()").fetchone()
            if before is None or after is None or after[0] > before[0]:
                return
            if time.monotonic() > deadline:
                raise PostgresEngineError(
                    f"postgres instance {meta.instance_id!r}: configuration reload not seen within 10s; "
                    f"server log tail: {self._log_tail(meta.instance_id)}"
                )
            time.sleep(0.02)

    # ------------------------------------------------------------------ configuration files

    def _socket_dir(self, meta: _Meta) -> Path | None:
        """None when the socket path would exceed sun_path; TCP alone then serves everything."""
        run_dir = self._dir(meta.instance_id) / "run"
        if len(os.fsencode(str(run_dir / f".s.PGSQL.{meta.port}"))) > _SOCKET_PATH_MAX:
            return None
        return run_dir

    def _write_conf(self, meta: _Meta) -> None:
        run_dir = self._socket_dir(meta)
        if run_dir is not None and not run_dir.exists():
            run_dir.mkdir(mode=0o755)
            os.chmod(run_dir, 0o755)
            self._chown(run_dir)
        lines = [
            "# Written by rentaliq.local.postgres from instance.json on every start; edits are lost.",
            f"listen_addresses = {_conf_quote(HOST)}",
            f"port = {meta.port}",
            f"unix_socket_directories = {_conf_quote(str(run_dir) if run_dir else '')}",
            "ssl = on",
            "ssl_cert_file = 'server.crt'",
            "ssl_key_file = 'server.key'",
            "password_encryption = 'scram-sha-256'",
            "shared_preload_libraries = 'pg_stat_statements'",
            "timezone = 'UTC'",  # RDS default
            "log_timezone = 'UTC'",
        ]
        self._write(self._dir(meta.instance_id) / "data" / "rentaliq.conf", "\n".join(lines) + "\n", 0o600, server_owned=True)

    def _write_hba(self, meta: _Meta) -> None:
        user = self._server_user()
        local = [
            # Lets the server's OS user reach rdsadmin over the socket for debugging
            # (e.g. `runuser -u postgres -- psql -h <dir>/run -U rdsadmin postgres`).
            f"local   all  {ADMIN_USER}  peer  map=rentaliq_admin",
            "local   all  all       scram-sha-256",
        ]
        if meta.force_ssl:
            tcp = [
                f"hostnossl  all  all  {HOST}/32  reject",
                f"hostssl    all  all  {HOST}/32  scram-sha-256",
            ]
        else:
            tcp = [f"host  all  all  {HOST}/32  scram-sha-256"]
        hba = "\n".join([f"{_HBA_MARKER} (force_ssl={meta.force_ssl}); edits are lost.", *local, *tcp]) + "\n"
        data = self._dir(meta.instance_id) / "data"
        self._write(data / "pg_hba.conf", hba, 0o600, server_owned=True)
        ident = f"{_HBA_MARKER}\nrentaliq_admin  {user.name}  {ADMIN_USER}\n"
        self._write(data / "pg_ident.conf", ident, 0o600, server_owned=True)

    # ------------------------------------------------------------------ admin connection

    @contextmanager
    def _admin_connection(self, meta: _Meta, dbname: str = "postgres") -> Iterator[psycopg.Connection]:
        inst = self._dir(meta.instance_id)
        password = (inst / "admin.secret").read_text(encoding="utf-8").strip()
        try:
            conn = psycopg.connect(
                host=HOST,
                port=meta.port,
                user=ADMIN_USER,
                password=password,
                dbname=dbname,
                sslmode="verify-full",
                sslrootcert=str(inst / "server.crt"),
                gssencmode="disable",
                connect_timeout=10,
                application_name="rentaliq-local-admin",
                # Keep our own DDL (which carries password verifiers) out of pg_stat_statements and logs.
                options="-c pg_stat_statements.track_utility=off -c log_statement=none",
                autocommit=True,
            )
        except psycopg.Error as exc:
            raise PostgresEngineError(
                f"postgres instance {meta.instance_id!r}: admin connection to {HOST}:{meta.port} failed: "
                f"{_pg_error(exc)}"
            ) from None
        try:
            yield conn
        finally:
            conn.close()

    # ------------------------------------------------------------------ state

    def _dir(self, instance_id: str) -> Path:
        return self.root_dir / instance_id

    def _lock(self, instance_id: str) -> threading.RLock:
        _check_instance_id(instance_id)
        with self._guard:
            return self._locks.setdefault(instance_id, threading.RLock())

    def _read_meta(self, instance_id: str) -> _Meta | None:
        try:
            raw = json.loads((self._dir(instance_id) / "instance.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError) as exc:
            raise PostgresEngineError(f"postgres instance {instance_id!r}: unreadable instance.json ({exc})") from None
        known = {k: v for k, v in raw.items() if k in _Meta.__dataclass_fields__}
        return _Meta(**known)

    def _write_meta(self, meta: _Meta) -> None:
        text = json.dumps(asdict(meta), indent=2, sort_keys=True) + "\n"
        self._write(self._dir(meta.instance_id) / "instance.json", text, 0o644, server_owned=False)

    def _require_meta(self, instance_id: str) -> _Meta:
        _check_instance_id(instance_id)
        meta = self._read_meta(instance_id)
        if meta is None or not meta.ready:
            raise PostgresInstanceNotFound(f"postgres instance {instance_id!r} does not exist under {self.root_dir}")
        return meta

    def _require_running(self, instance_id: str) -> _Meta:
        meta = self._require_meta(instance_id)
        if self._postmaster_pid(instance_id) is None:
            raise PostgresEngineError(f"postgres instance {instance_id!r} is stopped; start it first")
        return meta

    def _desired(self, instance_id: str) -> str:
        meta = self._read_meta(instance_id)
        return meta.desired if meta else "stopped"

    def _postmaster_pid(self, instance_id: str) -> int | None:
        """pg_ctl status would cost a subprocess; this is the same check (pid file + liveness)."""
        try:
            first = (self._dir(instance_id) / "data" / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return None  # another user's process reused the pid: not our server
        with suppress(OSError):  # guard against pid reuse after a crash
            if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
        return pid

    def _log_tail(self, instance_id: str) -> str:
        try:
            lines = (self._dir(instance_id) / "server.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        tail = [line.strip() for line in lines if line.strip()][-_LOG_TAIL_LINES:]
        return " | ".join(tail) if tail else "(server log is empty)"

    # ------------------------------------------------------------------ OS plumbing

    def _bin(self) -> Path:
        if self._pg_bin is None:
            self._pg_bin = find_pg_bin()
        return self._pg_bin

    def _server_user(self) -> _ServerUser:
        if self._user is None:
            self._user = _resolve_server_user()
        return self._user

    def _ensure_root_dir(self, instance_id: str) -> None:
        user = self._server_user()
        missing: list[Path] = []
        probe = self.root_dir
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        for directory in reversed(missing):
            directory.mkdir(exist_ok=True)
            if user.switch:
                os.chmod(directory, 0o755)  # only directories we created; never widen existing ones
        self._check_traversable(self.root_dir, instance_id)

    def _check_traversable(self, path: Path, instance_id: str) -> None:
        """Fail early and clearly instead of letting initdb/postgres die with 'Permission denied'."""
        user = self._server_user()
        if not user.switch:
            return
        groups = set(user.groups) | {user.gid}
        for directory in [*reversed(path.parents), path]:
            st = directory.stat()
            if st.st_uid == user.uid:
                ok = st.st_mode & stat.S_IXUSR
            elif st.st_gid in groups:
                ok = st.st_mode & stat.S_IXGRP
            else:
                ok = st.st_mode & stat.S_IXOTH
            if not ok:
                raise PostgresEngineError(
                    f"postgres instance {instance_id!r}: PostgreSQL runs as system user {user.name!r} "
                    "(it refuses to run as root) and cannot "
                    f"traverse {directory}; fix: `chmod o+x {directory}` or keep the local cloud state "
                    "outside it (e.g. under /tmp or /var/lib)"
                )

    def _chown(self, path: Path) -> None:
        user = self._server_user()
        if user.switch:
            os.chown(path, user.uid, user.gid)

    def _write(self, path: Path, content: str | bytes, mode: int, *, server_owned: bool) -> None:
        """Atomic write; the file is created with its final mode, so secrets are never briefly readable."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)
            if server_owned and self._server_user().switch:
                os.fchown(fd, self._server_user().uid, self._server_user().gid)
            os.write(fd, data)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)

    def _run(
        self,
        instance_id: str,
        what: str,
        argv: list[str],
        *,
        timeout: float,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server user with a clean environment.

        Stray PG* variables (PGDATA, PGPORT, ...) must not redirect the tools,
        and the server should not inherit the local cloud's AWS credentials.
        """
        user = self._server_user()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": user.home,
            "USER": user.name,
            "LOGNAME": user.name,
            "LC_ALL": _locale(),
            "TZ": "UTC",
        }
        if not user.switch and "LD_LIBRARY_PATH" in os.environ:  # custom RENTALIQ_PG_BIN builds
            env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
        switch: dict[str, object] = {}
        if user.switch:
            # Handled in C by _posixsubprocess (unlike preexec_fn, safe with threads);
            # extra_groups drops root's supplementary groups.
            switch = {"user": user.uid, "group": user.gid, "extra_groups": list(user.groups)}
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env=env,
                cwd="/",
                timeout=timeout,
                check=False,
                **switch,  # type: ignore[arg-type]
            )
        except subprocess.TimeoutExpired:
            raise PostgresEngineError(
                f"postgres instance {instance_id!r}: {what} timed out after {timeout:.0f}s; "
                f"server log tail: {self._log_tail(instance_id)}"
            ) from None
        except OSError as exc:
            raise PostgresEngineError(f"postgres instance {instance_id!r}: cannot run {argv[0]}: {exc}") from None
        if check and result.returncode != 0:
            raise PostgresEngineError(
                f"postgres instance {instance_id!r}: {what} failed (exit {result.returncode}): "
                f"{_one_line(result.stderr or result.stdout)[-500:]}"
            )
        return result

    def _for_each(self, instance_ids: list[str], action: Callable[[str], object]) -> dict[str, object]:
        if not instance_ids:
            return {}
        results: dict[str, object] = {}
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=min(8, len(instance_ids))) as pool:
            futures = {i: pool.submit(action, i) for i in instance_ids}
            for instance_id, future in futures.items():
                try:
                    results[instance_id] = future.result()
                except Exception as exc:  # noqa: BLE001 - reported together below
                    errors.append(str(exc))
        if errors:
            raise PostgresEngineError(f"{len(errors)} of {len(instance_ids)} instance(s) failed: " + "; ".join(errors))
        return results


# --------------------------------------------------------------------------- validation


def _verifier(conn: psycopg.Connection, username: str, password: str) -> str:
    """Hash client-side (libpq PQencryptPasswordConn, as psql's \\password does)."""
    return conn.pgconn.encrypt_password(password.encode("utf-8"), username.encode("utf-8"), b"scram-sha-256").decode(
        "ascii"
    )


def _check_password(instance_id: str, password: str) -> None:
    # Never echo the password itself in the error.
    if not password or "\x00" in password:
        raise PostgresEngineError(f"postgres instance {instance_id!r}: password must be non-empty and contain no NUL")


def _check_instance_id(instance_id: str) -> None:
    """It becomes a directory name: refuse anything that could escape root_dir."""
    if not _INSTANCE_ID_RE.match(instance_id):
        raise PostgresEngineError(
            f"invalid DB instance identifier {instance_id!r}: 1-63 letters, digits or hyphens, starting with a letter"
        )


def _check_role_name(name: str) -> None:
    if not name or len(name.encode("utf-8")) > 63 or "\x00" in name:
        raise PostgresEngineError(f"invalid master username {name!r}: 1-63 bytes")
    if name.lower() in _RESERVED_ROLES or name.lower().startswith("pg_"):
        raise PostgresEngineError(f"master username {name!r} is reserved")


def _check_db_name(name: str) -> None:
    if not name or len(name.encode("utf-8")) > 63 or "\x00" in name:
        raise PostgresEngineError(f"invalid database name {name!r}: 1-63 bytes")
    if name.lower() in _RESERVED_DBS:
        raise PostgresEngineError(f"database name {name!r} is reserved")
