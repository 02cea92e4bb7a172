"""Multi-AZ DB instances on the local cloud: a real standby server, and ``--force-failover`` that promotes it.

A Multi-AZ instance (PROD's) gets a streaming standby when it is created, restored or modified to
Multi-AZ; the standby follows its primary through stop, start, rename and delete. RebootDBInstance
with ``ForceFailover`` promotes the standby behind the same endpoint (``postgres.standby``), swaps the
instance's ``AvailabilityZone`` and ``SecondaryAvailabilityZone`` and records RDS's failover events
(RDS-EVENT-0013 "A Multi-AZ failover that resulted in the promotion of a standby instance has
started." and RDS-EVENT-0015 "...is complete..."). A failover asked of a Single-AZ instance is refused
as RDS refuses it. moto's RebootDBInstance drops ``ForceFailover``; the response handler passes it here.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any

import psycopg
from moto.rds import models as rds_models
from moto.rds import responses as rds_responses
from moto.rds.exceptions import InvalidParameterCombination, RDSClientError

from rentaliq.local import rds_events
from rentaliq.local import rds_postgres as bound
from rentaliq.local.postgres import PostgresEngineError
from rentaliq.local.postgres.standby import standby_id

FAILOVER_STARTED = "RENTALIQ_MULTI_AZ_FAILOVER_STARTED"
FAILOVER_COMPLETE = "RENTALIQ_MULTI_AZ_FAILOVER_COMPLETE"
EVENTS = {
    FAILOVER_STARTED: {"Categories": ["failover"], "Message": "A Multi-AZ failover that resulted in the promotion of a standby instance has started."},
    FAILOVER_COMPLETE: {
        "Categories": ["failover"],
        "Message": "A Multi-AZ failover that resulted in the promotion of a standby instance is complete. "
        "It may take several minutes for the DNS to transfer to the promoted standby instance.",
    },
}

_force_failover: contextvars.ContextVar[bool] = contextvars.ContextVar("rentaliq_force_failover", default=False)


def after_bind(db: Any) -> None:
    if getattr(db, "multi_az", False) and not getattr(db, "is_replica", False):
        bound.engine().add_standby(db.db_instance_identifier)
        db.secondary_availability_zone = _other_zone(db.availability_zone)


def _after(method_name: str, hook: Any) -> None:
    original = getattr(rds_models.RDSBackend, method_name)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if bound.is_bound(result) and bound.engine().has_standby(result.db_instance_identifier):
            hook(result)
        return result

    setattr(rds_models.RDSBackend, method_name, wrapper)


def install() -> None:
    rds_models.Event.EVENT_MAP.update(EVENTS)
    _after("stop_db_instance", lambda db: bound.engine().stop(standby_id(db.db_instance_identifier)))
    _after("start_db_instance", lambda db: bound.engine().start(standby_id(db.db_instance_identifier)))
    _after("delete_db_instance", lambda db: bound.engine().remove_standby(db.db_instance_identifier))
    _install_modify()
    _install_failover()


def _install_modify() -> None:
    original = rds_models.RDSBackend.modify_db_instance

    @functools.wraps(original)
    def modify_db_instance(self: Any, db_instance_identifier: str, db_kwargs: dict[str, Any]) -> Any:
        db = self.describe_db_instances(db_instance_identifier)[0]
        old_id, was_multi_az = db.db_instance_identifier, bool(db.multi_az)
        result = original(self, db_instance_identifier, db_kwargs)
        if not bound.is_bound(result):
            return result
        engine = bound.engine()
        try:
            if result.db_instance_identifier != old_id and engine.has_standby(old_id):
                engine.rename(standby_id(old_id), standby_id(result.db_instance_identifier))
            if bool(result.multi_az) and not was_multi_az:
                engine.add_standby(result.db_instance_identifier)
            elif was_multi_az and not result.multi_az:
                engine.remove_standby(result.db_instance_identifier)
        except PostgresEngineError as error:
            raise RDSClientError("InvalidDBInstanceState", f"DB instance {result.db_instance_identifier} could not change its standby: {error}") from None
        return result

    rds_models.RDSBackend.modify_db_instance = modify_db_instance


def _install_failover() -> None:
    original_response = rds_responses.RDSResponse.reboot_db_instance

    @functools.wraps(original_response)
    def reboot_response(self: Any) -> Any:
        token = _force_failover.set(str(self.params.get("ForceFailover", "")).lower() == "true")
        try:
            return original_response(self)
        finally:
            _force_failover.reset(token)

    rds_responses.RDSResponse.reboot_db_instance = reboot_response

    original = rds_models.RDSBackend.reboot_db_instance

    @functools.wraps(original)
    def reboot_db_instance(self: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        if not _force_failover.get():
            return original(self, db_instance_identifier, *args, **kwargs)
        db = self.describe_db_instances(db_instance_identifier)[0]
        if not db.multi_az:
            raise InvalidParameterCombination("Cannot force a failover on a DB instance that is not Multi-AZ.")
        if db.status != "available":
            raise RDSClientError("InvalidDBInstanceState", f"Instance {db.db_instance_identifier} is not in available state.")
        if not bound.is_bound(db):
            return db
        db.status = "rebooting"
        rds_events.record(db, FAILOVER_STARTED)
        try:
            db._rentaliq_endpoint = bound.engine().failover(db.db_instance_identifier)
        except (PostgresEngineError, psycopg.Error) as error:
            db.status = "available"
            why = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise RDSClientError("InvalidDBInstanceState", f"DB instance {db.db_instance_identifier} could not fail over: {why}") from None
        secondary = getattr(db, "secondary_availability_zone", None) or _other_zone(db.availability_zone)
        db.availability_zone, db.secondary_availability_zone = secondary, db.availability_zone
        db.status = "available"
        rds_events.record(db, FAILOVER_COMPLETE)
        return db

    rds_models.RDSBackend.reboot_db_instance = reboot_db_instance


def _other_zone(zone: str | None) -> str:
    zone = zone or "us-east-1a"
    return zone[:-1] + ("b" if zone.endswith("a") else "a")
