"""Secret values that cannot leak: ``repr``/``str``/f-strings and tracebacks show ``***``, never a value.

The plain value comes out only through field access or an explicit ``reveal()``; the typed views
(``Credentials``, ``S3Config``) check each field's type when the secret is read, so a malformed secret
fails at the read, naming the field, not later at a connect.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from rentaliq.runtime.errors import (
    InvalidSecret,
)

_MASK = "***"


class SecretView(Protocol):
    """A typed reading of a secret (Credentials, S3Config): what :meth:`SecretValue.view` builds and memoises."""

    @classmethod
    def from_secret(cls, secret: SecretValue) -> Self: ...


ViewT = TypeVar("ViewT", bound=SecretView)


class SecretValue(Mapping[str, Any]):
    """A secret's JSON fields, read-only; ``repr``/``str`` show the field names, never the values."""

    __slots__ = ("_data", "_views", "name", "secret_id", "version_id")

    def __init__(self, name: str, secret_id: str, version_id: str | None, data: dict[str, Any]) -> None:
        self.name = name
        self.secret_id = secret_id
        self.version_id = version_id
        self._data = data
        self._views: dict[type, Any] = {}  # typed views (Credentials, S3Config), built once per fetched value

    def __getitem__(self, field_name: str) -> Any:
        return self._data[field_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(sorted(self._data))

    def reveal(self) -> dict[str, Any]:
        """The plain fields, as a new dict; the one deliberate way out."""
        return dict(self._data)

    def view(self, kind: type[ViewT]) -> ViewT:
        """``kind.from_secret(self)``, memoised: a cached secret is parsed once, not on every read."""
        try:
            cached: ViewT = self._views[kind]
            return cached
        except KeyError:
            built = self._views[kind] = kind.from_secret(self)
            return built

    def __repr__(self) -> str:
        return f"SecretValue(name={self.name!r}, version_id={self.version_id!r}, fields={list(self.fields)!r}, values={_MASK})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would copy the plain value somewhere we do not control
        raise TypeError("SecretValue cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


def _require(secret: SecretValue, fields: dict[str, type | tuple[type, ...]]) -> None:
    problems = []
    for name, kinds in fields.items():
        if name not in secret:
            problems.append(f"missing field {name!r}")
        elif not isinstance(secret[name], kinds) or isinstance(secret[name], bool):
            problems.append(f"field {name!r} has the wrong type")
    if problems:
        raise InvalidSecret(
            f"secret {secret.name!r} ({secret.secret_id}) is not in the deployed format: " + "; ".join(problems),
            name=secret.name,
            secret_id=secret.secret_id,
        )


@dataclass(frozen=True, repr=False)
class Credentials:
    """The ``db/credentials`` secret, typed.  ``repr`` masks the password."""

    username: str
    password: str = field(compare=False)
    host: str
    port: int
    dbname: str
    engine: str = "postgres"
    db_instance_identifier: str | None = None
    version_id: str | None = None

    @classmethod
    def from_secret(cls, secret: SecretValue) -> Credentials:
        _require(secret, {"username": str, "password": str, "host": str, "port": (int, str), "dbname": str})
        port = secret["port"]
        if isinstance(port, str) and not port.isdigit():
            _require(secret, {"port": int})  # reports the wrong type without showing it
        return cls(
            username=secret["username"],
            password=secret["password"],
            host=secret["host"],
            port=int(port),
            dbname=secret["dbname"],
            engine=secret.get("engine", "postgres"),
            db_instance_identifier=secret.get("dbInstanceIdentifier"),
            version_id=secret.version_id,
        )

    def __repr__(self) -> str:
        return (
            f"Credentials(username={self.username!r}, password={_MASK}, host={self.host!r}, port={self.port}, "
            f"dbname={self.dbname!r}, db_instance_identifier={self.db_instance_identifier!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Credentials cannot be pickled")


@dataclass(frozen=True)
class S3Config:
    """The ``s3/config`` secret: where the environment's files live (not sensitive, but deployed as a secret)."""

    bucket_name: str
    bucket_arn: str
    region: str
    kms_key_arn: str | None = None  # the environment's customer-managed key, where it has one: uploads use it

    @classmethod
    def from_secret(cls, secret: SecretValue) -> S3Config:
        _require(secret, {"bucket_name": str, "bucket_arn": str, "region": str})
        key = secret.get("kms_key_arn")
        return cls(secret["bucket_name"], secret["bucket_arn"], secret["region"], key if isinstance(key, str) and key else None)


@dataclass(frozen=True)
class SecretInfo:
    """What a smoke test may print about a secret: where it is and its shape, never its values."""

    name: str
    secret_id: str
    version_id: str | None
    fields: tuple[str, ...]
