"""RDS API rules moto 5.2.5 does not enforce, as AWS applies them to DB instances.

- **Identifiers are case-insensitive.** RDS stores ``DBInstanceIdentifier`` in lowercase and accepts any
  casing in every later call. moto lowercases the attribute but keys ``RDSBackend.databases`` by the
  identifier as sent, so ``MyDB`` is created under a key that ``DeleteDBInstance(mydb)`` misses, while
  ``describe`` finds it through a case-insensitive filter. Every instance call's identifier (and
  ``NewDBInstanceIdentifier``) is lowercased before moto sees it.
- **Storage can only grow.** ModifyDBInstance with an ``AllocatedStorage`` below the current size is
  refused with AWS's answer (InvalidParameterCombination, "Invalid storage size for engine name postgres
  and storage type gp2: 10", as CloudFormation reports it, e.g. convox/rack#2846) and nothing changes.
- **Managed master passwords are random.** With ``ManageMasterUserPassword``, RDS generates the master
  password and keeps ``{"username", "password"}`` in a Secrets Manager secret; moto stores a fixed
  ``admin``/``P@55w0rd!``. The secret now holds the instance's master username and a fresh random password
  (RDS's excluded characters ``/ " @`` and space left out), which the PostgreSQL binding then uses;
  ``RotateMasterUserPassword`` puts a new random password as the secret's AWSCURRENT version.
"""

from __future__ import annotations

import functools
import json
import secrets
import string
import uuid
from typing import Any

from moto.rds import models as rds_models
from moto.rds.exceptions import RDSClientError

_INSTANCE_METHODS = (
    "describe_db_instances",
    "create_db_snapshot",
    "modify_db_instance",
    "reboot_db_instance",
    "stop_db_instance",
    "start_db_instance",
    "delete_db_instance",
)
_PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits + string.punctuation if c not in "/\"@'\\`")
_PASSWORD_LENGTH = 28

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _lowercase_identifiers()
    _refuse_storage_shrink()
    _random_managed_password()
    _installed = True


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _lowercase_identifiers() -> None:
    backend = rds_models.RDSBackend
    for name in ("create_db_instance", "create_db_instance_read_replica"):

        def make_create(original):
            @functools.wraps(original)
            def create(self, db_kwargs):
                for key in ("db_instance_identifier", "source_db_instance_identifier"):
                    if isinstance(db_kwargs.get(key), str) and not db_kwargs[key].startswith("arn:"):
                        db_kwargs[key] = db_kwargs[key].lower()
                return original(self, db_kwargs)

            return create

        setattr(backend, name, make_create(getattr(backend, name)))

    for name in _INSTANCE_METHODS:
        original = getattr(backend, name)

        def make(original):
            @functools.wraps(original)
            def wrapper(self, *args, **kwargs):
                if args:
                    args = (_lower(args[0]), *args[1:])
                if "db_instance_identifier" in kwargs:
                    kwargs["db_instance_identifier"] = _lower(kwargs["db_instance_identifier"])
                db_kwargs = args[1] if len(args) > 1 and hasattr(args[1], "get") else kwargs.get("db_kwargs")
                if db_kwargs is not None and db_kwargs.get("new_db_instance_identifier"):
                    db_kwargs["new_db_instance_identifier"] = db_kwargs["new_db_instance_identifier"].lower()
                return original(self, *args, **kwargs)

            return wrapper

        setattr(backend, name, make(original))


def _refuse_storage_shrink() -> None:
    original = rds_models.RDSBackend.modify_db_instance

    @functools.wraps(original)
    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        requested = db_kwargs.get("allocated_storage")
        if requested is not None:
            db = self.describe_db_instances(db_instance_identifier)[0]
            current = getattr(db, "allocated_storage", None)
            if current is not None and int(requested) < int(current):
                storage_type = getattr(db, "storage_type", None) or "gp2"
                raise RDSClientError(
                    "InvalidParameterCombination",
                    f"Invalid storage size for engine name {db.engine} and storage type {storage_type}: {int(requested)}",
                )
        return original(self, db_instance_identifier, db_kwargs)

    rds_models.RDSBackend.modify_db_instance = modify_db_instance


def generate_password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_LENGTH))


def _random_managed_password() -> None:
    def generate_secret_string(self) -> str:
        username = getattr(self.resource, "master_username", None) or "admin"
        return json.dumps({"username": username, "password": generate_password()})

    def rotate_secret(self) -> None:
        # RDS rotates a managed master password itself (no Lambda): a new random password becomes AWSCURRENT.
        self._status = "rotating"
        self.secretsmanager.put_secret_value(
            self.secret.arn,
            secret_string=self._generate_secret_string(),
            secret_binary=None,
            client_request_token=str(uuid.uuid4()),
            version_stages=["AWSCURRENT"],
        )

    rds_models.MasterUserSecret._generate_secret_string = generate_secret_string
    rds_models.MasterUserSecret.rotate_secret = rotate_secret


def managed_password(db: Any) -> str | None:
    """The master password RDS keeps in the instance's Secrets Manager secret, if it manages one."""
    secret = getattr(getattr(db, "master_user_secret", None), "secret", None)
    if not getattr(db, "manage_master_user_password", False) or secret is None:
        return None
    version = getattr(secret, "versions", {}).get(getattr(secret, "default_version_id", None)) or {}
    return json.loads(version.get("secret_string") or secret.secret_string)["password"]
