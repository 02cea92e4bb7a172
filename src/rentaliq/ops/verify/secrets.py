"""Secrets area: the four secrets exist with their tags and JSON keys (DESIGN.md "Secrets", contract.SECRET_KEYS),
and their values agree with the live instance, with each other and with the spec.

During a restore's cutover (CUTOVER_TAG on the DB secrets) the audit records one ``deviation`` check, and
the DB secrets must then match the instance they were pointed at.

A secret value never leaves this module: it is kept out of every repr and every check, which says only
``matches`` or ``differs`` (and, for an unreadable secret, names no value).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from rentaliq import naming
from rentaliq.contract import CUTOVER_TAG, S3_CONFIG_KMS_KEY, SECRET_KEYS, SSLMODE, secret_keys
from rentaliq.ops.verify.checks import SECRETS
from rentaliq.ops.verify.rds import ENGINE, Instance
from rentaliq.ops.verify.reader import Audit, Recorded


@dataclass(frozen=True)
class Secret:
    """One secret as read: its ARN and its JSON object (None if it is not one; never in a repr)."""

    path: str
    arn: str
    value: Mapping[str, Any] | None = field(repr=False)
    cutover: str | None = None  # the instance a restore's cutover pointed this secret at (its CUTOVER_TAG)


def check(audit: Audit, instance: Instance | None) -> Mapping[str, str]:
    """Every secrets check; the ARN of each secret that could be read, by logical name."""
    read, found = audit.read, {}
    for logical in naming.SECRET_NAMES:
        with read.section(SECRETS, logical):
            found[logical] = _read(audit, logical)
    values = {logical: secret for logical, secret in found.items() if secret.value is not None}
    cut = next((secret.cutover for secret in found.values() if secret.cutover), None)
    if cut is not None:  # the secrets are checked against the instance they were deliberately pointed at
        instance = None
        with read.section(SECRETS, "cutover"):
            instance = _cutover(audit, cut)
    creds, conn, keys = values.get("db/credentials"), values.get("db/connection-string"), values.get("api/keys")
    with read.section(SECRETS, "credentials"):
        if creds is not None:
            _credentials(audit, creds, instance, cut or naming.db_instance_id(audit.env))
    with read.section(SECRETS, "rotation"):
        _rotation(audit, naming.secret_path(audit.env, "db/credentials"))
    with read.section(SECRETS, "connection string"):
        if conn is not None:
            _connection_string(audit, conn, creds, instance)
    with read.section(SECRETS, "api keys"):
        if keys is not None and keys.value is not None:
            empty = sorted(k for k in SECRET_KEYS["api/keys"] if k in keys.value and not (isinstance(keys.value[k], str) and keys.value[k]))
            audit.record.add(SECRETS, f"{keys.path} values set", "all set", "all set" if not empty else f"empty: {', '.join(empty)}", ok=not empty)
    with read.section(SECRETS, "s3 config"):
        if "s3/config" in values:
            _s3_config(audit, values["s3/config"])
    return MappingProxyType({logical: secret.arn for logical, secret in found.items() if secret.arn})


def _rotation(audit: Audit, path: str) -> None:
    """Rotation as the spec says (``secrets.rotation_days``: enabled, every N days), and no rotation left incomplete
    (an AWSPENDING version apart from AWSCURRENT: a failed or interrupted rotation Secrets Manager keeps retrying)."""
    days, add = audit.spec.secrets.rotation_days, audit.record.add
    desc = audit.read.call(SECRETS, f"{path} rotation enabled", days is not None, "secretsmanager", "describe_secret", SecretId=path)
    if "ARN" not in desc:  # an answer that parsed to nothing (a proxy's HTML page): no rotation state can be read
        add(SECRETS, f"{path} rotation enabled", days is not None, None, ok=False, detail="DescribeSecret answered without the secret")
        return
    add(SECRETS, f"{path} rotation enabled", days is not None, bool(desc.get("RotationEnabled")), detail="spec secrets.rotation_days")
    if days is not None:
        rules = desc.get("RotationRules") or {}
        every = rules.get("AutomaticallyAfterDays")
        if every is None and (expression := str(rules.get("ScheduleExpression", ""))).startswith("rate("):
            every = int(expression.removeprefix("rate(").split()[0])
        add(SECRETS, f"{path} rotation every (days)", days, every)
    stages = desc.get("VersionIdsToStages") or {}
    stuck = next((v for v, s in stages.items() if "AWSPENDING" in s and "AWSCURRENT" not in s), None)
    add(SECRETS, f"{path} rotation complete", "complete", f"incomplete: AWSPENDING on version {stuck}" if stuck else "complete")


def _cutover(audit: Audit, cut: str) -> Instance:
    """Record the cutover as a deliberate deviation; the instance it points at, which the secrets must match."""
    from rentaliq.deploy.commands import command

    env = audit.env
    audit.record.deviation(
        SECRETS,
        "DB secrets point at the environment's instance",
        naming.db_instance_id(env),
        cut,
        detail=f"deliberate: cut over by `restore --cutover` ({CUTOVER_TAG} tag); undo with `{command('restore', env, '--rollback-cutover')}`",
    )
    found = audit.read.call(SECRETS, "cutover instance exists", cut, "rds", "describe_db_instances", DBInstanceIdentifier=cut)["DBInstances"]
    audit.record.add(SECRETS, "cutover instance exists", cut, found[0]["DBInstanceIdentifier"] if found else None)
    return Instance(found[0].get("Endpoint") or {} if found else {}, None)


def _read(audit: Audit, logical: str) -> Secret:
    path, read, add = naming.secret_path(audit.env, logical), audit.read, audit.record.add
    desc = read.call(SECRETS, f"{path} exists", path, "secretsmanager", "describe_secret", SecretId=path)
    deleted = desc.get("DeletedDate")
    add(
        SECRETS,
        f"{path} exists",
        path,
        desc.get("Name"),
        ok=desc.get("Name") == path and not deleted,
        detail=f"scheduled for deletion on {deleted}" if deleted else "",
    )
    audit.record.tags(SECRETS, path, audit.spec.resource_tags(), desc.get("Tags"))
    keys = sorted(secret_keys(logical, customer_managed_key=audit.spec.encryption.customer_managed_key))
    try:
        raw = read.call(SECRETS, f"{path} keys", keys, "secretsmanager", "get_secret_value", SecretId=path).get("SecretString")
    except Recorded:
        return Secret(path, desc.get("ARN", ""), None)  # described but unreadable: its ARN still counts for the outputs
    try:
        value = json.loads(raw or "")
    except ValueError:
        value = None  # the error message would quote the value: never show it
    if not isinstance(value, dict):
        add(SECRETS, f"{path} keys", keys, None, ok=False, detail="the secret is not a JSON object")
        return Secret(path, desc.get("ARN", ""), None)
    add(SECRETS, f"{path} keys", keys, sorted(value))
    cutover = next((t.get("Value") for t in desc.get("Tags") or [] if t.get("Key") == CUTOVER_TAG), None)
    return Secret(path, desc.get("ARN", ""), MappingProxyType(value), cutover)


def _credentials(audit: Audit, creds: Secret, instance: Instance | None, instance_id: str) -> None:
    path, db, add, value = creds.path, audit.db, audit.record.add, creds.value or {}
    if instance is not None:
        add(SECRETS, f"{path} host", instance.endpoint.get("Address"), value.get("host"), detail="the instance's endpoint address")
        add(SECRETS, f"{path} port", instance.endpoint.get("Port"), value.get("port"), detail="the instance's endpoint port")
    port = value.get("port")
    add(
        SECRETS,
        f"{path} port is a number",
        "number",
        type(port).__name__ if port is not None else None,
        ok=isinstance(port, int) and not isinstance(port, bool),
    )
    add(SECRETS, f"{path} dbInstanceIdentifier", instance_id, value.get("dbInstanceIdentifier"))
    add(SECRETS, f"{path} engine", ENGINE, value.get("engine"))
    add(SECRETS, f"{path} username", db.master_username, value.get("username"))
    add(SECRETS, f"{path} dbname", db.database_name, value.get("dbname"))


def _connection_string(audit: Audit, conn: Secret, creds: Secret | None, instance: Instance | None) -> None:
    path, db, add = conn.path, audit.db, audit.record.add
    endpoint = instance.endpoint if instance is not None else {}
    where = f"{endpoint.get('Address')}:{endpoint.get('Port')}" if endpoint else None
    for key, scheme in (("DATABASE_URL", "postgresql"), ("JDBC_URL", "jdbc:postgresql")):
        url = (conn.value or {}).get(key)
        if not isinstance(url, str):
            continue
        try:
            parts = urlsplit(url.removeprefix("jdbc:"))
            host, port = parts.hostname, parts.port
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        except ValueError:
            add(SECRETS, f"{path} {key} parses", "a URL", "does not parse", ok=False)  # never show the URL: it holds the password
            continue
        actual_scheme = ("jdbc:" if url.startswith("jdbc:") else "") + parts.scheme
        add(SECRETS, f"{path} {key} scheme", scheme, actual_scheme, ok=actual_scheme in (scheme, scheme.replace("postgresql", "postgres")))
        if where:
            add(SECRETS, f"{path} {key} host:port", where, f"{host}:{port}")
        add(SECRETS, f"{path} {key} database", db.database_name, unquote(parts.path.lstrip("/")) or None)
        add(SECRETS, f"{path} {key} sslmode", SSLMODE, query.get("sslmode"))
        if key == "DATABASE_URL":
            add(SECRETS, f"{path} {key} user", db.master_username, unquote(parts.username) if parts.username else None)
            if creds is not None and creds.value is not None:
                same = parts.password is not None and unquote(parts.password) == creds.value.get("password")
                add(SECRETS, f"{path} {key} password", "matches db/credentials", "matches" if same else "differs", ok=same, detail="percent-decoded")
        else:
            clean = not (parts.username or parts.password or "password" in query or "user" in query)
            add(SECRETS, f"{path} {key} holds no credentials", "no credentials", "no credentials" if clean else "credentials", ok=clean)


def _s3_config(audit: Audit, config: Secret) -> None:
    path, bucket, add, value = config.path, naming.files_bucket(audit.env), audit.record.add, config.value or {}
    add(SECRETS, f"{path} bucket_name", bucket, value.get("bucket_name"))
    add(SECRETS, f"{path} bucket_arn", f"arn:{audit.partition}:s3:::{bucket}", value.get("bucket_arn"))
    add(SECRETS, f"{path} region", audit.spec.region, value.get("region"))
    if audit.spec.encryption.customer_managed_key:  # the key services encrypt uploads with: the environment's
        key_arn = str(value.get(S3_CONFIG_KMS_KEY) or "")
        add(SECRETS, f"{path} {S3_CONFIG_KMS_KEY}", f"the key of alias/{audit.env}", key_arn or None, ok=key_arn.startswith(f"arn:{audit.partition}:kms:"))
