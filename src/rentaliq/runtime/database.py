"""PostgreSQL connections and a pool built from the ``db/credentials`` secret, always over TLS.

Four failure modes shape this module:

* **Password rotation.**  Connections authenticated before a rotation keep working; new ones
  fail with the cached password.  Every connection (pooled or not) is opened through
  ``Database._open``, which on an authentication failure refreshes the secret (one request
  for a whole burst of failures, see ``Secrets.refresh(stale=)``) and retries once.  When the
  refreshed secret still holds the rejected password and DescribeSecret shows a rotation between
  setSecret and finishSecret, the secret is re-read every 0.1 s for up to ``_ROTATION_WINDOW_S``;
  without a rotation in progress the secret itself is wrong and the error is raised at once.
* **Restart or failover.**  Every session dies.  ``run()`` retries idempotent work on
  connection loss with bounded, jittered exponential backoff; the first loss also purges the
  pool's idle connections (``pool.check()``) so retries do not walk through dead connections one
  by one, and connections not proven alive since the last loss are pinged before use.
* **Stopped (off-hours).**  ``InstanceProbe`` (runtime/instance_state.py) asks RDS before the first
  connection, after a failed or lost one and while a request waits for the pool: DatabaseStopped at once.
* **Leaks.**  A failed libpq connection keeps the password in ``exc.pgconn``; such errors are
  re-raised as a fresh exception of the same class without it.

Busy connections are not pinged on checkout (only those idle longer than ``pool_check_idle_s``
or not used since the last connection loss), and ``query``/``execute`` reuse one cursor per
connection, so the pool adds about 1 µs to a query (benchmarks/README_runtime.md).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from rentaliq.runtime.instance_state import InstanceProbe
from rentaliq.runtime.secrets import (
    DB_CREDENTIALS,
    Credentials,
    RuntimeConfig,
    Secrets,
    SecretValue,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Database",
    "TlsStatus",
    "connection_kwargs",
    "database_url",
    "is_auth_failure",
    "is_connection_loss",
    "is_retryable",
]

T = TypeVar("T")
_now = time.monotonic

# Server-side states that mean "this session is gone, a new one will do": admin/crash shutdown,
# cannot connect now (starting up / shutting down), too many connections, and SQLSTATE class 08.
_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# Transaction conflicts: the whole transaction can be replayed if the work is idempotent.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
_AUTH_MESSAGES = ("password authentication failed", "pam authentication failed")
_CREDENTIAL_OPTIONS = frozenset({"host", "hostaddr", "port", "user", "password", "dbname", "sslmode", "sslrootcert"})
_PURGE_INTERVAL_S = 0.5
# A single-user rotation's window between setSecret (new password on the server) and finishSecret (new AWSCURRENT):
# milliseconds on the local cloud, seconds for AWS's rotation Lambda. An auth failure re-reads the secret this long.
_ROTATION_WINDOW_S = 10.0
_ROTATION_POLL_S = 0.1


# --------------------------------------------------------------------------- pure helpers


def connection_kwargs(creds: Credentials, config: RuntimeConfig) -> dict[str, Any]:
    """libpq keyword arguments (never a concatenated conninfo string, which a password can break).

    TLS is ``verify-full`` by default against ``config.resolve_ca_bundle()`` (ConfigError without one).
    """
    kwargs: dict[str, Any] = {
        "host": creds.host,
        "port": creds.port,
        "dbname": creds.dbname,
        "user": creds.username,
        "password": creds.password,
        "sslmode": config.effective_sslmode,
        "connect_timeout": max(1, round(config.connect_timeout_s)),
        "application_name": config.application_name,
    }
    ca_bundle = config.resolve_ca_bundle()
    if ca_bundle is not None:
        kwargs["sslrootcert"] = ca_bundle
    return kwargs


def database_url(creds: Credentials, *, sslmode: str = "verify-full", **params: str) -> str:
    """``postgresql://user:pw@host:port/db?sslmode=verify-full`` with user, password and dbname percent-encoded.

    ``verify-full`` means the same to every driver (libpq, Node's ``pg`` 8 and 9, JDBC): the server must
    prove it is ``host``; ``require`` does not (and Node's ``pg`` 9 will stop verifying it).

    Every reserved character (``@:/?#%[]`` and the rest) is encoded, so any password survives a
    URL parser.  The result holds the password: pass it on, do not log it.
    """
    host = creds.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    query = urlencode({"sslmode": sslmode, **params}, quote_via=quote, safe="")
    user, password, dbname = (quote(part, safe="") for part in (creds.username, creds.password, creds.dbname))
    return f"postgresql://{user}:{password}@{host}:{creds.port}/{dbname}?{query}"


def _same_credentials(fresh: SecretValue, stale: SecretValue) -> bool:
    return fresh is stale or (fresh.get("password") == stale.get("password") and fresh.get("username") == stale.get("username"))


def is_auth_failure(exc: BaseException) -> bool:
    """The server rejected the credentials (libpq reports no SQLSTATE for it, so match the message)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    if getattr(exc, "sqlstate", None) == "28P01":
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _AUTH_MESSAGES)


def is_connection_loss(exc: BaseException) -> bool:
    """The session is gone (server restart, failover, network): a new connection can redo the work."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError) or is_auth_failure(exc):
        return False
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith("08") or state in _LOST_SQLSTATES


def is_retryable(exc: BaseException) -> bool:
    """Replaying idempotent work is safe and may succeed: connection loss or a transaction conflict."""
    return is_connection_loss(exc) or getattr(exc, "sqlstate", None) in _CONFLICT_SQLSTATES


def _sanitized(exc: psycopg.OperationalError) -> psycopg.OperationalError:
    """Same class and message, without ``pgconn`` (whose repr and ``.info`` include the password)."""
    try:
        return type(exc)(str(exc))
    except Exception:  # noqa: BLE001 - an exotic subclass: fall back to the base class
        return psycopg.OperationalError(str(exc))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TlsStatus:
    """This session's row of ``pg_stat_ssl``: proof that TLS was negotiated, not just requested."""

    ssl: bool
    version: str | None
    cipher: str | None
    bits: int | None
    sslmode: str
    server_version: str
    user: str
    backend_pid: int


# --------------------------------------------------------------------------- the database


class Database:
    """Connections and a pool for the environment's database, with rotation and restart recovery.

    ``secrets`` defaults to ``Secrets(config)``; ``config`` defaults to the one ``secrets``
    carries.  The pool is created on first use; ``close()`` (or ``with``) releases it.
    """

    def __init__(self, secrets: Secrets | None = None, *, config: RuntimeConfig | None = None) -> None:
        if secrets is None:
            secrets = Secrets(config)
        self.secrets = secrets
        self.config = config if config is not None else secrets.config
        self.config.resolve_ca_bundle()  # no CA bundle to verify with: fail here, not as a pool timeout later
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._purge_lock = threading.Lock()
        self._last_loss = 0.0  # monotonic time of the last connection loss seen
        self._last_purge = -_PURGE_INTERVAL_S
        self.instance = InstanceProbe(self.secrets, ttl_s=self.config.instance_check_ttl_s)

    # ------------------------------------------------------------------ connections

    def connect(self, *, autocommit: bool = False, **options: Any) -> psycopg.Connection:
        """One new connection (the caller closes it).  TLS and credentials come from config and secret."""
        clash = sorted(_CREDENTIAL_OPTIONS & set(options))
        if clash:
            raise ValueError(f"connect() options {clash} come from the db/credentials secret and RuntimeConfig; they cannot be overridden")
        return self._open(psycopg.Connection.connect, {"autocommit": autocommit, **options})

    @property
    def pool(self) -> ConnectionPool:
        """The process's pool (opened on first access, connecting in the background)."""
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = self._make_pool()
                pool = self._pool
        return pool

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ work

    def run(
        self,
        fn: Callable[[psycopg.Connection], T],
        *,
        idempotent: bool = True,
        transaction: bool = True,
        attempts: int | None = None,
    ) -> T:
        """Call ``fn(conn)`` with a pooled connection and return its result.

        ``transaction=True`` wraps the call in one transaction (pooled connections are in
        autocommit otherwise).  When the connection is lost (restart, failover) or the
        transaction conflicts, idempotent work is replayed on a new connection, up to
        ``attempts`` tries (default ``config.retry_attempts``) with jittered exponential backoff.
        Non-idempotent work is retried only when it never started (no connection was obtained).
        """
        pool = self.pool
        tries = attempts if attempts is not None else self.config.retry_attempts
        timeout = self.config.pool_timeout_s
        attempt = 0
        while True:
            attempt += 1
            try:
                conn = self.instance.getconn(pool, timeout)
            except PoolTimeout:
                if attempt >= tries:
                    raise
                self._backoff(attempt, "no connection within the pool timeout")
                continue
            try:
                if transaction:
                    with conn.transaction():
                        result = fn(conn)
                else:
                    result = fn(conn)
            except psycopg.Error as exc:
                self._release(pool, conn)
                if not is_retryable(exc) or not idempotent or attempt >= tries:
                    raise
                if is_connection_loss(exc):
                    self._connection_lost()
                self._backoff(attempt, f"{type(exc).__name__} ({getattr(exc, 'sqlstate', None) or 'no sqlstate'})")
                continue
            except BaseException:
                self._release(pool, conn)
                raise
            self._release(pool, conn)
            return result

    def query(
        self, query: str | sql.SQL | sql.Composed, params: Sequence[Any] | dict[str, Any] | None = None, *, idempotent: bool = True
    ) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit) and return its rows; retried on connection loss unless ``idempotent=False``."""

        def work(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
            cur = _cursor(conn)
            cur.execute(query, params)
            try:
                return cur.fetchall()
            except psycopg.ProgrammingError:  # a statement without rows; cheaper than building cur.description
                return []

        return self.run(work, idempotent=idempotent, transaction=False)

    def execute(self, query: str | sql.SQL | sql.Composed, params: Sequence[Any] | dict[str, Any] | None = None, *, idempotent: bool = False) -> int:
        """Run one statement (autocommit) and return its row count; pass ``idempotent=True`` to allow replay."""

        def work(conn: psycopg.Connection) -> int:
            cur = _cursor(conn)
            cur.execute(query, params)
            return cur.rowcount

        return self.run(work, idempotent=idempotent, transaction=False)

    # ------------------------------------------------------------------ smoke checks

    def tls_status(self) -> TlsStatus:
        """This session's ``pg_stat_ssl`` row, read through the pool."""
        row = self.query(
            "SELECT s.ssl, s.version, s.cipher, s.bits, current_setting('server_version'), current_user, s.pid "
            "FROM pg_stat_ssl AS s WHERE s.pid = pg_backend_pid()"
        )[0]
        return TlsStatus(
            ssl=bool(row[0]),
            version=row[1],
            cipher=row[2],
            bits=row[3],
            sslmode=self.config.effective_sslmode,
            server_version=row[4],
            user=row[5],
            backend_pid=row[6],
        )

    # ------------------------------------------------------------------ internals

    def _open(self, connect: Callable[..., psycopg.Connection], extra: dict[str, Any]) -> psycopg.Connection:
        """Connect with the cached secret; on an auth failure refresh the secret once and retry once."""
        self.instance.ensure_available()
        secret = self.secrets.get(DB_CREDENTIALS)
        conn, auth_error = self._try_connect(connect, secret, extra)
        if conn is not None:
            return conn
        fresh = self.secrets.refresh(DB_CREDENTIALS, stale=secret)
        if _same_credentials(fresh, secret):
            fresh = self._await_rotation(fresh, auth_error)
        logger.warning(
            "database %s rejected the cached credentials (secret %s version %s); retrying once with version %s",
            secret.get("dbInstanceIdentifier") or secret.get("host"),
            secret.secret_id,
            secret.version_id,
            fresh.version_id,
        )
        conn, auth_error = self._try_connect(connect, fresh, extra)
        if conn is not None:
            return conn
        raise auth_error

    def _await_rotation(self, fresh: SecretValue, auth_error: Exception) -> SecretValue:
        """The refreshed secret still holds the rejected password. A single-user rotation sets the new password
        (setSecret) a moment before it becomes AWSCURRENT (finishSecret): while DescribeSecret shows that window
        (AWSPENDING apart from AWSCURRENT), or an AWSCURRENT newer than what was read, re-read the secret, for up
        to ``_ROTATION_WINDOW_S``. Otherwise the secret itself is wrong: fail now, with no further read."""
        deadline = time.monotonic() + _ROTATION_WINDOW_S
        while True:
            state = self.secrets.rotation_state(DB_CREDENTIALS)
            if state is None or (state[0] == fresh.version_id and not state[1]) or time.monotonic() >= deadline:
                raise auth_error
            if state[0] == fresh.version_id:
                time.sleep(_ROTATION_POLL_S)
            newer = self.secrets.refresh(DB_CREDENTIALS, stale=fresh)
            if not _same_credentials(newer, fresh):
                return newer
            fresh = newer

    def _try_connect(self, connect: Callable[..., psycopg.Connection], secret: SecretValue, extra: dict[str, Any]) -> tuple[psycopg.Connection | None, Any]:
        kwargs = {**connection_kwargs(secret.view(Credentials), self.config), **extra}
        error: psycopg.OperationalError | None = None
        try:
            return connect(**kwargs), None
        except psycopg.OperationalError as exc:
            error, auth = _sanitized(exc), is_auth_failure(exc)
        finally:
            kwargs.clear()  # do not leave the password in a frame a traceback could show
        if not auth:
            self.instance.ensure_available(max_age_s=1.0)  # a stopped database: DatabaseStopped instead of libpq's error
            raise error  # outside the except block: the original (with the password) is not chained
        return None, error

    def _make_pool(self) -> ConnectionPool:
        db = self

        class RentalIQConnection(psycopg.Connection):
            """Pool connections: opened through Database._open; remember when they last worked."""

            rentaliq_last_used = 0.0
            rentaliq_cursor: psycopg.Cursor | None = None

            @classmethod
            def connect(cls, conninfo: str = "", **kwargs: Any) -> RentalIQConnection:
                conn = cast(RentalIQConnection, db._open(super().connect, kwargs))  # psycopg's connect builds a `cls`
                conn.rentaliq_last_used = _now()
                return conn

        cfg = self.config
        pool: ConnectionPool = ConnectionPool(
            connection_class=RentalIQConnection,
            kwargs={"autocommit": True},
            min_size=cfg.pool_min_size,
            max_size=cfg.pool_max_size,
            timeout=cfg.pool_timeout_s,
            max_idle=cfg.pool_max_idle_s,
            max_lifetime=cfg.pool_max_lifetime_s,
            check=self._check,
            reconnect_failed=self._reconnect_failed,
            name=f"rentaliq-{self.secrets.env}",
            open=False,
        )
        pool.open(wait=False)
        return pool

    def _check(self, conn: Any) -> None:
        """Pool checkout check: ping only connections not proven alive recently (and since the last loss)."""
        last = conn.rentaliq_last_used
        if last > self._last_loss and _now() - last < self.config.pool_check_idle_s:
            return
        ConnectionPool.check_connection(conn)

    @staticmethod
    def _release(pool: ConnectionPool, conn: Any) -> None:
        conn.rentaliq_last_used = _now()
        pool.putconn(conn)

    def _connection_lost(self) -> None:
        """Purge dead idle connections at once, instead of meeting them one per retry."""
        self.instance.suspect()  # the schedule may have stopped it: the next request asks RDS
        now = _now()
        with self._purge_lock:
            self._last_loss = now
            if now - self._last_purge < _PURGE_INTERVAL_S:
                return
            self._last_purge = now
        pool = self._pool
        if pool is not None:
            try:
                pool.check()
            except Exception as exc:  # noqa: BLE001 - best effort; the retry itself will tell
                logger.debug("pool check after connection loss failed: %s", type(exc).__name__)

    def _backoff(self, attempt: int, why: str) -> None:
        cfg = self.config
        delay = min(cfg.retry_max_delay_s, cfg.retry_base_delay_s * (2 ** (attempt - 1)))
        delay *= 0.5 + random.random() / 2  # jitter: replicas retrying together must not stampede
        logger.info("database work failed on attempt %d (%s); retrying in %.3fs", attempt, why, delay)
        time.sleep(delay)

    def _reconnect_failed(self, pool: ConnectionPool) -> None:
        logger.error("database pool %s: could not reconnect for %.0fs", pool.name, pool.reconnect_timeout)


def _cursor(conn: Any) -> psycopg.Cursor:
    """One cursor per pooled connection, reused: creating a cursor per query costs a few µs."""
    cur: psycopg.Cursor | None = getattr(conn, "rentaliq_cursor", None)
    if cur is None or cur.closed:
        cur = conn.cursor()
        if hasattr(conn, "rentaliq_cursor"):
            conn.rentaliq_cursor = cur
    return cur
