"""What a bill is made of: a line per cost component of a template resource, and the table of line builders.

Every resource type a template can hold is either priced by a builder registered here (``@builds("AWS::...")``)
or declared free in :mod:`rentaliq.cost.free`, with the reason; anything else is an error, so a construct that
adds a resource can never drop out of the bill silently. A new type (a NAT instance, a schedule, a budget) is one
more builder: nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rentaliq.cost.prices import Price, PriceTable
from rentaliq.spec.models import EnvironmentSpec, UsageSpec

# Properties that hold a resource's physical name, in the order they are looked for.
_NAME_PROPERTIES = ("DBInstanceIdentifier", "BucketName", "Name", "TopicName", "AlarmName", "DashboardName", "LogGroupName", "KeyId")


@dataclass(frozen=True)
class Line:
    """One cost component of one resource: ``quantity`` units of ``price`` a month."""

    resource: str  # the logical id in the template
    name: str  # the physical name when the template sets one, else ""
    resource_type: str
    component: str  # what is billed, e.g. "Instance hours (db.t3.micro, Single-AZ)"
    quantity: float  # in the price's unit, per month
    price: Price
    usage: tuple[str, ...] = ()  # the usage assumptions (UsageSpec fields) the quantity comes from
    note: str = ""

    @property
    def monthly_usd(self) -> float:
        return self.quantity * self.price.usd

    @property
    def label(self) -> str:
        return self.name or self.resource


@dataclass(frozen=True)
class PricingContext:
    """Everything a line builder may read: the whole template (to follow references), the spec, the usage, the prices."""

    template: dict[str, Any]
    spec: EnvironmentSpec
    usage: UsageSpec
    prices: PriceTable
    resources: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resources", dict(self.template.get("Resources", {})))

    @property
    def hours(self) -> int:
        return self.prices.hours_per_month

    def of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return ((lid, r) for lid, r in self.resources.items() if r.get("Type") == resource_type)

    def line(self, logical_id: str, component: str, quantity: float, price_key: str, *, usage: tuple[str, ...] = (), note: str = "") -> Line:
        resource = self.resources[logical_id]
        return Line(logical_id, physical_name(resource), resource["Type"], component, quantity, self.prices[price_key], usage, note)

    def monthly_plus_calls(self, logical_id: str, item: tuple[str, str], calls: tuple[str, str], calls_usage: str) -> list[Line]:
        """AWS's way of billing a secret or a KMS key: the item by the month, and its API calls per 10,000.
        ``item`` and ``calls`` are (component, price key); ``calls_usage`` names the [usage] field counting the calls."""
        monthly_calls = float(getattr(self.usage, calls_usage))
        return [
            self.line(logical_id, item[0], 1, item[1]),
            self.line(logical_id, calls[0], monthly_calls / 10_000, calls[1], usage=(calls_usage,)),
        ]


LineBuilder = Callable[[str, dict[str, Any], PricingContext], list[Line]]
BUILDERS: dict[str, LineBuilder] = {}


def builds(*resource_types: str) -> Callable[[LineBuilder], LineBuilder]:
    """Register a line builder for these CloudFormation types."""

    def register(builder: LineBuilder) -> LineBuilder:
        for resource_type in resource_types:
            if resource_type in BUILDERS:
                raise RuntimeError(f"two line builders for {resource_type}")
            BUILDERS[resource_type] = builder
        return builder

    return register


def physical_name(resource: dict[str, Any]) -> str:
    props = resource.get("Properties", {})
    return next((props[key] for key in _NAME_PROPERTIES if isinstance(props.get(key), str)), "")


def props(resource: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = resource.get("Properties", {})
    return properties


def refers_to(value: Any, logical_id: str) -> bool:
    """Whether a property value references ``logical_id`` (Ref or Fn::GetAtt, at any depth)."""
    if isinstance(value, dict):
        if value.get("Ref") == logical_id:
            return True
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute and attribute[0] == logical_id:
            return True
        return any(refers_to(v, logical_id) for v in value.values())
    if isinstance(value, list):
        return any(refers_to(v, logical_id) for v in value)
    return False
