"""Lines for the network: NAT gateways (hours + GB processed), public IPv4 addresses, VPC endpoints.

The GB through NAT (``usage.nat_gb``) is the environment's total, shared evenly between its gateways: a bill that
charged each gateway the whole volume would count it twice. Data transfer out to the internet is not modelled
(AWS's 100 GB a month free covers what these environments send).
"""

from __future__ import annotations

from typing import Any

from rentaliq.cost.lines import Line, PricingContext, builds, props


@builds("AWS::EC2::NatGateway")
def nat_gateway(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    gateways = sum(1 for _ in ctx.of_type("AWS::EC2::NatGateway"))
    return [
        ctx.line(lid, "NAT gateway hours", ctx.hours, "vpc.nat_gateway.hour"),
        ctx.line(lid, f"Data processed (1/{gateways} of nat_gb)", ctx.usage.nat_gb / gateways, "vpc.nat_gateway.gb", usage=("nat_gb",)),
    ]


@builds("AWS::EC2::EIP")
def elastic_ip(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    return [ctx.line(lid, "Public IPv4 address hours", ctx.hours, "vpc.public_ipv4.hour")]


@builds("AWS::EC2::VPCEndpoint")
def vpc_endpoint(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    p = props(resource)
    if p.get("VpcEndpointType", "Gateway") == "Gateway":
        return [ctx.line(lid, "Gateway endpoint (free)", 1, "vpc.gateway_endpoint")]
    zones = len(p.get("SubnetIds") or []) or 1
    interfaces = sum(1 for _, r in ctx.of_type("AWS::EC2::VPCEndpoint") if props(r).get("VpcEndpointType") == "Interface")
    return [
        ctx.line(lid, f"Interface endpoint hours ({zones} AZ)", ctx.hours * zones, "vpc.interface_endpoint.hour"),
        ctx.line(
            lid, f"Data processed (1/{interfaces} of endpoint_gb)", ctx.usage.endpoint_gb / interfaces, "vpc.interface_endpoint.gb", usage=("endpoint_gb",)
        ),
    ]
