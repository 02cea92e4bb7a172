"""EC2 area: the VPC (CIDR, AZs, egress choice and endpoints: :mod:`.nat`, S3 endpoint) and the two security groups.

Also owns :func:`read_network`, which reads the VPC and the security groups once; RDS and the stack
outputs compare against the same :class:`Network`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rentaliq import naming
from rentaliq.contract import APP_PUBLIC_PORTS
from rentaliq.ops.verify import nat
from rentaliq.ops.verify.checks import EC2
from rentaliq.ops.verify.documents import sg_rule, sg_rules, tag_map
from rentaliq.ops.verify.reader import Audit

ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class Network:
    """The environment's VPC and security groups, as read once from the live environment."""

    vpc_id: str | None  # the spec's existing VPC, or the one VPC named naming.vpc(env); None if not exactly one
    vpcs: tuple[Mapping[str, Any], ...] | None  # the VPCs so named; None if the spec names an existing VPC or the read failed
    groups: Mapping[str, Mapping[str, Any] | None]  # by name: the one group so named (None: none or several); unread names absent


def read_network(audit: Audit) -> Network:
    """Find the VPC, then each security group by name in it; a failed read is recorded as its EC2 check."""
    env, existing = audit.env, audit.spec.network.existing
    vpcs: tuple[Mapping[str, Any], ...] | None = None
    vpc_id = existing.vpc_id if existing is not None else None
    if existing is None:
        name = naming.vpc(env)
        with audit.read.section(EC2, "vpc"):
            vpcs = tuple(audit.read.paginate(EC2, f"{name} exists", name, "ec2", "describe_vpcs", "Vpcs", Filters=[{"Name": "tag:Name", "Values": [name]}]))
            vpc_id = vpcs[0]["VpcId"] if len(vpcs) == 1 else None
    groups: dict[str, Mapping[str, Any] | None] = {}
    for name in (naming.rds_security_group(env), naming.app_security_group(env)):
        filters = [{"Name": "group-name", "Values": [name]}] + ([{"Name": "vpc-id", "Values": [vpc_id]}] if vpc_id else [])
        with audit.read.section(EC2, "security groups"):
            found = audit.read.paginate(EC2, f"{name} exists", name, "ec2", "describe_security_groups", "SecurityGroups", Filters=filters)
            groups[name] = found[0] if len(found) == 1 else None
    return Network(vpc_id, vpcs, MappingProxyType(groups))


def check(audit: Audit, network: Network) -> None:
    with audit.read.section(EC2, "vpc"):
        _vpc(audit, network)
    with audit.read.section(EC2, "security groups"):
        _security_groups(audit, network)


def _vpc(audit: Audit, network: Network) -> None:
    net, add, read = audit.spec.network, audit.record.add, audit.read
    if net.existing is not None:
        vpc_id = net.existing.vpc_id
        vpcs = read.call(EC2, f"{vpc_id} exists", vpc_id, "ec2", "describe_vpcs", VpcIds=[vpc_id])["Vpcs"]
        add(EC2, f"{vpc_id} exists", vpc_id, vpcs[0]["VpcId"] if vpcs else None)
        return
    if network.vpcs is None:
        return  # the read failed; its check is recorded
    name, vpcs = naming.vpc(audit.env), network.vpcs
    if not add(EC2, f"{name} exists", name, tag_map(vpcs[0].get("Tags")).get("Name") if len(vpcs) == 1 else f"{len(vpcs)} VPC(s) named so"):
        return
    vpc, in_vpc = vpcs[0], [{"Name": "vpc-id", "Values": [network.vpc_id]}]
    add(EC2, f"{name} CIDR", net.vpc_cidr, vpc.get("CidrBlock"))
    audit.record.tags(EC2, name, {**audit.spec.resource_tags(), "Name": name}, vpc.get("Tags"))
    with read.section(EC2, "subnets"):
        subnets = read.paginate(EC2, f"{name} availability zones", net.availability_zones, "ec2", "describe_subnets", "Subnets", Filters=in_vpc)
        azs = sorted({s["AvailabilityZone"] for s in subnets})
        add(EC2, f"{name} availability zones", net.availability_zones, len(azs), detail=", ".join(azs))
    with read.section(EC2, "nat"):
        nat.check_egress(audit, vpc["VpcId"])
    with read.section(EC2, "endpoints"):
        endpoints = read.paginate(EC2, f"{name} S3 gateway endpoint", "present", "ec2", "describe_vpc_endpoints", "VpcEndpoints", Filters=in_vpc)
        s3_service = f"com.amazonaws.{audit.spec.region}.s3"
        gateways = [
            e
            for e in endpoints
            if e.get("VpcEndpointType") == "Gateway" and e.get("ServiceName") == s3_service and e.get("State", "available").lower() in ("available", "pending")
        ]
        add(EC2, f"{name} S3 gateway endpoint", s3_service, gateways[0]["ServiceName"] if gateways else None)
    with read.section(EC2, "secrets endpoint"):
        app_sg = network.groups.get(naming.app_security_group(audit.env))
        nat.check_endpoint(audit, vpc["VpcId"], app_sg["GroupId"] if app_sg else None)


def _security_groups(audit: Audit, network: Network) -> None:
    env, port, add = audit.env, audit.db.port, audit.record.add
    rds_name, app_name = naming.rds_security_group(env), naming.app_security_group(env)
    for name in (rds_name, app_name):
        if name not in network.groups:
            continue  # the read failed; its check is recorded
        group = network.groups[name]
        detail = f"in {network.vpc_id}" if network.vpc_id else "VPC not found: looked up by name only"
        add(EC2, f"{name} exists", name, group.get("GroupName") if group else None, detail=detail)
        if group:
            audit.record.tags(EC2, name, audit.spec.resource_tags(), group.get("Tags"))
    rds_sg, app_sg = network.groups.get(rds_name), network.groups.get(app_name)
    rds_id = rds_sg["GroupId"] if rds_sg else rds_name
    app_id = app_sg["GroupId"] if app_sg else app_name
    public = [sg_rule(p, ANYWHERE) for p in APP_PUBLIC_PORTS]
    if app_sg:
        add(EC2, f"{app_name} ingress", sorted(public), sg_rules(app_sg.get("IpPermissions", [])))
        add(
            EC2,
            f"{app_name} egress",
            sorted([*public, sg_rule(port, rds_id)]),
            sg_rules(app_sg.get("IpPermissionsEgress", [])),
            detail=f"{rds_id} is {rds_name}",
        )
    if rds_sg:
        add(
            EC2,
            f"{rds_name} ingress",
            sorted([sg_rule(port, app_id), *(sg_rule(port, c) for c in audit.db.allowed_cidrs)]),
            sg_rules(rds_sg.get("IpPermissions", [])),
            detail=f"{app_id} is {app_name}",
        )
        add(EC2, f"{rds_name} egress", [sg_rule(None, ANYWHERE)], sg_rules(rds_sg.get("IpPermissionsEgress", [])))
