"""Rotate ``rentaliq/{env}/db/credentials`` now (`rentaliq rotate`), wait for it, and keep the connection string in step.

The rotation itself is Secrets Manager's: RotateSecret runs the hosted single-user rotation on AWS, and the local
cloud's own rotator locally (``rentaliq.local.secrets_rotation``). This module triggers it, follows the version
stages until the new version is AWSCURRENT with no AWSPENDING left, and then makes sure
``rentaliq/{env}/db/connection-string`` holds the new password: the local cloud rewrites it itself; on AWS nothing
does, so this command does (README, "Credential rotation"). A rotation left incomplete (a crash, a failed step) is
not started again but followed: Secrets Manager reattempts it. No value is ever printed or logged: only version ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rentaliq import naming
from rentaliq.ops.recovery.errors import RecoveryError

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class RotationPlan:
    env: str
    secret_id: str
    current_version: str | None
    pending_version: str | None
    rotation_enabled: bool
    every_days: int | None
    next_rotation: str | None

    def lines(self) -> list[str]:
        schedule = f"every {self.every_days} days, next {self.next_rotation or 'not set'}" if self.rotation_enabled else "no schedule (rotation not enabled)"
        lines = [
            f"rotate {self.secret_id} now (single-user: a new password for the master user, then AWSCURRENT moves)",
            f"  AWSCURRENT is version {self.current_version}; schedule: {schedule}",
            f"  then {naming.secret_path(self.env, 'db/connection-string')} gets the new password in its DATABASE_URL",
        ]
        if self.pending_version:
            lines.append(f"  a previous rotation ({self.pending_version}) is not complete: it is followed, not started again")
        return lines


@dataclass(frozen=True)
class RotationResult:
    secret_id: str
    version_id: str
    previous_version: str | None
    seconds: float
    connection_string_rewritten: bool


def _stages(sm: Any, secret_id: str) -> dict[str, list[str]]:
    stages: dict[str, list[str]] = sm.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    return stages


def _find(stages: dict[str, list[str]], label: str) -> str | None:
    return next((v for v, s in stages.items() if label in s), None)


def plan(target: Any, env: str) -> RotationPlan:
    sm = target.client("secretsmanager")
    secret_id = naming.secret_path(env, "db/credentials")
    try:
        described = sm.describe_secret(SecretId=secret_id)
    except sm.exceptions.ResourceNotFoundException:
        raise RecoveryError(f"{secret_id} does not exist: deploy {env} first (`rentaliq up {env}`)") from None
    stages = described.get("VersionIdsToStages", {})
    current, pending = _find(stages, CURRENT), _find(stages, PENDING)
    next_date = described.get("NextRotationDate")
    return RotationPlan(
        env=env,
        secret_id=secret_id,
        current_version=current,
        pending_version=pending if pending != current else None,
        rotation_enabled=bool(described.get("RotationEnabled")),
        every_days=(described.get("RotationRules") or {}).get("AutomaticallyAfterDays"),
        next_rotation=next_date.isoformat() if hasattr(next_date, "isoformat") else None,
    )


def rotate(target: Any, planned: RotationPlan, report: Callable[[str], None], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> RotationResult:
    """Trigger (or follow) the rotation and wait until it is finished and the connection string is in step."""
    sm = target.client("secretsmanager")
    started = time.monotonic()
    if planned.pending_version:
        version = planned.pending_version
        report(f"following the incomplete rotation {version}")
    else:
        try:
            version = sm.rotate_secret(SecretId=planned.secret_id)["VersionId"]
        except sm.exceptions.InvalidRequestException as error:  # raced with a scheduled one: follow it
            version = _find(_stages(sm, planned.secret_id), PENDING) or ""
            if not version:
                raise RecoveryError(f"{planned.secret_id}: {error.response['Error']['Message']}") from None
        report(f"rotation started: new version {version}")
    said: set[str] = set()
    while True:
        stages = _stages(sm, planned.secret_id)
        mine = stages.get(version, [])
        if PENDING in mine and "pending" not in said:
            said.add("pending")
            report("createSecret: AWSPENDING holds the new password")
        if CURRENT in mine and PENDING not in mine:
            report("finishSecret: the new version is AWSCURRENT")
            break
        if time.monotonic() - started > timeout_s:
            raise RecoveryError(
                f"{planned.secret_id}: rotation {version} did not finish within {timeout_s:.0f} s (stages {mine or 'none'}); "
                "AWSPENDING stays and Secrets Manager reattempts it: run `rentaliq rotate` again to follow it"
            )
        time.sleep(0.25)
    rewritten = sync_connection_string(target, planned.env, wait_s=10.0 if target.is_local else 0.0)
    report("connection string rewritten" if rewritten else "connection string in step")
    return RotationResult(planned.secret_id, version, planned.current_version, time.monotonic() - started, rewritten)


def _password_in_url(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    return unquote(parts.password) if parts.password is not None else None


def sync_connection_string(target: Any, env: str, *, wait_s: float = 0.0) -> bool:
    """Make the connection string's DATABASE_URL carry AWSCURRENT's password; True if this call rewrote it.

    With ``wait_s`` (the local cloud, which rewrites it itself right after finishSecret) it first waits that long
    for the rewrite to appear, so the two writers do not race.
    """
    from rentaliq.local.secrets_rotation.steps import database_url

    sm = target.client("secretsmanager")
    creds_id, conn_id = naming.secret_path(env, "db/credentials"), naming.secret_path(env, "db/connection-string")
    deadline = time.monotonic() + wait_s
    while True:
        creds = json.loads(sm.get_secret_value(SecretId=creds_id)["SecretString"])
        conn = json.loads(sm.get_secret_value(SecretId=conn_id)["SecretString"])
        url = conn.get("DATABASE_URL") or ""
        if _password_in_url(url) == creds["password"]:
            return False
        if time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    sm.put_secret_value(SecretId=conn_id, SecretString=json.dumps({**conn, "DATABASE_URL": database_url(url, creds["username"], creds["password"])}))
    return True
