"""The on-disk layout of the instances under root_dir, and each instance's persisted metadata.

Layout (one directory per instance)::

    <root_dir>/<instance-id>/
        instance.json   metadata that lets a later process restart the server on the same port
        admin.secret    password of the internal superuser ``rdsadmin`` (0600, never logged)
        server.crt      public copy of the self-signed server certificate, for sslrootcert=
        server.log      server log (pg_ctl -l)
        run/            Unix socket directory (absent when the path would be too long)
        data/           PGDATA, owned by the server user

An instance exists once its ``instance.json`` says ``ready``; a directory without that is the
leftover of a crashed create.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

from rentaliq.local.postgres.model import (
    META_FILE,
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
