"""Secrets Manager rotation that really happens on the local cloud, for RDS-layout PostgreSQL credentials secrets.

On AWS, ``RotateSecret`` on a secret with a hosted rotation (``PostgreSQLSingleUser``) answers at once with the
new version's id and a Lambda then runs the four steps. Here the same call (on demand, or by ``schedule`` when
``RotationRules`` make it due) answers the same way and a worker thread of the server runs ``steps.Rotation``.
moto alone would relabel an empty version as AWSCURRENT (or try to invoke a Lambda it cannot run), so a
rotatable secret (``steps.is_rotatable``) never reaches moto's ``rotate_secret``.

As on AWS, a rotation whose AWSPENDING version is still apart from AWSCURRENT is "not complete": RotateSecret
answers InvalidRequestException and the rotation is reattempted (here: at once, and at every start of the local
cloud, which is what makes a ``kill -9`` between two steps harmless).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from moto.secretsmanager import models as sm_models
from moto.secretsmanager.exceptions import InvalidParameterException, InvalidRequestException

from rentaliq.local.periodic import PeriodicThread
from rentaliq.local.secrets_rotation.steps import CURRENT, PENDING, Rotation, RotationError, is_rotatable

log = logging.getLogger(__name__)

NOT_COMPLETE = "A previous rotation isn't complete. That rotation will be reattempted."
_workers: dict[tuple[str, str, str], threading.Thread] = {}
_lock = threading.Lock()
_installed = False


def _day_seconds() -> int:
    """A day of RotationRules, in seconds: 86400, or less in tests (RENTALIQ_LOCAL_ROTATION_DAY_SECONDS) so that a
    schedule comes due while they watch."""
    return int(os.environ.get("RENTALIQ_LOCAL_ROTATION_DAY_SECONDS", "86400"))


def _ca_bundle() -> str:
    from rentaliq.local import rds_postgres

    return str(rds_postgres.engine().ca_bundle_path)


def _value(secret: Any) -> dict[str, Any]:
    version = secret.versions.get(secret.default_version_id) or {}
    try:
        value = json.loads(version.get("secret_string") or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def pending_version(secret: Any) -> str | None:
    """The id of an incomplete rotation's AWSPENDING version (one not also AWSCURRENT), or None."""
    return next((vid for vid, v in secret.versions.items() if PENDING in v["version_stages"] and CURRENT not in v["version_stages"]), None)


def rotating(region: str, name: str) -> bool:
    with _lock:
        return any(key[:2] == (region, name) and thread.is_alive() for key, thread in _workers.items())


def start_worker(region: str, name: str, token: str | None) -> None:
    """Run the rotation ``token`` of ``name`` in a thread (at most one per secret at a time)."""
    with _lock:
        if any(key[:2] == (region, name) and thread.is_alive() for key, thread in _workers.items()):
            return
        thread = threading.Thread(target=_run, args=(region, name, token), name=f"rotation {name}", daemon=True)
        _workers[(region, name, token or "")] = thread
        thread.start()


def _wait_serving(timeout: float = 60.0) -> None:
    """Workers started by ``after_restore`` run before the server answers: wait for it (they call its API)."""
    host, _, port = os.environ["RENTALIQ_LOCAL_ENDPOINT"].rpartition("//")[2].rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)


def _run(region: str, name: str, token: str | None) -> None:
    """Run (or resume) rotation ``token``; with no token, only bring the connection-string secret in step."""
    try:
        _wait_serving()
        rotation = Rotation(region, name, token or "", ca_bundle=_ca_bundle)
        if token is None:
            rotation.sync_connection_string()
            return
        rotation.run()
        log.info("rotation of %s: version %s is AWSCURRENT", name, token)
    except RotationError as error:
        log.warning("%s", error)
    except Exception:
        log.exception("rotation of %s (%s) failed", name, token)
    finally:
        with _lock:
            _workers.pop((region, name, token or ""), None)


def _rotate_secret(original):
    def rotate_secret(self, secret_id, client_request_token=None, rotation_lambda_arn=None, rotation_rules=None, rotate_immediately=True):
        secret = self.secrets[secret_id] if self._is_valid_identifier(secret_id) else None
        if secret is None or isinstance(secret, sm_models.ReplicaSecret) or secret.is_deleted():
            return original(self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately)
        # Rules only (a RotationSchedule at deploy time, maybe before the SecretTargetAttachment has filled the
        # secret in): nothing to invoke. A rotation now needs the RDS layout.
        if rotate_immediately and not is_rotatable(_value(secret)):
            return original(self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately)
        days = (rotation_rules or {}).get("AutomaticallyAfterDays")
        if days is not None and not 1 <= int(days) <= 1000:
            raise InvalidParameterException("RotationRules.AutomaticallyAfterDays must be within 1-1000.")
        if pending := pending_version(secret):
            start_worker(self.region_name, secret.name, pending)
            raise InvalidRequestException(NOT_COMPLETE)
        if client_request_token:
            self._client_request_token_validator(client_request_token)
        token = client_request_token or str(uuid.uuid4())
        secret.rotation_lambda_arn = rotation_lambda_arn or secret.rotation_lambda_arn or ""
        if days is not None:
            secret.auto_rotate_after_days = int(days)
            secret.rotation_enabled = True
        if secret.rotation_enabled and secret.auto_rotate_after_days:
            secret.next_rotation_date = int(time.time()) + int(secret.auto_rotate_after_days) * _day_seconds()
        secret.rotation_requested = True
        if rotate_immediately:
            secret.last_rotation_date = int(time.time())
            start_worker(self.region_name, secret.name, token)
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})

    return rotate_secret


def _update_secret_version_stage(original):
    def update_secret_version_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
        """moto moves the label but keeps serving the old version to a GetSecretValue without a stage; AWS serves AWSCURRENT."""
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == CURRENT and move_to_version_id:
            secret = self.secrets[secret_id]
            version = secret.versions[move_to_version_id]
            secret.default_version_id = move_to_version_id
            secret.secret_string = version.get("secret_string")
            secret.secret_binary = version.get("secret_binary")
        return result

    return update_secret_version_stage


def install() -> None:
    global _installed
    if _installed:
        return
    backend = sm_models.SecretsManagerBackend
    backend.rotate_secret = _rotate_secret(backend.rotate_secret)
    backend.update_secret_version_stage = _update_secret_version_stage(backend.update_secret_version_stage)
    _installed = True


def all_secrets() -> list[tuple[str, Any]]:
    """(region, secret) for every secret of every account and region moto holds."""
    found = []
    for account_backends in sm_models.secretsmanager_backends.values():
        for region, backend in account_backends.items():
            found.extend((region, secret) for secret in list(backend.secrets.values()) if not isinstance(secret, sm_models.ReplicaSecret))
    return found


def after_restore() -> None:
    """Reattempt every rotation a stop or a crash left incomplete; bring every connection-string secret in step
    (a crash between finishSecret and its rewrite leaves it behind); then start the schedule."""
    for region, secret in all_secrets():
        if secret.is_deleted() or not is_rotatable(_value(secret)):
            continue
        pending = pending_version(secret)
        if pending:
            log.info("rotation of %s (%s) was interrupted: resuming it", secret.name, pending)
        start_worker(region, secret.name, pending)
    _schedule.start()


def stop() -> None:
    _schedule.stop()


class Schedule(PeriodicThread):
    """Starts the rotations ``RotationRules`` make due (``NextRotationDate`` passed), through RotateSecret itself."""

    name = "secrets-rotation-schedule"

    def interval(self) -> float:
        return float(os.environ.get("RENTALIQ_LOCAL_ROTATION_SECONDS", "60"))

    def tick(self) -> None:
        now = time.time()
        for region, secret in all_secrets():
            due = secret.rotation_enabled and secret.next_rotation_date and secret.next_rotation_date <= now
            if not due or secret.is_deleted() or not is_rotatable(_value(secret)) or rotating(region, secret.name):
                continue
            log.info("rotation of %s is due (every %s days)", secret.name, secret.auto_rotate_after_days)
            client = Rotation(region, secret.name, "", ca_bundle=_ca_bundle).client("secretsmanager")
            try:
                client.rotate_secret(SecretId=secret.name)
            except client.exceptions.InvalidRequestException:
                pass  # an incomplete one: reattempted by that call


_schedule = Schedule()
