"""Cutover: point the environment's DB secrets at another instance, reversibly, and say so wherever it is looked at.

Services read ``rentaliq/{env}/db/credentials`` (host, port, dbInstanceIdentifier) and
``rentaliq/{env}/db/connection-string`` (DATABASE_URL, JDBC_URL), so moving those two secrets switches every
service with no code change. The state lives on the secrets themselves, where `status`, `verify` and a
rollback on any machine can read it:

- the version that was AWSCURRENT before the first cutover carries the staging label ``RENTALIQ_PRE_CUTOVER``
  (Secrets Manager keeps a labelled version; a second cutover keeps the label where it is, on the original);
- the tags ``rentaliq:cutover`` (the instance the secrets point at) and ``rentaliq:cutover-since`` (UTC).

The tag, not the label, says whether a cutover is active: a first cutover (no tag) moves the label onto the
version it replaces, wherever an old label was left. Order: tag, new value, label; a rollback writes the
labelled value back as the current one, then drops the tags, then the label, so running it again after an
interruption finishes it.
Before the secrets move, the new instance's master password is set to the one the secret holds (a
snapshot carries the password of its day) and a TLS login is tried. Values are never returned or printed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from botocore.exceptions import ClientError

from rentaliq import naming
from rentaliq.contract import CUTOVER_SECRETS, CUTOVER_SINCE_TAG, CUTOVER_STAGE, CUTOVER_TAG
from rentaliq.deploy.commands import command
from rentaliq.deploy.database import connect
from rentaliq.deploy.db_tls import libpq_tls
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.recovery import waits
from rentaliq.ops.recovery.errors import RecoveryError, from_aws
from rentaliq.ops.recovery.instances import LiveInstance
from rentaliq.ops.recovery.times import utc

SECRETS, TAG_INSTANCE, TAG_SINCE, STAGE = CUTOVER_SECRETS, CUTOVER_TAG, CUTOVER_SINCE_TAG, CUTOVER_STAGE
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"


@dataclass(frozen=True)
class CutoverState:
    env: str
    instance: str
    since: str | None
    secrets: tuple[str, ...]

    def describe(self) -> str:
        """One line for `status` and `verify`: what deviates, that it is deliberate, and how to undo it."""
        return (
            f"cutover active: {', '.join(self.secrets)} point at {self.instance} (since {self.since or 'unknown'}), not "
            f"{naming.db_instance_id(self.env)}; deliberate, undo with `{command('restore', self.env, '--rollback-cutover')}`"
        )


def point_url(url: str, host: str, port: int) -> str:
    """The same URL with host:port replaced; user, password (still percent-encoded), path and query kept as they are."""
    jdbc = url.startswith("jdbc:")
    parts = urlsplit(url.removeprefix("jdbc:"))
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if "@" in parts.netloc else "") + f"{host}:{port}"
    return ("jdbc:" if jdbc else "") + urlunsplit(parts._replace(netloc=netloc))


def pointed(logical: str, value: dict[str, Any], instance: str, host: str, port: int) -> dict[str, Any]:
    """The secret's JSON object pointing at ``instance``; every key it does not locate is kept."""
    if logical == "db/credentials":
        return {**value, "host": host, "port": port, "dbInstanceIdentifier": instance}
    return {key: point_url(v, host, port) if key in ("DATABASE_URL", "JDBC_URL") and isinstance(v, str) else v for key, v in value.items()}


def active(target: Target, env: str) -> CutoverState | None:
    """The environment's cutover, read from the secrets' tags; None when the secrets point at the environment's own instance."""
    sm, found, since, marked = target.client("secretsmanager"), None, None, []
    for logical in SECRETS:
        path = naming.secret_path(env, logical)
        try:
            tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=path).get("Tags", [])}
        except ClientError:
            continue  # a missing secret has no cutover; `verify` reports it missing
        if TAG_INSTANCE in tags:
            found, since = tags[TAG_INSTANCE], since or tags.get(TAG_SINCE)
            marked.append(path)
    return CutoverState(env, found, since, tuple(marked)) if found else None


def _versions(target: Target, path: str) -> tuple[str, str | None, str | None]:
    """(the AWSCURRENT version id, the one labelled STAGE, the AWSPREVIOUS one); None where there is none."""
    stages = target.client("secretsmanager").describe_secret(SecretId=path).get("VersionIdsToStages", {})
    current = next(v for v, labels in stages.items() if CURRENT in labels)
    labelled = next((v for v, labels in stages.items() if STAGE in labels), None)
    return current, labelled, next((v for v, labels in stages.items() if PREVIOUS in labels), None)


def _read(target: Target, path: str) -> dict[str, Any]:
    value = json.loads(target.client("secretsmanager").get_secret_value(SecretId=path)["SecretString"])
    if not isinstance(value, dict):
        raise RecoveryError(f"{path} does not hold a JSON object; refusing to rewrite it")
    return value


def _login(host: str, port: int, creds: dict[str, Any], tls: dict[str, str]) -> str | None:
    """None when a TLS login with ``creds`` works at host:port (verified by ``tls``, so the restore proves its
    certificate names its endpoint); else the error (psycopg's text holds no password)."""
    try:
        with connect(creds, host=host, port=port, connect_timeout=10, **tls) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as error:
        return " ".join(str(error).split())[:200]


def prepare(target: Target, spec: EnvironmentSpec, instance: LiveInstance, progress: waits.Progress) -> None:
    """Make ``instance`` accept the environment's credentials: set its master password to the secret's, then log in."""
    env = spec.name.value
    creds = _read(target, naming.secret_path(env, "db/credentials"))
    try:
        target.client("rds").modify_db_instance(DBInstanceIdentifier=instance.identifier, MasterUserPassword=creds["password"], ApplyImmediately=True)
    except ClientError as error:
        raise from_aws(error, env, f"setting the master password of {instance.identifier} to the environment's") from None
    ready = waits.instance_available(target, instance.identifier, progress, settled=("MasterUserPassword",))
    problem = _login(ready.address or "", ready.port or 0, creds, libpq_tls(target))
    if problem is None:
        progress(f"{instance.identifier} accepts the environment's credentials over TLS")
    elif target.is_local or "password authentication failed" in problem:
        raise RecoveryError(
            f"{instance.identifier} does not accept the credentials of {naming.secret_path(env, 'db/credentials')}: {problem}; secrets not changed"
        )
    else:  # on AWS the instance sits in private subnets: this machine may not reach it
        progress(f"could not reach {instance.identifier} from here to try a login ({problem}); RDS reports it available")


def cut_over(target: Target, spec: EnvironmentSpec, instance: LiveInstance, progress: waits.Progress, now: datetime | None = None) -> CutoverState:
    """Point both DB secrets at ``instance`` (already prepared); the originals stay labelled for the rollback."""
    env, sm = spec.name.value, target.client("secretsmanager")
    if instance.address is None or instance.port is None:
        raise RecoveryError(f"{instance.identifier} has no endpoint yet; secrets not changed")
    since = utc(now or datetime.now(UTC))
    previous = active(target, env)
    already = previous.secrets if previous else ()
    try:
        for logical in SECRETS:
            path = naming.secret_path(env, logical)
            value = _read(target, path)
            current, labelled, _ = _versions(target, path)
            sm.tag_resource(SecretId=path, Tags=[{"Key": TAG_INSTANCE, "Value": instance.identifier}, {"Key": TAG_SINCE, "Value": since}])
            new = pointed(logical, value, instance.identifier, instance.address, instance.port)
            if new != value:
                sm.put_secret_value(SecretId=path, SecretString=json.dumps(new))
            if path not in already and labelled != current:
                # The first cutover labels the version it replaced (after the put: a label on the current version
                # must not depend on surviving the move of AWSCURRENT); a later cutover keeps the first one's label.
                moved: dict[str, str] = {"RemoveFromVersionId": labelled} if labelled else {}
                sm.update_secret_version_stage(SecretId=path, VersionStage=STAGE, MoveToVersionId=current, **moved)
            progress(f"{path} now points at {instance.identifier}")
    except ClientError as error:
        raise from_aws(error, env, f"cutover to {instance.identifier} (roll it back with `{command('restore', env, '--rollback-cutover')}`)") from None
    return CutoverState(env, instance.identifier, since, tuple(naming.secret_path(env, s) for s in SECRETS))


def rollback(target: Target, spec: EnvironmentSpec, progress: waits.Progress) -> CutoverState:
    """Put back the values the first cutover replaced; the restored instance is left running (deleting it is a separate step).

    The original value is written again as a new AWSCURRENT version (byte for byte), rather than moving the
    label back, so every reader, however it asks for AWSCURRENT, sees it. Where the label is missing (a
    cutover cut off between its write and its label), the original is the AWSPREVIOUS version.
    """
    env, sm = spec.name.value, target.client("secretsmanager")
    state = active(target, env)
    if state is None:
        raise RecoveryError(f"no cutover to roll back: the secrets of {env} point at {naming.db_instance_id(env)}")
    try:
        for logical in SECRETS:
            path = naming.secret_path(env, logical)
            if path not in state.secrets:
                continue
            current, labelled, aws_previous = _versions(target, path)
            original_id = labelled or aws_previous
            if original_id is None:
                raise RecoveryError(f"{path} is tagged {TAG_INSTANCE} but no version holds its value before the cutover; nothing rolled back for it")
            original = sm.get_secret_value(SecretId=path, VersionId=original_id)["SecretString"]
            if sm.get_secret_value(SecretId=path)["SecretString"] != original:
                sm.put_secret_value(SecretId=path, SecretString=original)
            sm.untag_resource(SecretId=path, TagKeys=[TAG_INSTANCE, TAG_SINCE])
            if labelled is not None:
                sm.update_secret_version_stage(SecretId=path, VersionStage=STAGE, RemoveFromVersionId=labelled)
            progress(f"{path} points at {naming.db_instance_id(env)} again")
    except ClientError as error:
        raise from_aws(error, env, "rollback of the cutover (run the same command again to finish it)") from None
    return state
