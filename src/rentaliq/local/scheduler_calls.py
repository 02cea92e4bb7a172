"""The local cloud's scheduler control calls from the outside (tests, ``rentaliq local fire-schedule``): HTTP only,
no moto import. The server side and the documented paths are :mod:`rentaliq.local.scheduler.control`."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

FIRE_PATH = "/_rentaliq/scheduler/fire"  # rentaliq.local.scheduler.control.FIRE_PATH, without importing moto
RUN_PATH = "/_rentaliq/scheduler/run"
INVOCATIONS_PATH = "/_rentaliq/scheduler/invocations"
EXPIRE_STOP_PATH = "/_rentaliq/rds/expire-stop"


class ControlCallError(RuntimeError):
    """The local cloud refused the call (``code``: ResourceNotFoundException, ValidationException, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _call(
    endpoint: str, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None, timeout: float = 120
) -> dict[str, Any]:
    url = endpoint.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as error:
        try:
            document = json.loads(error.read())
        except ValueError:
            raise ControlCallError(f"HTTP{error.code}", str(error.reason)) from None
        raise ControlCallError(str(document.get("__type", f"HTTP{error.code}")), str(document.get("message", ""))) from None


def fire_schedule(endpoint: str, name: str, group: str = "default", region: str | None = None) -> dict[str, Any]:
    """Invoke the schedule's target now; the invocation (``Status`` SUCCEEDED or FAILED, with the error)."""
    return _call(endpoint, "POST", FIRE_PATH, {"Name": name, "GroupName": group, **({"Region": region} if region else {})})


def run_pass(endpoint: str) -> list[dict[str, Any]]:
    """Run one executor pass now: what was due fired, the 7-day rule applied; the invocations it made."""
    return list(_call(endpoint, "POST", RUN_PATH)["Invocations"])


def invocations(endpoint: str, name: str, group: str = "default") -> dict[str, Any]:
    """The schedule's recorded invocations (newest last) and ``EvaluatedAt``."""
    return _call(endpoint, "GET", INVOCATIONS_PATH, query={"Name": name, "GroupName": group})


def expire_stop(endpoint: str, db_instance_identifier: str, region: str | None = None) -> list[dict[str, Any]]:
    """Apply RDS's 7-day rule to a stopped instance now, as if it had been stopped for 7 days."""
    body = {"DBInstanceIdentifier": db_instance_identifier, **({"Region": region} if region else {})}
    return list(_call(endpoint, "POST", EXPIRE_STOP_PATH, body)["Results"])
