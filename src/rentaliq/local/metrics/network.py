"""Bytes the servers' TCP sockets received and sent, from the kernel's ``tcp_info`` counters (``ss -tin``).

One ``ss`` call per collection tick covers every server: it lists the established sockets whose *local* port
is a server's port (the server's side of each client connection, and a primary's side of its replicas'
streaming connections) with ``bytes_received`` and ``bytes_sent`` (``bytes_acked`` on older kernels). Each
socket's counters are remembered between ticks, so a tick's traffic is the growth of each socket's counters,
plus everything a socket that appeared since the last tick carried. What a socket carried between the last
tick and its close is not seen: short-lived connections are under-counted, by at most one tick of their traffic.
RDS's NetworkReceive/TransmitThroughput count the instance's whole network interface; this counts the
PostgreSQL protocol traffic (TLS included) on the server's port.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable

_COUNTER = re.compile(r"\b(bytes_received|bytes_sent|bytes_acked):(\d+)")
Socket = tuple[str, str]  # (local address:port, peer address:port)


def read_sockets(ports: Iterable[int]) -> dict[int, dict[Socket, tuple[int, int]]]:
    """Per server port: each established socket's cumulative (received, sent) bytes."""
    ports = sorted(set(ports))
    found: dict[int, dict[Socket, tuple[int, int]]] = {port: {} for port in ports}
    if not ports:
        return found
    expression = " or ".join(f"sport = :{port}" for port in ports)
    try:
        out = subprocess.run(["ss", "-tinH", "state", "established", f"( {expression} )"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return found
    current: tuple[int, Socket] | None = None
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            parts = line.split()
            current = None
            if len(parts) >= 4:
                local, peer = parts[-2], parts[-1]
                try:
                    port = int(local.rsplit(":", 1)[1])
                except (IndexError, ValueError):
                    continue
                if port in found:
                    current = (port, (local, peer))
            continue
        if current is None:
            continue
        counters = dict(_COUNTER.findall(line))
        sent = counters.get("bytes_sent", counters.get("bytes_acked", "0"))
        found[current[0]][current[1]] = (int(counters.get("bytes_received", 0)), int(sent))
        current = None
    return found


def growth(before: dict[Socket, tuple[int, int]], now: dict[Socket, tuple[int, int]]) -> tuple[int, int]:
    """(received, sent) bytes since ``before``: each socket's growth, or all of a new socket's bytes."""
    received = sent = 0
    for key, (r, s) in now.items():
        r0, s0 = before.get(key, (0, 0))
        if r < r0 or s < s0:  # a new socket on a reused address pair
            r0 = s0 = 0
        received += r - r0
        sent += s - s0
    return received, sent
