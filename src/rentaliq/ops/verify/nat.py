"""EC2 area, the egress choice (``network.nat``) checked live, and the Secrets Manager interface endpoint.

- ``gateway``: ``nats`` NAT gateways available, no NAT instance, every app subnet's default route to a NAT gateway;
- ``instance``: ``nats`` running NAT instances ``rentaliq-{env}-nat-{n}`` with the source/destination check off,
  IMDSv2 required, only the ``rentaliq-{env}-nat-sg`` group (all traffic in from the VPC's CIDR), every app
  subnet's default route to one of them; their health alarms are checked with the CloudWatch area
  (:func:`check_alarms`), once the alerts topic is known;
- ``none``: no NAT gateway, no NAT instance, no default route from any app subnet;
- ``secrets_manager_endpoint``: the interface endpoint in the app subnets, private DNS on, its security group
  ``rentaliq-{env}-endpoints-sg`` admitting HTTPS from the app security group only; absent when not asked for.

App subnets are found by the tag CDK gives them (``aws-cdk:subnet-name = app``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rentaliq import contract, naming
from rentaliq.ops.verify.checks import CLOUDWATCH, EC2
from rentaliq.ops.verify.documents import sg_rule, sg_rules, tag_map
from rentaliq.ops.verify.reader import Audit

SUBNET_NAME_TAG = "aws-cdk:subnet-name"
APP_SUBNETS = "app"
DEFAULT_ROUTE = "0.0.0.0/0"
LIVE_NAT_GATEWAY = ("pending", "available")
LIVE_INSTANCE = ("pending", "running", "stopping", "stopped")  # exists, whatever it is doing; "running" is checked apart


def _default_target(table: Mapping[str, Any] | None) -> str | None:
    """What an app subnet's default route goes to: "nat-gateway", "instance", another kind, or None (no route)."""
    for route in (table or {}).get("Routes", []):
        if route.get("DestinationCidrBlock") == DEFAULT_ROUTE and route.get("State", "active") == "active":
            if route.get("NatGatewayId"):
                return f"nat-gateway {route['NatGatewayId']}"
            if route.get("InstanceId"):
                return f"instance {route['InstanceId']}"
            return f"other {route.get('GatewayId') or route.get('NetworkInterfaceId') or '?'}"
    return None


def nat_instances(audit: Audit, vpc_id: str, expected: Any) -> list[dict[str, Any]]:
    """The live NAT instances of the VPC (named ``rentaliq-{env}-nat-*``), in name order."""
    filters = [
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "tag:Name", "Values": [f"{naming.resource_name(audit.env, 'nat')}-*"]},
        {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE)},
    ]
    name = f"{naming.vpc(audit.env)} NAT instances"
    reservations = audit.read.paginate(EC2, name, expected, "ec2", "describe_instances", "Reservations", Filters=filters)
    found = [i for r in reservations for i in r.get("Instances", [])]
    return sorted(found, key=lambda i: tag_map(i.get("Tags")).get("Name", ""))


def check_egress(audit: Audit, vpc_id: str) -> None:
    """The ``network.nat`` choice, live: NAT gateways, NAT instances and the app subnets' default routes."""
    net, add, read, env = audit.spec.network, audit.record.add, audit.read, audit.env
    name, in_vpc = naming.vpc(env), [{"Name": "vpc-id", "Values": [vpc_id]}]
    gateways = read.paginate(EC2, f"{name} NAT gateways", net.nats, "ec2", "describe_nat_gateways", "NatGateways", Filters=in_vpc)
    live_gateways = [g for g in gateways if g.get("State") in LIVE_NAT_GATEWAY]
    add(EC2, f"{name} NAT gateways", net.nats if net.nat == "gateway" else 0, len(live_gateways), detail=f"network.nat = {net.nat}")
    instances = nat_instances(audit, vpc_id, net.nats if net.nat == "instance" else 0)
    running = [i for i in instances if i.get("State", {}).get("Name") == "running"]
    add(
        EC2,
        f"{name} NAT instances running",
        net.nats if net.nat == "instance" else 0,
        len(running),
        detail=", ".join(f"{i['InstanceId']} {i.get('State', {}).get('Name')}" for i in instances) or f"network.nat = {net.nat}",
    )
    if net.nat == "instance":
        _instances(audit, vpc_id, instances)
    subnets = read.paginate(
        EC2,
        f"{name} app subnets' default routes",
        net.nat,
        "ec2",
        "describe_subnets",
        "Subnets",
        Filters=[*in_vpc, {"Name": f"tag:{SUBNET_NAME_TAG}", "Values": [APP_SUBNETS]}],
    )
    tables = read.paginate(EC2, f"{name} app subnets' default routes", net.nat, "ec2", "describe_route_tables", "RouteTables", Filters=in_vpc)
    by_subnet = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    targets = {s["SubnetId"]: _default_target(by_subnet.get(s["SubnetId"])) for s in subnets}
    kinds = {"gateway": {f"nat-gateway {g['NatGatewayId']}" for g in live_gateways}, "instance": {f"instance {i['InstanceId']}" for i in running}}
    allowed = kinds.get(net.nat)
    expected = f"each to a NAT {net.nat}" if allowed is not None else "none (isolated)"
    ok = bool(targets) and all((t in allowed) if allowed is not None else t is None for t in targets.values())
    actual = expected if ok else ", ".join(f"{s}: {t or 'no default route'}" for s, t in sorted(targets.items())) or "no app subnets found"
    add(EC2, f"{name} app subnets' default routes", expected, actual, detail=f"{len(targets)} app subnet(s)")


def _instances(audit: Audit, vpc_id: str, instances: list[dict[str, Any]]) -> None:
    env, add, net = audit.env, audit.record.add, audit.spec.network
    sg_name = naming.nat_security_group(env)
    groups = audit.read.paginate(
        EC2,
        f"{sg_name} exists",
        sg_name,
        "ec2",
        "describe_security_groups",
        "SecurityGroups",
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [sg_name]}],
    )
    group = groups[0] if len(groups) == 1 else None
    add(EC2, f"{sg_name} exists", sg_name, group.get("GroupName") if group else None)
    if group:
        audit.record.tags(EC2, sg_name, {**audit.spec.resource_tags(), "Name": sg_name}, group.get("Tags"))
        add(EC2, f"{sg_name} ingress", [sg_rule(None, net.vpc_cidr)], sg_rules(group.get("IpPermissions", [])), detail="all traffic from the VPC only")
        add(EC2, f"{sg_name} egress", [sg_rule(None, "0.0.0.0/0")], sg_rules(group.get("IpPermissionsEgress", [])))
    for number, instance in enumerate(instances, start=1):
        name = naming.nat_instance(env, number)
        add(EC2, f"{name} exists", name, tag_map(instance.get("Tags")).get("Name"), detail=instance["InstanceId"])
        add(EC2, f"{name} instance type", net.nat_instance_type, instance.get("InstanceType"))
        add(EC2, f"{name} source/dest check", False, instance.get("SourceDestCheck"))
        add(EC2, f"{name} IMDSv2", "required", instance.get("MetadataOptions", {}).get("HttpTokens"))
        add(EC2, f"{name} security groups", [sg_name], sorted(g.get("GroupName") for g in instance.get("SecurityGroups", [])))
        audit.record.tags(EC2, name, {**audit.spec.resource_tags(), "Name": name}, instance.get("Tags"))


def check_endpoint(audit: Audit, vpc_id: str, app_sg_id: str | None) -> None:
    """The Secrets Manager interface endpoint, present with private DNS and its SG when asked for, else absent."""
    env, add, net = audit.env, audit.record.add, audit.spec.network
    name, service = naming.vpc(env), f"com.amazonaws.{audit.spec.region}.secretsmanager"
    check = f"{name} Secrets Manager endpoint"
    endpoints = audit.read.paginate(
        EC2,
        check,
        service,
        "ec2",
        "describe_vpc_endpoints",
        "VpcEndpoints",
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [service]}],
    )
    live = [e for e in endpoints if e.get("State", "available").lower() in ("available", "pending", "pendingacceptance")]
    if not net.secrets_manager_endpoint:
        add(EC2, f"{check} absent", None, live[0]["VpcEndpointId"] if live else None, detail="network.secrets_manager_endpoint is off")
        return
    if not add(EC2, check, service, live[0].get("ServiceName") if len(live) == 1 else f"{len(live)} endpoint(s)"):
        return
    endpoint = live[0]
    add(EC2, f"{check} type", "Interface", endpoint.get("VpcEndpointType"))
    add(EC2, f"{check} private DNS", net.secrets_manager_private_dns, endpoint.get("PrivateDnsEnabled"), detail="network.secrets_manager_private_dns")
    sg_name = naming.endpoints_security_group(env)
    ids = [g["GroupId"] for g in endpoint.get("Groups", [])]
    groups = audit.read.paginate(EC2, f"{check} security group", [sg_name], "ec2", "describe_security_groups", "SecurityGroups", GroupIds=ids) if ids else []
    add(EC2, f"{check} security group", [sg_name], sorted(g.get("GroupName") for g in groups))
    for group in groups:
        if group.get("GroupName") == sg_name:
            peer = app_sg_id or naming.app_security_group(env)
            add(EC2, f"{sg_name} ingress", [sg_rule(443, peer)], sg_rules(group.get("IpPermissions", [])), detail=f"{peer} is {naming.app_security_group(env)}")


def _health_alarms(audit: Audit) -> list[dict[str, Any]]:
    """The live alarms named ``rentaliq-{env}-nat-*`` (any count: one too many is as wrong as one missing)."""
    prefix = f"{naming.resource_name(audit.env, 'nat')}-"
    return audit.read.paginate(CLOUDWATCH, "NAT health alarms readable", prefix, "cloudwatch", "describe_alarms", "MetricAlarms", AlarmNamePrefix=prefix)


def health_alarm_arns(audit: Audit) -> list[str]:
    """The ARNs of the NAT health alarms the spec asks for that exist: what the dashboard must show beside the others."""
    net = audit.spec.network
    if net.existing is not None or net.nat != "instance":
        return []
    wanted = {naming.nat_health_alarm(audit.env, n) for n in range(1, net.nats + 1)}
    return [a["AlarmArn"] for a in _health_alarms(audit) if a["AlarmName"] in wanted]


def check_alarms(audit: Audit, topic_arn: str | None) -> None:
    """Each NAT instance's health alarm: the status-check metric of that instance, notifying the alerts topic."""
    net, env, add = audit.spec.network, audit.env, audit.record.add
    if net.existing is not None:
        return
    health = contract.NAT_HEALTH
    count = net.nats if net.nat == "instance" else 0
    prefix = f"{naming.resource_name(env, 'nat')}-"
    by_name = {a["AlarmName"]: a for a in _health_alarms(audit)}
    expected_names = [naming.nat_health_alarm(env, n) for n in range(1, count + 1)]
    label = f"{prefix}*-health alarms" + ("" if count else " absent")  # "absent", as the other alarms the spec rules out
    add(CLOUDWATCH, label, expected_names, sorted(by_name), detail=f"network.nat = {net.nat}")
    if not count:
        return
    vpcs = audit.read.paginate(
        EC2, f"{naming.vpc(env)} exists", naming.vpc(env), "ec2", "describe_vpcs", "Vpcs", Filters=[{"Name": "tag:Name", "Values": [naming.vpc(env)]}]
    )
    instances = nat_instances(audit, vpcs[0]["VpcId"], count) if len(vpcs) == 1 else []
    ids = {tag_map(i.get("Tags")).get("Name"): i["InstanceId"] for i in instances}
    actions = [topic_arn] if topic_arn else ["the alerts topic"]
    for number, name in enumerate(expected_names, start=1):
        alarm = by_name.get(name)
        if alarm is None:
            continue
        instance_id = ids.get(naming.nat_instance(env, number), naming.nat_instance(env, number))
        add(CLOUDWATCH, f"{name} metric", f"{health.namespace} {health.metric}", f"{alarm.get('Namespace')} {alarm.get('MetricName')}")
        add(CLOUDWATCH, f"{name} dimensions", {health.dimension: instance_id}, {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])})
        add(
            CLOUDWATCH,
            f"{name} rule",
            f"{health.statistic} {health.comparison} {health.threshold:g}, "
            f"{health.evaluation_periods} x {health.period_s} s, missing {health.treat_missing_data}",
            f"{alarm.get('Statistic')} {alarm.get('ComparisonOperator')} {float(alarm.get('Threshold', 0)):g}, "
            f"{alarm.get('EvaluationPeriods')} x {alarm.get('Period')} s, missing {alarm.get('TreatMissingData', 'missing')}",
        )
        add(CLOUDWATCH, f"{name} alarm actions", actions, alarm.get("AlarmActions"))
        add(CLOUDWATCH, f"{name} OK actions", actions, alarm.get("OKActions"))
