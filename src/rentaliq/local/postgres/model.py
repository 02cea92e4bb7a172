"""The shared vocabulary of the PostgreSQL package: endpoint, errors, per-instance metadata and name rules.

Every other module of ``rentaliq.local.postgres`` imports from here and from nothing above it, so the
facts an RDS instance's server is built from (loopback host, reserved ``rdsadmin`` superuser, the
pinned major version, what an identifier may contain) are each written once.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

PG_MAJOR = 15
ADMIN_USER = "rdsadmin"
"""Internal bootstrap superuser; reserved, like on RDS."""

HOST = "127.0.0.1"
Status = Literal["running", "stopped", "absent"]

META_FILE = "instance.json"
ADMIN_SECRET_FILE = "admin.secret"
PASSFILE = "pgpass"
_INSTANCE_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
_RESERVED_ROLES = {ADMIN_USER, "rds_superuser", "public", "none"}
_RESERVED_DBS = {"template0", "template1", ADMIN_USER}


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


@dataclass(frozen=True)
class Meta:
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
    archive: str | None = None  # WAL archive directory while automated backups are on (retention > 0)
    max_connections: int | None = None  # from the instance class's memory, as RDS's default parameter does
    primary_port: int | None = None  # a streaming replica (read replica or Multi-AZ standby) of this port
    recovery_archive: str | None = None  # archive replayed at start (point-in-time restore, replica catch-up)
    recovery_target_time: str | None = None  # stop replay here (ISO 8601); cleared once the server promoted


def read_meta(inst_dir: Path, instance_id: str) -> Meta | None:
    """The instance's metadata, or None when it has none; unknown keys (a newer writer) are ignored."""
    try:
        raw = json.loads((inst_dir / META_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        raise PostgresEngineError(f"postgres instance {instance_id!r}: unreadable {META_FILE} ({exc})") from None
    known = {k: v for k, v in raw.items() if k in Meta.__dataclass_fields__}
    return Meta(**known)


def meta_json(meta: Meta) -> str:
    """The text of ``instance.json``: sorted and indented, so it diffs and reads well."""
    return json.dumps(asdict(meta), indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- validation


def is_instance_id(instance_id: str) -> bool:
    return _INSTANCE_ID_RE.match(instance_id) is not None


def check_instance_id(instance_id: str) -> None:
    """It becomes a directory name: refuse anything that could escape root_dir."""
    if not is_instance_id(instance_id):
        raise PostgresEngineError(f"invalid DB instance identifier {instance_id!r}: 1-63 letters, digits or hyphens, starting with a letter")


def check_password(instance_id: str, password: str) -> None:
    # Never echo the password itself in the error.
    if not password or "\x00" in password:
        raise PostgresEngineError(f"postgres instance {instance_id!r}: password must be non-empty and contain no NUL")


def check_role_name(name: str) -> None:
    if not name or len(name.encode("utf-8")) > 63 or "\x00" in name:
        raise PostgresEngineError(f"invalid master username {name!r}: 1-63 bytes")
    if name.lower() in _RESERVED_ROLES or name.lower().startswith("pg_"):
        raise PostgresEngineError(f"master username {name!r} is reserved")


def check_db_name(name: str) -> None:
    if not name or len(name.encode("utf-8")) > 63 or "\x00" in name:
        raise PostgresEngineError(f"invalid database name {name!r}: 1-63 bytes")
    if name.lower() in _RESERVED_DBS:
        raise PostgresEngineError(f"database name {name!r} is reserved")


def check_port(instance_id: str, port: int | None) -> None:
    if port is not None and not 1024 <= port <= 65535:
        raise PostgresEngineError(f"postgres instance {instance_id!r}: port {port} is outside 1024-65535")
