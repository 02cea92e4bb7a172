"""Admin SQL: everything the engine does inside a server, as the internal ``rdsadmin`` superuser.

Admin tasks (creating the master role and database, changing passwords, reloading pg_hba) connect over
TCP+TLS as ``rdsadmin`` with the random password from ``admin.secret``, so they work even when there is
no Unix socket, and from TCP nothing but password authentication is ever accepted.  The name mirrors
RDS, whose own superuser is also ``rdsadmin``, and keeps ``postgres`` free for the (very common) master
username ``postgres``.  Passwords only ever reach a server as client-side SCRAM verifiers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from rentaliq.local.postgres.model import ADMIN_SECRET_FILE, ADMIN_USER, HOST, PostgresEngineError
from rentaliq.local.postgres.process import log_tail, one_line

_RELOAD_TIMEOUT_S = 10


def pg_error(exc: psycopg.Error) -> str:
    """The server's primary message when there is one, else the client's error on one line."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or one_line(str(exc))


def verifier(conn: psycopg.Connection, username: str, password: str) -> str:
    """Hash client-side (libpq PQencryptPasswordConn, as psql's \\password does)."""
    return conn.pgconn.encrypt_password(password.encode("utf-8"), username.encode("utf-8"), b"scram-sha-256").decode("ascii")


@contextmanager
def admin_connection(inst: Path, instance_id: str, port: int, dbname: str = "postgres") -> Iterator[psycopg.Connection]:
    """An autocommit connection as ``rdsadmin``, verifying the instance's own certificate."""
    password = (inst / ADMIN_SECRET_FILE).read_text(encoding="utf-8").strip()
    try:
        conn = psycopg.connect(
            host=HOST,
            port=port,
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
        raise PostgresEngineError(f"postgres instance {instance_id!r}: admin connection to {HOST}:{port} failed: {pg_error(exc)}") from None
    try:
        yield conn
    finally:
        conn.close()


def preload_extensions(conn: psycopg.Connection) -> None:
    """Run in template1, so the master's database and every database created later inherit it.

    pg_stat_statements is not a trusted extension, so the (non-superuser) master could not create
    it, while on RDS it can.
    """
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def bootstrap(conn: psycopg.Connection, username: str, password: str, dbname: str | None) -> None:
    """Create the RDS-shaped master role and, when named, its database (adopting one that exists)."""
    # rds_superuser mirrors RDS: monitoring and signalling powers without being a superuser,
    # so code that only works as superuser fails locally as it would on AWS.
    conn.execute("CREATE ROLE rds_superuser NOLOGIN")
    conn.execute("GRANT pg_monitor, pg_signal_backend, pg_checkpoint TO rds_superuser")
    conn.execute(
        sql.SQL("CREATE ROLE {} WITH LOGIN CREATEDB CREATEROLE PASSWORD {} IN ROLE rds_superuser").format(
            sql.Identifier(username), sql.Literal(verifier(conn, username, password))
        )
    )
    if dbname is None:
        return
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(username)))
    else:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(username)))


def set_password(conn: psycopg.Connection, instance_id: str, username: str, password: str) -> None:
    """ALTER ROLE ... PASSWORD with a SCRAM verifier; an unknown role is an error, not a no-op."""
    try:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
        if exists is None:
            raise PostgresEngineError(f"postgres instance {instance_id!r}: role {username!r} does not exist")
        conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(username), sql.Literal(verifier(conn, username, password))))
    except psycopg.Error as exc:
        raise PostgresEngineError(f"postgres instance {instance_id!r}: cannot change the password of {username!r}: {pg_error(exc)}") from None


def reload(inst: Path, instance_id: str, port: int) -> None:
    """SIGHUP is asynchronous; wait until a new session sees the postmaster's new load time.

    A session forked after the postmaster reloaded also carries its new
    pg_hba, so callers can rely on the change as soon as this returns.
    """
    with admin_connection(inst, instance_id, port) as conn:
        before = conn.execute("SELECT pg_conf_load_time()").fetchone()
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + _RELOAD_TIMEOUT_S
    while True:
        with admin_connection(inst, instance_id, port) as conn:
            after = conn.execute("SELECT pg_conf_load_time()").fetchone()
        if before is None or after is None or after[0] > before[0]:
            return
        if time.monotonic() > deadline:
            raise PostgresEngineError(
                f"postgres instance {instance_id!r}: configuration reload not seen within {_RELOAD_TIMEOUT_S}s; "
                f"server log tail: {log_tail(inst / 'server.log')}"
            )
        time.sleep(0.02)
