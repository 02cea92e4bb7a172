"""Is the database up? Connect over TLS with the credentials Secrets Manager holds, as a service would."""

from __future__ import annotations

import json
import time

import psycopg

from rentaliq import naming
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec


def credentials(target: Target, spec: EnvironmentSpec) -> dict:
    secret = target.client("secretsmanager").get_secret_value(SecretId=naming.secret_path(spec.name, "db/credentials"))
    return json.loads(secret["SecretString"])


def check_connection(target: Target, spec: EnvironmentSpec, timeout: float = 5) -> tuple[bool, str]:
    """(accepts TLS connections, detail). The detail never contains the password."""
    try:
        creds = credentials(target, spec)
        with psycopg.connect(host=creds["host"], port=creds["port"], user=creds["username"], password=creds["password"],
                             dbname=creds["dbname"], sslmode="require", connect_timeout=max(1, int(timeout))) as conn:
            version, ssl = conn.execute("SELECT current_setting('server_version'), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        return bool(ssl), f"PostgreSQL {version} at {creds['host']}:{creds['port']}, TLS {'on' if ssl else 'off'}"
    except psycopg.OperationalError as error:
        return False, " ".join(str(error).split())[:200]
    except Exception as error:  # noqa: BLE001 - status must not crash on a half-built environment
        return False, f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"


def wait_until_ready(target: Target, spec: EnvironmentSpec, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while True:
        ok, detail = check_connection(target, spec)
        if ok:
            return detail
        if time.monotonic() > deadline:
            raise TimeoutError(f"{naming.db_instance_id(spec.name)} did not accept TLS connections within {timeout:.0f}s: {detail}")
        time.sleep(0.5 if target.is_local else 10)
