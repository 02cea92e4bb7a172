"""Lines for EC2 instances (the NAT instances of ``network.nat = "instance"``): hours, root volume, public IPv4.

- Instance hours by type (``ec2.instance.{type}``, Linux on-demand);
- the root EBS volume, GB-month by volume type, from the template's BlockDeviceMappings (an instance without one
  is billed the AL2023 image's own 8 GB gp3, and the line says it was assumed);
- the public IPv4 address AWS bills by the hour since February 2024, when the instance gets one (its subnet
  auto-assigns, or its network interface asks for one);
- for a NAT instance (source/destination check off), its share of ``nat_gb``: an instance has no per-GB
  processing charge, unlike a NAT gateway, so the line is there to show where the traffic goes, at $0.
"""

from __future__ import annotations

from typing import Any

from rentaliq.cost.lines import Line, PricingContext, builds, props

DEFAULT_ROOT = ("gp3", 8)  # Amazon Linux 2023's image: an 8 GB gp3 root volume


def _ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def _public_ipv4(p: dict[str, Any], ctx: PricingContext) -> bool:
    interfaces = p.get("NetworkInterfaces") or []
    if interfaces:
        return any(str(i.get("AssociatePublicIpAddress", "false")).lower() == "true" for i in interfaces if isinstance(i, dict))
    subnet = ctx.resources.get(_ref(p.get("SubnetId")) or "", {})
    return str(props(subnet).get("MapPublicIpOnLaunch", "false")).lower() == "true"


def _is_nat(p: dict[str, Any]) -> bool:
    return str(p.get("SourceDestCheck", "true")).lower() == "false"


@builds("AWS::EC2::Instance")
def instance(lid: str, resource: dict[str, Any], ctx: PricingContext) -> list[Line]:
    p = props(resource)
    instance_type = str(p.get("InstanceType", "m1.small"))
    lines = [ctx.line(lid, f"Instance hours ({instance_type}, Linux)", ctx.hours, f"ec2.instance.{instance_type}")]
    volumes = [m["Ebs"] for m in p.get("BlockDeviceMappings") or [] if isinstance(m, dict) and isinstance(m.get("Ebs"), dict)]
    if volumes:
        for ebs in volumes:
            volume_type, size = str(ebs.get("VolumeType", "gp3")), int(ebs.get("VolumeSize", DEFAULT_ROOT[1]))
            lines.append(ctx.line(lid, f"EBS volume ({size} GB {volume_type})", size, f"ec2.ebs.{volume_type}"))
    else:
        volume_type, size = DEFAULT_ROOT
        lines.append(ctx.line(lid, f"EBS root volume ({size} GB {volume_type}, the image's)", size, f"ec2.ebs.{volume_type}", note="size assumed"))
    if _public_ipv4(p, ctx):
        lines.append(ctx.line(lid, "Public IPv4 address hours", ctx.hours, "vpc.public_ipv4.hour"))
    if _is_nat(p):
        nats = sum(1 for _, r in ctx.of_type("AWS::EC2::Instance") if _is_nat(props(r)))
        lines.append(ctx.line(lid, f"Data processed (1/{nats} of nat_gb; no charge)", ctx.usage.nat_gb / nats, "ec2.nat_instance.gb", usage=("nat_gb",)))
    return lines
