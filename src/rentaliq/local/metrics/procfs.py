"""What Linux's /proc says about one PostgreSQL server: CPU time, block I/O, client connections, disk latency.

A server is its postmaster plus the children it forked (backends, checkpointer, WAL writer, ...). The counters
are read so that they only ever grow while the server runs: the postmaster's own CPU time includes what its
reaped children used (``cutime``/``cstime`` of ``/proc/<pid>/stat``) and its ``/proc/<pid>/io`` includes their
I/O (the kernel adds a child's accounting to its parent's when it is reaped), so *postmaster + live children*
is a cumulative total even when backends come and go between two samples. Reading it costs a few small
file reads per process and no subprocess.

What is measured, and how it differs from AWS's view:

- CPU: user + system ticks of those processes. RDS's CPUUtilization is the whole instance's (OS included).
- Block I/O: ``read_bytes``/``write_bytes`` of ``/proc/<pid>/io``, the bytes those processes made the storage
  layer read or (at dirtying time) write. RDS's Read/WriteIOPS count EBS operations; here one operation is one
  PostgreSQL page (8 KiB), the unit the server reads and writes, so IOPS = bytes / 8 KiB per second. Reads
  served from the OS page cache are no I/O here, as they are no EBS I/O on RDS.
- Latency: ``/proc/diskstats`` of the block device that holds the data directory (time spent per completed
  read / write). Like EBS's, it is the volume's latency, shared with everything else on that device.
- Connections: children whose process title is a client backend (``user db host(port) state``), not
  background workers, WAL senders or autovacuum.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = 8192
# ``postgres: [cluster: ]user db host(port) state`` or ``[local]``; a WAL sender has the same shape, excluded by name.
_CLIENT_TITLE = re.compile(r"^postgres: (?:\S+: )?(\S+) \S+ (?:\[local\]|\S+\(\d+\))")


@dataclass(frozen=True)
class ServerSample:
    """Cumulative counters of one server at one moment (``monotonic`` seconds)."""

    monotonic: float
    cpu_ticks: int
    read_bytes: int
    write_bytes: int
    connections: int


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:  # the process ended between listing and reading: it no longer counts
        return None


def _stat_fields(pid: int) -> list[str] | None:
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    return text[text.rfind(")") + 2 :].split()  # after "pid (comm) ", field 3 (state) is index 0


def _io(pid: int) -> tuple[int, int]:
    text = _read(f"/proc/{pid}/io") or ""
    values = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return int(values.get("read_bytes", 0)), int(values.get("write_bytes", 0))


def children(pid: int) -> list[int]:
    text = _read(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in text.split()] if text else []


def is_client_title(title: str) -> bool:
    """A client backend's process title (``postgres: app_user app 127.0.0.1(51234) idle``), not a WAL sender's."""
    match = _CLIENT_TITLE.match(title.replace("\x00", " ").strip())
    return bool(match) and match.group(1) not in ("walsender", "autovacuum", "parallel")


def is_client_backend(pid: int) -> bool:
    return is_client_title(_read(f"/proc/{pid}/cmdline") or "")


def sample(postmaster: int, now: float) -> ServerSample | None:
    """The server's counters now, or None when the postmaster is gone."""
    fields = _stat_fields(postmaster)
    if fields is None:
        return None
    # utime, stime, cutime, cstime are fields 14-17 (indexes 11-14 after the comm)
    cpu = sum(int(v) for v in fields[11:15])
    read_bytes, write_bytes = _io(postmaster)
    connections = 0
    for child in children(postmaster):
        child_fields = _stat_fields(child)
        if child_fields is None:
            continue
        cpu += int(child_fields[11]) + int(child_fields[12])
        r, w = _io(child)
        read_bytes += r
        write_bytes += w
        connections += is_client_backend(child)
    return ServerSample(now, cpu, read_bytes, write_bytes, connections)


def directory_bytes(path: Path) -> int:
    """Bytes the files under ``path`` occupy on disk (allocated blocks, as ``du`` counts them)."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    continue
    return total


@dataclass(frozen=True)
class DiskSample:
    reads: int
    read_ms: int
    writes: int
    write_ms: int


def block_device(path: Path) -> str | None:
    """The name in /proc/diskstats of the device holding ``path`` (``vda``, ``nvme0n1p1``), None for overlay/tmpfs."""
    try:
        dev = os.stat(path).st_dev
        link = os.path.realpath(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    except OSError:
        return None
    name = os.path.basename(link)
    return name if os.path.exists(link) and name else None


def disk_sample(device: str) -> DiskSample | None:
    for line in (_read("/proc/diskstats") or "").splitlines():
        parts = line.split()
        if len(parts) >= 11 and parts[2] == device:
            return DiskSample(int(parts[3]), int(parts[6]), int(parts[7]), int(parts[10]))
    return None
