"""``AWS/EC2`` status-check datapoints for the local EC2 instances (the NAT instances of ``network.nat = "instance"``).

A moto instance has no hardware or operating system to fail, so a running instance passes both checks:
``StatusCheckFailed``, ``StatusCheckFailed_Instance`` and ``StatusCheckFailed_System`` are 0. An instance that
is not running (pending, stopping, stopped, terminated) publishes nothing, as on AWS, where status checks run
only on running instances; the NAT health alarm treats that missing data as breaching, so a stopped NAT
instance takes its alarm to ALARM.
"""

from __future__ import annotations

from typing import Any

from moto.ec2 import models as ec2_models

from rentaliq.local.metrics.publish import Datapoint

NAMESPACE = "AWS/EC2"
METRICS = ("StatusCheckFailed", "StatusCheckFailed_Instance", "StatusCheckFailed_System")


def running_instances() -> list[tuple[Any, Any]]:
    """(backend, instance) for every running instance, read without creating a backend (``dict.values``)."""
    found = []
    for account in list(dict.values(ec2_models.ec2_backends)):
        for backend in list(dict.values(account)):
            for reservation in list(backend.reservations.values()):
                found += [(backend, i) for i in list(reservation.instances) if i.state == "running"]
    return found


def measure() -> list[Datapoint]:
    points = []
    for backend, instance in running_instances():
        dimensions = {"InstanceId": instance.id}
        points += [Datapoint(backend.account_id, backend.region_name, NAMESPACE, name, 0.0, "Count", dimensions) for name in METRICS]
    return points
