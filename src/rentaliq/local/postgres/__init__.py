"""Real PostgreSQL 15 servers behind the local cloud's RDS DB instances.

Emulating RDS with a fake wire protocol would let application bugs (SQL, TLS,
auth, extensions) slip through to AWS, so every local DB instance is a real
``postgres`` process on 127.0.0.1 with the same shape as an RDS instance: a
master user that is powerful but not a superuser, scram-sha-256 passwords,
TLS that can be made mandatory (``rds.force_ssl``) and pg_stat_statements.

One module per job, the engine on top:

- ``model``: endpoint, errors, per-instance metadata and name rules (imported by all the others);
- ``binaries``: finding the PostgreSQL 15 server binaries;
- ``process``: the OS user the servers run as, files written for it, ports, initdb and pg_ctl;
- ``ca``: the local CA (the RDS CA bundle's part) and the server certificates it signs;
- ``tls``: a self-signed certificate (a CA that is not ours, for tests of verification);
- ``config``: rendering postgresql.conf additions, pg_hba.conf and pg_ident.conf (pure);
- ``admin``: the SQL run as the internal ``rdsadmin`` superuser;
- ``instances``: the instance directories under root_dir and their ``instance.json``;
- ``engine``: ``PostgresEngine``, the lifecycle that puts them together.

Callers import from this package, never from the modules, so the split can move again.
"""

from __future__ import annotations

from rentaliq.local.postgres.binaries import find_pg_bin
from rentaliq.local.postgres.ca import CA_IDENTIFIER, bundle_path
from rentaliq.local.postgres.engine import PostgresEngine
from rentaliq.local.postgres.model import (
    ADMIN_USER,
    Endpoint,
    PostgresEngineError,
    PostgresInstanceNotFound,
    PostgresNotInstalled,
)
from rentaliq.local.postgres.tls import self_signed_cert

__all__ = [
    "ADMIN_USER",
    "CA_IDENTIFIER",
    "Endpoint",
    "PostgresEngine",
    "PostgresEngineError",
    "PostgresInstanceNotFound",
    "PostgresNotInstalled",
    "bundle_path",
    "find_pg_bin",
    "self_signed_cert",
]
