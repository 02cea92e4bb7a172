"""The local cloud's scheduler control calls, served beside moto's API (unsigned requests only; tests and the CLI).

``POST /_rentaliq/scheduler/fire``  body ``{"Name": ..., "GroupName": "default", "Region": optional}``
    invoke the schedule's target now (whatever its expression and state) and answer the invocation:
    ``{"Status": "SUCCEEDED"|"FAILED", "Target", "DBInstanceIdentifier", "ErrorCode", "ErrorMessage", ...}``.
``POST /_rentaliq/scheduler/run``
    run one executor pass now (due fires, the 7-day rule); answers ``{"Invocations": [...]}``.
``GET /_rentaliq/scheduler/invocations?Name=...&GroupName=default``
    the schedule's recorded invocations (newest last) and the time its fires are decided up to.
``POST /_rentaliq/rds/expire-stop``  body ``{"DBInstanceIdentifier": ..., "Region": optional}``
    apply RDS's 7-day rule to a stopped instance as if it had been stopped for 7 days: it starts, with
    RDS-EVENT-0154; answers ``{"Results": [...]}``.

Errors answer ``{"__type": code, "message": ...}`` with 400 or 404, as AWS's JSON services do.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from rentaliq.local.scheduler import clock, executor

FIRE_PATH = "/_rentaliq/scheduler/fire"
RUN_PATH = "/_rentaliq/scheduler/run"
INVOCATIONS_PATH = "/_rentaliq/scheduler/invocations"
EXPIRE_STOP_PATH = "/_rentaliq/rds/expire-stop"
Response = tuple[str, list[tuple[str, str]], bytes]
_PATHS = {("POST", FIRE_PATH), ("POST", RUN_PATH), ("GET", INVOCATIONS_PATH), ("POST", EXPIRE_STOP_PATH)}


def _json(status: str, document: Any) -> Response:
    data = json.dumps(document, default=str).encode()
    return status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))], data


def _error(status: str, code: str, message: str) -> Response:
    return _json(status, {"__type": code, "message": message})


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    document = json.loads(raw or b"{}")
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    return document


def handle(environ: dict[str, Any]) -> Response | None:
    """The answer for one of the paths above, or None (moto answers)."""
    method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO") or "/"
    if (method, path) not in _PATHS or environ.get("HTTP_AUTHORIZATION"):
        return None
    try:
        body = _body(environ) if method == "POST" else {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING") or "").items()}
    except ValueError as error:
        return _error("400 Bad Request", "ValidationException", f"The request body is not a JSON object: {error}")
    if path == RUN_PATH:
        return _json("200 OK", {"Invocations": executor.run_pass()})
    if path == EXPIRE_STOP_PATH:
        return _expire_stop(body)
    name, group = body.get("Name"), body.get("GroupName") or "default"
    if not isinstance(name, str) or not name:
        return _error("400 Bad Request", "ValidationException", "Name is required: the schedule's name")
    try:
        if path == FIRE_PATH:
            return _json("200 OK", executor.fire_now(name, group, body.get("Region")))
        _, _, _, schedule = executor.find(name, group, body.get("Region"))
    except executor.ScheduleNotFound as missing:
        return _error("404 Not Found", "ResourceNotFoundException", str(missing))
    return _json(
        "200 OK",
        {"Name": name, "GroupName": group, "EvaluatedAt": clock.evaluated_at(schedule).isoformat(), "Invocations": clock.invocations(schedule)},
    )


def _expire_stop(body: dict[str, Any]) -> Response:
    from rentaliq.local.scheduler import rds_stops

    identifier = body.get("DBInstanceIdentifier")
    if not isinstance(identifier, str) or not identifier:
        return _error("400 Bad Request", "ValidationException", "DBInstanceIdentifier is required")
    region = body.get("Region")
    found = [
        db for _, r, backend in rds_stops.backends() if region in (None, r) for db in backend.databases.values() if db.db_instance_identifier == identifier
    ]
    if not found:
        return _error("404 Not Found", "DBInstanceNotFound", f"DBInstance {identifier} not found.")
    if found[0].status != "stopped":
        return _error("400 Bad Request", "InvalidDBInstanceState", f"Instance {identifier} is not stopped (it is {found[0].status}).")
    return _json("200 OK", {"Results": executor.expire_stop_now(identifier, region)})
