"""What a recovery command says when it refuses or AWS refuses: one line naming the problem and the way out.

Every refusal is raised before anything is changed (plans are checked first), so a RecoveryError also
means "nothing was half-done" unless its message says otherwise.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from rentaliq.deploy.commands import command
from rentaliq.environments import EnvironmentSpec


class RecoveryError(RuntimeError):
    """A refusal or failure written for the operator: one line, no secret value, no traceback."""


# AWS error codes whose own message is clear enough once we add what to run next.
_HINTS = {
    "DBSnapshotNotFound": "list them with `{backups}`",
    "DBSnapshotNotFoundFault": "list them with `{backups}`",
    "DBInstanceNotFound": "is the environment deployed? (`{status}`)",
    "DBInstanceNotFoundFault": "is the environment deployed? (`{status}`)",
    "InvalidRestoreTime": "the restorable window is shown by `{backups}`",
    "InvalidRestoreFault": "the restorable window is shown by `{backups}`",
}


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def from_aws(error: ClientError, env: str, doing: str) -> RecoveryError:
    """``doing: Code: message; hint``: AWS's own words (they never hold a secret value), on one line."""
    code = error_code(error)
    message = " ".join(str(error.response.get("Error", {}).get("Message", "")).split())[:400]
    hint = _HINTS.get(code, "").format(backups=command("backups", env), status=command("status", env)) if env else ""
    return RecoveryError(f"{doing}: {code}: {message}" + (f"; {hint}" if hint else ""))


def require_prod_confirmation(spec: EnvironmentSpec, confirm_prod: bool, action: str) -> None:
    """PROD changes are deliberate: the caller must say so with --confirm-prod."""
    if spec.is_prod and not confirm_prod:
        raise RecoveryError(f"refusing to {action} in PROD: pass --confirm-prod")
