"""``AWS/RDS`` datapoints for one local DB instance per tick, measured from its real PostgreSQL server.

Gauges (DatabaseConnections, FreeStorageSpace, ReplicaLag) are read at the tick; rates and CPU are the growth
of cumulative counters (``procfs``, ``network``) since the instance's previous tick, so an instance's first
tick after it (re)started publishes gauges only. What each measurement is, and how it differs from RDS's, is
said in ``procfs`` and ``network``. A stopped instance is not measured and publishes nothing, so an alarm on it
sees missing data, as on AWS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rentaliq.local import rds_classes
from rentaliq.local.metrics import network, procfs
from rentaliq.local.postgres import PostgresEngineError
from rentaliq.local.postgres.process import postmaster_pid

log = logging.getLogger(__name__)

NAMESPACE = "AWS/RDS"
_GIB = 1024**3
Datum = tuple[str, float, str]  # (metric name, value, unit)


@dataclass
class _Previous:
    """What an instance's last tick saw, to turn cumulative counters into rates."""

    postmaster: int
    server: procfs.ServerSample
    sockets: dict[network.Socket, tuple[int, int]] = field(default_factory=dict)
    disk: procfs.DiskSample | None = None


class RdsSampler:
    """Keeps each instance's previous counters (by resource id, so a rename keeps its history)."""

    def __init__(self) -> None:
        self._previous: dict[str, _Previous] = {}
        self._devices: dict[str, str | None] = {}

    def forget_except(self, keys: set[str]) -> None:
        for key in set(self._previous) - keys:
            del self._previous[key]

    def measure(self, engine: Any, db: Any, now: float, sockets: dict[network.Socket, tuple[int, int]]) -> list[Datum]:
        """The datapoints of ``db`` now, or [] when its server is not running."""
        key = str(db.dbi_resource_id)
        data_dir = Path(engine.root_dir) / db.db_instance_identifier / "data"
        pid = postmaster_pid(data_dir)
        current = procfs.sample(pid, now) if pid is not None else None
        if current is None:
            self._previous.pop(key, None)
            return []
        device = self._device(data_dir)
        disk = procfs.disk_sample(device) if device else None
        allocated = int(db.allocated_storage or 0) * _GIB
        data: list[Datum] = [
            ("DatabaseConnections", float(current.connections), "Count"),
            ("FreeStorageSpace", float(max(0, allocated - procfs.directory_bytes(data_dir))), "Bytes"),
        ]
        if getattr(db, "is_replica", False):
            lag = self._replica_lag(engine, db)
            if lag is not None:
                data.append(("ReplicaLag", lag, "Seconds"))
        previous = self._previous.get(key)
        if previous is not None and previous.postmaster == pid and current.monotonic > previous.server.monotonic:
            data += self._rates(db, previous, current, sockets, disk)
        self._previous[key] = _Previous(pid, current, sockets, disk)
        return data

    def _rates(self, db: Any, previous: _Previous, current: procfs.ServerSample, sockets: Any, disk: procfs.DiskSample | None) -> list[Datum]:
        seconds = current.monotonic - previous.server.monotonic
        vcpus = rds_classes.vcpus(db.db_instance_class) or 2
        cpu = (current.cpu_ticks - previous.server.cpu_ticks) / procfs.CLOCK_TICKS / seconds / vcpus * 100
        received, sent = network.growth(previous.sockets, sockets)
        reads = max(0, current.read_bytes - previous.server.read_bytes) / procfs.PAGE_BYTES
        writes = max(0, current.write_bytes - previous.server.write_bytes) / procfs.PAGE_BYTES
        data: list[Datum] = [
            ("CPUUtilization", round(min(100.0, max(0.0, cpu)), 4), "Percent"),
            ("ReadIOPS", round(reads / seconds, 4), "Count/Second"),
            ("WriteIOPS", round(writes / seconds, 4), "Count/Second"),
            ("NetworkReceiveThroughput", round(received / seconds, 4), "Bytes/Second"),
            ("NetworkTransmitThroughput", round(sent / seconds, 4), "Bytes/Second"),
        ]
        if disk is not None and previous.disk is not None:
            done_reads, done_writes = disk.reads - previous.disk.reads, disk.writes - previous.disk.writes
            read_latency = (disk.read_ms - previous.disk.read_ms) / 1000 / done_reads if done_reads > 0 else 0.0
            write_latency = (disk.write_ms - previous.disk.write_ms) / 1000 / done_writes if done_writes > 0 else 0.0
            data += [("ReadLatency", round(max(0.0, read_latency), 6), "Seconds"), ("WriteLatency", round(max(0.0, write_latency), 6), "Seconds")]
        return data

    def _device(self, data_dir: Path) -> str | None:
        key = str(data_dir)
        if key not in self._devices:
            self._devices[key] = procfs.block_device(data_dir)
        return self._devices[key]

    @staticmethod
    def _replica_lag(engine: Any, db: Any) -> float | None:
        try:
            return engine.replica_lag_seconds(db.db_instance_identifier)
        except PostgresEngineError as error:
            log.debug("replica lag of %s not measured: %s", db.db_instance_identifier, error)
            return None
