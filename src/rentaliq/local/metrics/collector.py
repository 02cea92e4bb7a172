"""The metrics clock of the local cloud: one pass every ``RENTALIQ_LOCAL_METRICS_SECONDS`` (default 60).

A pass measures every local RDS instance whose server runs (``rds``), drains the S3 request counts
(``s3_requests``), publishes the running EC2 instances' status checks (``ec2_status``), measures bucket
storage when its own, slower, period is due (``s3_storage``), lets storage autoscaling see each
FreeStorageSpace value, then stores all datapoints in CloudWatch and commits them (``publish``).
Measuring happens outside the persistence lock; only storing holds it, briefly.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from moto.rds import models as rds_models

from rentaliq.local import rds_events
from rentaliq.local import rds_postgres as bound
from rentaliq.local.metrics import ec2_status, network, publish, s3_requests, s3_storage
from rentaliq.local.metrics.rds import NAMESPACE, RdsSampler
from rentaliq.local.periodic import PeriodicThread
from rentaliq.local.rds_storage_autoscaling import StorageAutoscaler

log = logging.getLogger(__name__)

INTERVAL_ENV = "RENTALIQ_LOCAL_METRICS_SECONDS"


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.2, float(os.environ.get(name, default)))
    except ValueError:
        return default


def local_instances() -> list[tuple[Any, Any]]:
    found = []
    for account in list(dict.values(rds_models.rds_backends)):
        for backend in list(dict.values(account)):
            found += [(backend, db) for db in list(backend.databases.values()) if bound.is_bound(db)]
    return found


class MetricsCollector(PeriodicThread):
    name = "metrics-collector"

    def __init__(self) -> None:
        super().__init__()
        self.rds = RdsSampler()
        self.autoscaler = StorageAutoscaler()
        self._s3_due = 0.0  # monotonic time of the next storage measurement; 0: at the first pass
        self.last_tick_cpu_s = 0.0  # CPU time of this thread in the last pass

    def interval(self) -> float:
        return _seconds(INTERVAL_ENV, 60)

    def tick(self) -> None:
        cpu0 = time.thread_time()
        points = self.measure_rds()
        points += s3_requests.drain()
        points += ec2_status.measure()  # the NAT instances' status checks
        if time.monotonic() >= self._s3_due:
            self._s3_due = time.monotonic() + _seconds(s3_storage.INTERVAL_ENV, 86400)
            points += s3_storage.measure()
        autoscaled = self.autoscale(points)
        from rentaliq.local import state

        current = state.current()
        if current is None:
            changed = publish.store(points, publish.retention(self.interval()))
        else:
            with current.changing():
                changed = publish.store(points, publish.retention(self.interval()))
        if changed:  # an idle cloud (no instance, nothing pruned) writes nothing
            publish.commit_changes()
        if autoscaled:
            rds_events.persist()
        self.last_tick_cpu_s = time.thread_time() - cpu0
        log.debug("metrics pass: %d datapoints, %.1f ms CPU", len(points), self.last_tick_cpu_s * 1000)

    def measure_rds(self) -> list[publish.Datapoint]:
        instances = [(b, db) for b, db in local_instances() if db.status not in ("stopped", "stopping", "creating", "deleting")]
        engine = bound.engine()
        ports = {}
        for _, db in instances:
            endpoint = engine.endpoint(db.db_instance_identifier)
            if endpoint is not None:
                ports[str(db.dbi_resource_id)] = endpoint.port
        sockets = network.read_sockets(ports.values())
        now = time.monotonic()
        points: list[publish.Datapoint] = []
        self.rds.forget_except({str(db.dbi_resource_id) for _, db in instances})
        for backend, db in instances:
            if self.stopping.is_set():
                break
            try:
                data = self.rds.measure(engine, db, now, sockets.get(ports.get(str(db.dbi_resource_id), -1), {}))
            except Exception as error:  # noqa: BLE001 - one instance's failure must not stop the others' metrics
                log.warning("metrics of %s not measured: %s", db.db_instance_identifier, error)
                continue
            dimensions = {"DBInstanceIdentifier": db.db_instance_identifier}
            points += [publish.Datapoint(backend.account_id, backend.region_name, NAMESPACE, name, value, unit, dimensions) for name, value, unit in data]
        return points

    def autoscale(self, points: list[publish.Datapoint]) -> bool:
        free = {(p.account, p.region, p.dimensions["DBInstanceIdentifier"]): p.value for p in points if p.name == "FreeStorageSpace"}
        changed = False
        if not free:
            return False
        with rds_events.changing():
            for backend, db in local_instances():
                value = free.get((backend.account_id, backend.region_name, db.db_instance_identifier))
                if value is not None:
                    changed |= self.autoscaler.observe(db, value)
        return changed
