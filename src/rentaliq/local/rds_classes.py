"""What an RDS instance class means for its local server: the ``max_connections`` RDS would give it, its vCPUs.

RDS for PostgreSQL's default parameter group sets ``max_connections`` to
``LEAST({DBInstanceClassMemory/9531392}, 5000)``; here the class's nominal memory stands in for
DBInstanceClassMemory, so a ``modify-db-instance --db-instance-class`` changes what the server accepts,
observably (``SHOW max_connections``), instead of a label. Unknown classes keep PostgreSQL's default.
"""

from __future__ import annotations

_GIB = 1024**3
_SIZES_GIB = {
    "micro": 1,
    "small": 2,
    "medium": 4,
    "large": 8,
    "xlarge": 16,
    "2xlarge": 32,
    "4xlarge": 64,
    "8xlarge": 128,
    "12xlarge": 192,
    "16xlarge": 256,
    "24xlarge": 384,
}
_MEMORY_FACTOR = {"t": 1, "m": 1, "r": 2, "x": 4}  # r classes have twice the memory of m for the same size


def memory_bytes(instance_class: str | None) -> int | None:
    """Nominal memory of ``db.<family>.<size>`` (db.t3.micro: 1 GiB, db.r6g.large: 16 GiB), None when unknown."""
    parts = str(instance_class or "").split(".")
    if len(parts) != 3 or parts[0] != "db" or parts[2] not in _SIZES_GIB:
        return None
    factor = _MEMORY_FACTOR.get(parts[1][:1])
    if factor is None:
        return None
    if parts[1][:1] == "m" and parts[2] in ("micro", "small", "medium"):
        return None
    return _SIZES_GIB[parts[2]] * factor * _GIB


def max_connections(instance_class: str | None) -> int | None:
    memory = memory_bytes(instance_class)
    return None if memory is None else min(memory // 9531392, 5000)


def vcpus(instance_class: str | None) -> int | None:
    """vCPUs of ``db.<family>.<size>`` (micro to large: 2, xlarge: 4, Nxlarge: 4N), the base of CPUUtilization."""
    if memory_bytes(instance_class) is None:
        return None
    size = str(instance_class).split(".")[2]
    if size in ("micro", "small", "medium", "large"):
        return 2
    return 4 * int(size[: -len("xlarge")] or 1)
