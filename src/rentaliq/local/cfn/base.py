"""The provider contract: how the local CloudFormation creates, reads, updates and deletes one resource type.

Providers speak the public AWS API (boto3) to the local cloud itself, so each one reads like what
CloudFormation does on AWS, and a property moto's own CloudFormation code would drop cannot be dropped
here: every property of the template is either passed to an API call or rejected by name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import boto3
from botocore.config import Config

ACCOUNT_REGION_DEFAULTS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class ProviderError(RuntimeError):
    """A resource could not be created, updated or deleted; the message is shown as the event's reason."""


@dataclass
class Context:
    """What a provider knows about the call: where the local cloud is and which stack it serves."""

    account_id: str
    region: str
    stack_name: str
    logical_id: str
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=os.environ["RENTALIQ_LOCAL_ENDPOINT"],
                region_name=self.region,
                config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=120),
                **ACCOUNT_REGION_DEFAULTS,
            )
        return self._clients[service]

    def generated_name(self, max_length: int = 64, lower: bool = False) -> str:
        """CloudFormation's name for a resource whose template gives none: stack-logicalid-suffix, both parts
        shortened to fit ``max_length`` (``naming.physical_name``), so the logical id is never dropped."""
        from rentaliq.local.cfn.naming import physical_name

        return physical_name(self.stack_name, self.logical_id, max_length, lower=lower)


class _CreateOnly:
    """``Provider.replace_on_change``: read from AWS's resource schema (``schemas``), never typed by hand."""

    def __get__(self, instance: Any, owner: type) -> frozenset[str]:
        from rentaliq.local.cfn.schemas import create_only

        return create_only(owner.type_name)


class Provider:
    """One CloudFormation resource type. Subclasses set ``type_name`` and implement create/delete."""

    type_name: ClassVar[str]
    # Properties whose change cannot be applied in place: CloudFormation replaces the resource.
    replace_on_change: ClassVar[frozenset[str]] = _CreateOnly()  # type: ignore[assignment]

    def create(self, props: dict[str, Any], ctx: Context) -> str:
        raise NotImplementedError

    def update(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> str:
        """Default: replacement (create the new one, then delete the old), as CloudFormation does."""
        new_id = self.create(new, ctx)
        self.delete(physical_id, old, ctx)
        return new_id

    def delete(self, physical_id: str, props: dict[str, Any], ctx: Context) -> None:
        raise NotImplementedError

    def attributes(self, physical_id: str, props: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Fn::GetAtt values, read live so they follow the resource (an endpoint that moves, say)."""
        return {}

    def ref(self, physical_id: str, props: dict[str, Any], ctx: Context) -> str:
        return physical_id


def tag_list(props: dict[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: t["Key"], value: t["Value"]} for t in props.get("Tags", [])]


def as_json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def as_int(value: Any) -> int:
    return int(value)
