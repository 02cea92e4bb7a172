"""The provider contract: how the local CloudFormation creates, reads, updates and deletes one resource type.

Providers speak the public AWS API (boto3) to the local cloud itself, so each one reads like what
CloudFormation does on AWS, and a property moto's own CloudFormation code would drop cannot be dropped
here: every property of the template is either passed to an API call or rejected by name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import boto3
from botocore.config import Config

ACCOUNT_REGION_DEFAULTS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class ProviderError(RuntimeError):
    """A resource could not be created, updated or deleted; the message is shown as the event's reason."""


class AlreadyExists(ProviderError):
    """A create met an existing resource. CloudFormation never adopts it: the resource fails, and a rollback
    leaves it alone (the operation did not create it)."""

    def __init__(self, name: str, detail: str | None = None):
        super().__init__(f"{name} already exists" + (f": {detail}" if detail else ""))


def _new_suffix() -> str:
    from rentaliq.local.cfn.naming import random_suffix

    return random_suffix()


def error_code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    return (response or {}).get("Error", {}).get("Code", "") if isinstance(response, dict) else ""


def is_not_found(error: BaseException) -> bool:
    """AWS's many spellings of "no such resource" (NoSuchBucket, NoSuchEntity, DBInstanceNotFound, InvalidVpcID.NotFound...)."""
    code = error_code(error)
    return "NotFound" in code or code.startswith("NoSuch") or code in ("404", "ResourceNotFoundException")


@dataclass
class Context:
    """What a provider knows about the call: where the local cloud is and which stack it serves."""

    account_id: str
    region: str
    stack_name: str
    logical_id: str
    stack_id: str = ""
    # Drawn once per resource operation and kept in the stack's operation record, so a generated name can be
    # computed again after a crash (to find what an interrupted create left behind).
    suffix: str = field(default_factory=_new_suffix)
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
            # CloudTrail events of calls made while deploying name the stack's operator, invoked by CloudFormation.
            stack_headers = {"X-RentalIQ-Invoked-By": "cloudformation.amazonaws.com", "X-RentalIQ-Stack": self.stack_name}
            self._clients[service].meta.events.register("before-sign", partial(_mark_request, headers=stack_headers))
        return self._clients[service]

    def generated_name(self, max_length: int = 64, lower: bool = False) -> str:
        """CloudFormation's name for a resource whose template gives none: stack-logicalid-suffix, both parts
        shortened to fit ``max_length`` (``naming.physical_name``), so the logical id is never dropped."""
        from rentaliq.local.cfn.naming import physical_name

        return physical_name(self.stack_name, self.logical_id, max_length, lower=lower, suffix=self.suffix)

    def cloudformation_tags(self) -> list[dict[str, str]]:
        """The tags CloudFormation puts on what it creates; given at create time, so a crash cannot leave an untagged one."""
        tags = [{"Key": "aws:cloudformation:stack-name", "Value": self.stack_name}, {"Key": "aws:cloudformation:logical-id", "Value": self.logical_id}]
        if self.stack_id:
            tags.append({"Key": "aws:cloudformation:stack-id", "Value": self.stack_id})
        return tags


def _mark_request(request: Any, headers: dict[str, str], **_: Any) -> None:
    for key, value in headers.items():
        request.headers[key] = value


class _CreateOnly:
    """``Provider.replace_on_change``: read from AWS's resource schema (``schemas``), never typed by hand."""

    def __get__(self, instance: Any, owner: type) -> frozenset[str]:
        from rentaliq.local.cfn.schemas import create_only

        return create_only(owner.type_name)


class _NameProperty:
    def __get__(self, instance: Any, owner: type) -> str | None:
        from rentaliq.local.cfn.schemas import NAME_PROPERTY

        return NAME_PROPERTY.get(owner.type_name)


class Provider:
    """One CloudFormation resource type. Subclasses set ``type_name`` and implement create/delete."""

    type_name: ClassVar[str]
    # Properties whose change cannot be applied in place: CloudFormation replaces the resource.
    replace_on_change: ClassVar[frozenset[str]] = _CreateOnly()  # type: ignore[assignment]

    # The property that names the resource, if the template may name it (CloudFormation refuses to replace a
    # custom-named resource: the new one could not take the name). From ``schemas.NAME_PROPERTY``.
    name_property: ClassVar[str | None] = _NameProperty()  # type: ignore[assignment]

    def custom_name(self, props: dict[str, Any]) -> str | None:
        """The name the template gives the resource (``name_property``), None when CloudFormation generates one.
        A type whose name sits inside another property (a budget's ``Budget.BudgetName``) overrides this."""
        value = props.get(self.name_property) if self.name_property else None
        return value if isinstance(value, str) and value else None

    def create(self, props: dict[str, Any], ctx: Context) -> str:
        raise NotImplementedError

    def check_absent(self, props: dict[str, Any], ctx: Context) -> None:
        """Raise :class:`AlreadyExists` when the resource this create would make exists already (no adoption)."""

    def locate(self, props: dict[str, Any], ctx: Context) -> list[str]:
        """After a crash: physical ids of what a create with these props (and ``ctx.suffix``) may have made."""
        return []

    def requires_replacement(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """AWS's schema rules (``schemas.must_replace``), the same rules the change sets report as ``Replacement``:
        a change the report calls in place is updated in place, never silently replaced."""
        from rentaliq.local.cfn.schemas import must_replace

        return bool(must_replace(self.type_name, old, new))

    def update(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> str:
        """In place (the engine has already decided it is no replacement). A type without an update path says so."""
        self.in_place_only(old, new, frozenset())
        return physical_id

    def in_place_only(self, old: dict[str, Any], new: dict[str, Any], supported: frozenset[str]) -> None:
        """Refuse, by name, a change of a property this provider cannot update in place (rather than replacing)."""
        changed = sorted(p for p in set(old) | set(new) if p not in supported and old.get(p) != new.get(p))
        if changed:
            allowed = ", ".join(sorted(supported)) or "none"
            raise ProviderError(
                f"The local cloud cannot update {', '.join(changed)} of {self.type_name} in place "
                f"(updatable here: {allowed}); change it in a new resource instead."
            )

    def delete(self, physical_id: str, props: dict[str, Any], ctx: Context) -> None:
        raise NotImplementedError

    def attributes(self, physical_id: str, props: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Fn::GetAtt values, read live so they follow the resource (an endpoint that moves, say)."""
        return {}

    def ref(self, physical_id: str, props: dict[str, Any], ctx: Context) -> str:
        return physical_id


class Named(Provider):
    """A type the template may name (its ``name_property``); without a name, CloudFormation generates one.

    ``check_absent`` and ``locate`` look for exactly the name a create would use, so a crash's leftover is found
    and an existing resource is refused rather than adopted. Subclasses say how long a generated name may be,
    whether the service lowercases names, and how to look one up (``named_exists``) or override ``locate``.
    """

    name_max_length: ClassVar[int] = 64
    # RDS stores identifiers in lowercase, given or generated: the name to look for is the lowercased one.
    lowercase_name: ClassVar[bool] = False

    def name(self, props: dict[str, Any], ctx: Context) -> str:
        name: str = props.get(self.name_property or "") or ctx.generated_name(self.name_max_length, lower=self.lowercase_name)
        return name.lower() if self.lowercase_name else name

    def named_exists(self, name: str, ctx: Context) -> bool:
        """Whether the service has a resource of this type under ``name``."""
        raise NotImplementedError

    def exists_detail(self, props: dict[str, Any]) -> str | None:
        """What the AlreadyExists reason adds after the name, if anything."""
        return None

    def check_absent(self, props: dict[str, Any], ctx: Context) -> None:
        if self.locate(props, ctx):
            raise AlreadyExists(self.name(props, ctx), self.exists_detail(props))

    def locate(self, props: dict[str, Any], ctx: Context) -> list[str]:
        name = self.name(props, ctx)
        return [name] if self.named_exists(name, ctx) else []


def exists(call: Any, *args: Any, **kwargs: Any) -> bool:
    """Whether a describe/get call finds its resource (a not-found error means no)."""
    try:
        call(*args, **kwargs)
    except Exception as error:
        if is_not_found(error):
            return False
        raise
    return True


def tag_list(props: dict[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: t["Key"], value: t["Value"]} for t in props.get("Tags", [])]


def removed_tag_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Tag keys the old properties had and the new ones drop: an update (or a rollback) must remove them, since
    the services' tag-adding calls only add or overwrite."""
    kept = {t["Key"] for t in new.get("Tags", [])}
    return [t["Key"] for t in old.get("Tags", []) if t["Key"] not in kept]


def as_json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def as_int(value: Any) -> int:
    return int(value)
