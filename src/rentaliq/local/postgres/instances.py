"""The on-disk layout of the instances under root_dir, and each instance's persisted metadata.

Layout (one directory per instance)::

    <root_dir>/<instance-id>/
        instance.json   metadata that lets a later process restart the server on the same port
        admin.secret    password of the internal superuser ``rdsadmin`` (0600, never logged)
        pgpass          the same password as a libpq passfile, owned by the server user (replication)
        server.crt      public copy of the server certificate followed by the CA that signed it (``ca``),
                        usable as sslrootcert=
        server.log      server log (pg_ctl -l)
        run/            Unix socket directory (absent when the path would be too long)
        data/           PGDATA, owned by the server user

An instance exists once its ``instance.json`` says ``ready``; a directory without that is the
leftover of a crashed create.  The configuration files are rendered by ``config`` and written here,
from ``instance.json``, on every start, so a moved root_dir or edited metadata still yields a
working server.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from rentaliq.local.postgres import config
from rentaliq.local.postgres.ca import bundle_path, ensure_ca, is_current, issue_server_cert, key_matches
from rentaliq.local.postgres.model import (
    ADMIN_SECRET_FILE,
    ADMIN_USER,
    HOST,
    META_FILE,
    PASSFILE,
    Meta,
    PostgresEngineError,
    PostgresInstanceNotFound,
    check_instance_id,
    meta_json,
    read_meta,
)
from rentaliq.local.postgres.process import ServerOS, postmaster_pid


class InstanceDirs:
    """Reads and writes the instance directories under one root_dir (not thread-safe: callers lock)."""

    def __init__(self, root_dir: Path, server_os: ServerOS) -> None:
        self.root_dir = root_dir
        self._os = server_os

    def path(self, instance_id: str) -> Path:
        return self.root_dir / instance_id

    def read(self, instance_id: str) -> Meta | None:
        return read_meta(self.path(instance_id), instance_id)

    def write(self, meta: Meta) -> None:
        self._os.write(self.path(meta.instance_id) / META_FILE, meta_json(meta), 0o644, server_owned=False)

    def require(self, instance_id: str) -> Meta:
        """The metadata of a completely created instance, else PostgresInstanceNotFound."""
        check_instance_id(instance_id)
        meta = self.read(instance_id)
        if meta is None or not meta.ready:
            raise PostgresInstanceNotFound(f"postgres instance {instance_id!r} does not exist under {self.root_dir}")
        return meta

    def require_running(self, instance_id: str) -> Meta:
        meta = self.require(instance_id)
        if self.pid(instance_id) is None:
            raise PostgresEngineError(f"postgres instance {instance_id!r} is stopped; start it first")
        return meta

    def desired(self, instance_id: str) -> str:
        meta = self.read(instance_id)
        return meta.desired if meta else "stopped"

    def pid(self, instance_id: str) -> int | None:
        """The postmaster's pid when the instance's server runs."""
        return postmaster_pid(self.path(instance_id) / "data")

    def claimed_ports(self, instance_id: str) -> set[int]:
        """Ports other instances hold in their instance.json, running or not."""
        claimed: set[int] = set()
        for other in self.root_dir.iterdir():
            if other.name != instance_id:
                with suppress(PostgresEngineError):  # a corrupt neighbour must not block new instances
                    if (meta := self.read(other.name)) is not None:
                        claimed.add(meta.port)
        return claimed

    # ------------------------------------------------------------------ files inside an instance

    def install_certificate(self, instance_id: str) -> None:
        """A new certificate from the state dir's CA: key and certificate in PGDATA, a public copy
        (certificate + CA) for sslrootcert=. A running server keeps serving its old one until restarted."""
        inst = self.path(instance_id)
        ca = ensure_ca(self.root_dir)
        cert_pem, key_pem = issue_server_cert(ca, instance_id)
        self._os.write(inst / "data" / "server.crt", cert_pem, 0o644, server_owned=True)
        self._os.write(inst / "data" / "server.key", key_pem, 0o600, server_owned=True)
        self._os.write(inst / "server.crt", cert_pem + ca.pem, 0o644, server_owned=False)

    def certificate_is_current(self, instance_id: str) -> bool:
        """Whether the server's certificate comes from this state dir's CA and names this instance.

        False for the self-signed certificates older state dirs hold, after a rename or a failover swap, and
        when a crash cut ``install_certificate`` short (key, certificate and public copy not of one issue).
        """
        inst = self.path(instance_id)
        try:
            cert_pem = (inst / "data" / "server.crt").read_bytes()
            key_pem = (inst / "data" / "server.key").read_bytes()
            public = (inst / "server.crt").read_bytes()
        except OSError:
            return False
        ca = ensure_ca(self.root_dir)
        return is_current(cert_pem, ca, instance_id) and key_matches(cert_pem, key_pem) and public == cert_pem + ca.pem

    def include_config(self, instance_id: str) -> None:
        """Once, after initdb: make postgresql.conf include the file write_config() rewrites."""
        with open(self.path(instance_id) / "data" / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(config.CONF_INCLUDE)

    def write_config(self, meta: Meta) -> None:
        """``rentaliq.conf``, ``pg_hba.conf`` and ``pg_ident.conf``, and the socket directory they name."""
        run_dir = config.socket_dir(self.path(meta.instance_id), meta.port)
        if run_dir is not None and not run_dir.exists():
            run_dir.mkdir(mode=0o755)
            os.chmod(run_dir, 0o755)
            self._os.chown(run_dir)
        inst = self.path(meta.instance_id)
        data = inst / "data"
        conf = config.render_conf(
            meta.port,
            run_dir,
            archive_dir=Path(meta.archive) if meta.archive else None,
            max_connections=meta.max_connections,
            recovery=self.recovery(meta),
        )
        self._os.write(data / config.CONF_FILE, conf, 0o600, server_owned=True)
        self.write_hba(meta)
        self.write_passfile(meta.instance_id)

    def recovery(self, meta: Meta) -> config.Recovery | None:
        """What the server replays at start, from its metadata; None for an ordinary primary."""
        if meta.primary_port is None and meta.recovery_archive is None:
            return None
        conninfo = None
        if meta.primary_port is not None:
            passfile = self.path(meta.instance_id) / PASSFILE
            conninfo = (
                f"host={HOST} port={meta.primary_port} user={ADMIN_USER} passfile={passfile} "
                f"sslmode=verify-full sslrootcert={bundle_path(self.root_dir)} application_name={meta.instance_id} connect_timeout=5"
            )
        return config.Recovery(
            primary_conninfo=conninfo,
            archive_dir=Path(meta.recovery_archive) if meta.recovery_archive else None,
            target_time=meta.recovery_target_time,
        )

    def write_passfile(self, instance_id: str) -> None:
        """A libpq passfile for ``rdsadmin``: replication and pg_basebackup authenticate with it, never argv."""
        inst = self.path(instance_id)
        secret = inst / ADMIN_SECRET_FILE
        if secret.exists():
            password = secret.read_text(encoding="utf-8").strip()
            line = f"{HOST}:*:*:{ADMIN_USER}:{password.replace(chr(92), chr(92) * 2).replace(':', chr(92) + ':')}\n"
            self._os.write(inst / PASSFILE, line, 0o600, server_owned=True)

    def write_hba(self, meta: Meta) -> None:
        """``pg_hba.conf`` for the instance's force_ssl, and the ident map of the server's OS user."""
        data = self.path(meta.instance_id) / "data"
        self._os.write(data / "pg_hba.conf", config.render_hba(meta.force_ssl), 0o600, server_owned=True)
        ident = config.render_ident(self._os.user.name)
        self._os.write(data / "pg_ident.conf", ident, 0o600, server_owned=True)
