"""EC2 networking: the VPC, its subnets and routes, NAT gateways, VPC endpoints and flow logs (security groups:
:mod:`ec2_security`; NAT instances: :mod:`ec2_instances`)."""

from __future__ import annotations

import json
from typing import Any

from rentaliq.local.cfn.base import AlreadyExists, Context, Provider, as_bool
from rentaliq.local.cfn.ec2_security import SecurityGroup, SecurityGroupEgress, SecurityGroupIngress
from rentaliq.local.cfn.ec2_tags import TagsInPlace, retag
from rentaliq.local.cfn.ec2_tags import tag_specifications as _spec


def _by_tags(ctx: Context, describe: str, collection: str, id_key: str) -> list[str]:
    """Ids of resources this stack's logical id created (its CloudFormation tags)."""
    if not ctx.stack_id:
        return []
    filters = [{"Name": "tag:aws:cloudformation:stack-id", "Values": [ctx.stack_id]}, {"Name": "tag:aws:cloudformation:logical-id", "Values": [ctx.logical_id]}]
    found = getattr(ctx.client("ec2"), describe)(Filters=filters)[collection]
    return [item[id_key] for item in found if item.get("State") not in ("deleted", "deleting")]


class Vpc(Provider):
    type_name = "AWS::EC2::VPC"

    def create(self, props, ctx):
        ec2 = ctx.client("ec2")
        vpc_id = ec2.create_vpc(
            CidrBlock=props["CidrBlock"], InstanceTenancy=props.get("InstanceTenancy", "default"), TagSpecifications=_spec(ctx, "vpc", props)
        )["Vpc"]["VpcId"]
        for attr in ("EnableDnsHostnames", "EnableDnsSupport"):
            if attr in props:
                ec2.modify_vpc_attribute(VpcId=vpc_id, **{attr: {"Value": as_bool(props[attr])}})
        return vpc_id

    def update(self, physical_id, old, new, ctx):
        if any(old.get(k) != new.get(k) for k in self.replace_on_change):
            return super().update(physical_id, old, new, ctx)
        for attr in ("EnableDnsHostnames", "EnableDnsSupport"):
            if attr in new:
                ctx.client("ec2").modify_vpc_attribute(VpcId=physical_id, **{attr: {"Value": as_bool(new[attr])}})
        retag(ctx, physical_id, old, new)
        return physical_id

    def delete(self, physical_id, props, ctx):
        ec2 = ctx.client("ec2")
        # The VPC's own main route table and default SG/ACL go with it, as on AWS.
        ec2.delete_vpc(VpcId=physical_id)

    def locate(self, props, ctx):
        return _by_tags(ctx, "describe_vpcs", "Vpcs", "VpcId")

    def attributes(self, physical_id, props, ctx):
        ec2 = ctx.client("ec2")
        vpc = ec2.describe_vpcs(VpcIds=[physical_id])["Vpcs"][0]
        default_sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [physical_id]}, {"Name": "group-name", "Values": ["default"]}])
        return {
            "VpcId": physical_id,
            "CidrBlock": vpc["CidrBlock"],
            "DefaultSecurityGroup": default_sg["SecurityGroups"][0]["GroupId"] if default_sg["SecurityGroups"] else "",
            "CidrBlockAssociations": [a["AssociationId"] for a in vpc.get("CidrBlockAssociationSet", [])],
        }


class Subnet(Provider):
    type_name = "AWS::EC2::Subnet"

    def create(self, props, ctx):
        ec2 = ctx.client("ec2")
        kwargs = {"VpcId": props["VpcId"], "CidrBlock": props["CidrBlock"], "TagSpecifications": _spec(ctx, "subnet", props)}
        if props.get("AvailabilityZone"):
            kwargs["AvailabilityZone"] = props["AvailabilityZone"]
        subnet_id = ec2.create_subnet(**kwargs)["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": as_bool(props.get("MapPublicIpOnLaunch", False))})
        return subnet_id

    def update(self, physical_id, old, new, ctx):
        if any(old.get(k) != new.get(k) for k in self.replace_on_change):
            return super().update(physical_id, old, new, ctx)
        ctx.client("ec2").modify_subnet_attribute(SubnetId=physical_id, MapPublicIpOnLaunch={"Value": as_bool(new.get("MapPublicIpOnLaunch", False))})
        retag(ctx, physical_id, old, new)
        return physical_id

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").delete_subnet(SubnetId=physical_id)

    def locate(self, props, ctx):
        return _by_tags(ctx, "describe_subnets", "Subnets", "SubnetId")

    def attributes(self, physical_id, props, ctx):
        subnet = ctx.client("ec2").describe_subnets(SubnetIds=[physical_id])["Subnets"][0]
        return {"SubnetId": physical_id, "AvailabilityZone": subnet["AvailabilityZone"], "VpcId": subnet["VpcId"], "CidrBlock": subnet["CidrBlock"]}


class RouteTable(TagsInPlace, Provider):
    type_name = "AWS::EC2::RouteTable"

    def create(self, props, ctx):
        table_id = ctx.client("ec2").create_route_table(VpcId=props["VpcId"], TagSpecifications=_spec(ctx, "route-table", props))["RouteTable"]["RouteTableId"]
        return table_id

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").delete_route_table(RouteTableId=physical_id)

    def locate(self, props, ctx):
        return _by_tags(ctx, "describe_route_tables", "RouteTables", "RouteTableId")

    def attributes(self, physical_id, props, ctx):
        return {"RouteTableId": physical_id}


class SubnetRouteTableAssociation(Provider):
    type_name = "AWS::EC2::SubnetRouteTableAssociation"

    def check_absent(self, props, ctx):
        if self.locate(props, ctx):
            raise AlreadyExists(f"{props['SubnetId']}|{props['RouteTableId']}", "Resource.AlreadyAssociated")

    def locate(self, props, ctx):
        tables = ctx.client("ec2").describe_route_tables(RouteTableIds=[props["RouteTableId"]])["RouteTables"]
        return [a["RouteTableAssociationId"] for t in tables for a in t.get("Associations", []) if a.get("SubnetId") == props["SubnetId"]]

    def create(self, props, ctx):
        return ctx.client("ec2").associate_route_table(RouteTableId=props["RouteTableId"], SubnetId=props["SubnetId"])["AssociationId"]

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").disassociate_route_table(AssociationId=physical_id)


class Route(Provider):
    type_name = "AWS::EC2::Route"
    TARGETS = ("GatewayId", "NatGatewayId", "InstanceId", "VpcEndpointId", "TransitGatewayId", "NetworkInterfaceId", "VpcPeeringConnectionId")

    def check_absent(self, props, ctx):
        if self.locate(props, ctx):
            raise AlreadyExists(f"{props['RouteTableId']}|{props['DestinationCidrBlock']}", "RouteAlreadyExists")

    def locate(self, props, ctx):
        tables = ctx.client("ec2").describe_route_tables(RouteTableIds=[props["RouteTableId"]])["RouteTables"]
        routes = [r for t in tables for r in t.get("Routes", []) if r.get("DestinationCidrBlock") == props["DestinationCidrBlock"]]
        return [f"{props['RouteTableId']}|{props['DestinationCidrBlock']}"] if routes else []

    def create(self, props, ctx):
        kwargs = {"RouteTableId": props["RouteTableId"], "DestinationCidrBlock": props["DestinationCidrBlock"]}
        kwargs.update({k: props[k] for k in self.TARGETS if props.get(k)})
        ctx.client("ec2").create_route(**kwargs)
        return f"{props['RouteTableId']}|{props['DestinationCidrBlock']}"

    def update(self, physical_id, old, new, ctx):
        """Another target for the same destination: ReplaceRoute, in place (as AWS does)."""
        self.in_place_only(old, new, frozenset(self.TARGETS))
        ctx.client("ec2").replace_route(
            RouteTableId=new["RouteTableId"], DestinationCidrBlock=new["DestinationCidrBlock"], **{k: new[k] for k in self.TARGETS if new.get(k)}
        )
        return physical_id

    def delete(self, physical_id, props, ctx):
        table_id, cidr = physical_id.split("|", 1)
        ctx.client("ec2").delete_route(RouteTableId=table_id, DestinationCidrBlock=cidr)


class Eip(TagsInPlace, Provider):
    type_name = "AWS::EC2::EIP"

    def create(self, props, ctx):
        address = ctx.client("ec2").allocate_address(Domain=props.get("Domain", "vpc"), TagSpecifications=_spec(ctx, "elastic-ip", props))
        return address["PublicIp"]

    def locate(self, props, ctx):
        return _by_tags(ctx, "describe_addresses", "Addresses", "PublicIp")

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").release_address(AllocationId=self._allocation_id(physical_id, ctx))

    def attributes(self, physical_id, props, ctx):
        return {"AllocationId": self._allocation_id(physical_id, ctx), "PublicIp": physical_id}

    def tag_target(self, physical_id, ctx):
        return self._allocation_id(physical_id, ctx)

    @staticmethod
    def _allocation_id(public_ip: str, ctx: Context) -> str:
        return ctx.client("ec2").describe_addresses(PublicIps=[public_ip])["Addresses"][0]["AllocationId"]


class NatGateway(TagsInPlace, Provider):
    type_name = "AWS::EC2::NatGateway"

    def create(self, props, ctx):
        return ctx.client("ec2").create_nat_gateway(
            SubnetId=props["SubnetId"], AllocationId=props["AllocationId"], TagSpecifications=_spec(ctx, "natgateway", props)
        )["NatGateway"]["NatGatewayId"]

    def locate(self, props, ctx):
        return _by_tags(ctx, "describe_nat_gateways", "NatGateways", "NatGatewayId")

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").delete_nat_gateway(NatGatewayId=physical_id)


class InternetGateway(TagsInPlace, Provider):
    type_name = "AWS::EC2::InternetGateway"

    def create(self, props, ctx):
        return ctx.client("ec2").create_internet_gateway(TagSpecifications=_spec(ctx, "internet-gateway", props))["InternetGateway"]["InternetGatewayId"]

    def locate(self, props, ctx):
        return _by_tags(ctx, "describe_internet_gateways", "InternetGateways", "InternetGatewayId")

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").delete_internet_gateway(InternetGatewayId=physical_id)


class VpcGatewayAttachment(Provider):
    type_name = "AWS::EC2::VPCGatewayAttachment"

    def check_absent(self, props, ctx):
        if self.locate(props, ctx):
            raise AlreadyExists(props["InternetGatewayId"], f"Resource.AlreadyAssociated: attached to {props['VpcId']}")

    def locate(self, props, ctx):
        gateways = ctx.client("ec2").describe_internet_gateways(InternetGatewayIds=[props["InternetGatewayId"]])["InternetGateways"]
        attached = [a for g in gateways for a in g.get("Attachments", []) if a.get("VpcId") == props["VpcId"]]
        return [f"IGW|{props['VpcId']}|{props['InternetGatewayId']}"] if attached else []

    def create(self, props, ctx):
        ctx.client("ec2").attach_internet_gateway(InternetGatewayId=props["InternetGatewayId"], VpcId=props["VpcId"])
        return f"IGW|{props['VpcId']}|{props['InternetGatewayId']}"

    def update(self, physical_id, old, new, ctx):
        """Another internet gateway for the VPC: detach the old one, attach the new one."""
        self.in_place_only(old, new, frozenset({"InternetGatewayId"}))
        self.delete(physical_id, old, ctx)
        return self.create(new, ctx)

    def delete(self, physical_id, props, ctx):
        _, vpc_id, igw_id = physical_id.split("|")
        ctx.client("ec2").detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)


class VpcEndpoint(TagsInPlace, Provider):
    type_name = "AWS::EC2::VPCEndpoint"
    updatable = frozenset({"Tags", "PolicyDocument", "RouteTableIds", "SubnetIds", "SecurityGroupIds", "PrivateDnsEnabled"})

    def apply_in_place(self, physical_id, old, new, ctx):
        """ModifyVpcEndpoint: the policy, and the route tables/subnets/security groups added and removed."""
        kwargs: dict[str, Any] = {}
        if old.get("PolicyDocument") != new.get("PolicyDocument"):
            if "PolicyDocument" in new:
                kwargs["PolicyDocument"] = new["PolicyDocument"] if isinstance(new["PolicyDocument"], str) else json.dumps(new["PolicyDocument"])
            else:
                kwargs["ResetPolicy"] = True
        for key, (add, remove) in {
            "RouteTableIds": ("AddRouteTableIds", "RemoveRouteTableIds"),
            "SubnetIds": ("AddSubnetIds", "RemoveSubnetIds"),
            "SecurityGroupIds": ("AddSecurityGroupIds", "RemoveSecurityGroupIds"),
        }.items():
            before, after = old.get(key) or [], new.get(key) or []
            if added := [i for i in after if i not in before]:
                kwargs[add] = added
            if removed := [i for i in before if i not in after]:
                kwargs[remove] = removed
        if old.get("PrivateDnsEnabled") != new.get("PrivateDnsEnabled"):
            kwargs["PrivateDnsEnabled"] = as_bool(new.get("PrivateDnsEnabled", False))
        if kwargs:
            ctx.client("ec2").modify_vpc_endpoint(VpcEndpointId=physical_id, **kwargs)

    def create(self, props, ctx):
        kwargs = {
            "VpcId": props["VpcId"],
            "ServiceName": props["ServiceName"],
            "VpcEndpointType": props.get("VpcEndpointType", "Gateway"),
            "TagSpecifications": _spec(ctx, "vpc-endpoint", props),
        }
        for key in ("RouteTableIds", "SubnetIds", "SecurityGroupIds"):
            if props.get(key):
                kwargs[key] = props[key]
        if "PrivateDnsEnabled" in props:
            kwargs["PrivateDnsEnabled"] = as_bool(props["PrivateDnsEnabled"])
        if "PolicyDocument" in props:
            kwargs["PolicyDocument"] = json.dumps(props["PolicyDocument"]) if not isinstance(props["PolicyDocument"], str) else props["PolicyDocument"]
        return ctx.client("ec2").create_vpc_endpoint(**kwargs)["VpcEndpoint"]["VpcEndpointId"]

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").delete_vpc_endpoints(VpcEndpointIds=[physical_id])

    def locate(self, props, ctx):
        return _by_tags(ctx, "describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId")


class FlowLog(TagsInPlace, Provider):
    type_name = "AWS::EC2::FlowLog"

    def create(self, props, ctx):
        kwargs = {
            "ResourceIds": [props["ResourceId"]],
            "ResourceType": props["ResourceType"],
            "TrafficType": props.get("TrafficType", "ALL"),
            "LogDestinationType": props.get("LogDestinationType", "cloud-watch-logs"),
            "TagSpecifications": _spec(ctx, "vpc-flow-log", props),
        }
        if props.get("LogGroupName"):
            kwargs["LogGroupName"] = props["LogGroupName"]
        if props.get("LogDestination"):
            kwargs["LogDestination"] = props["LogDestination"]
        if props.get("DeliverLogsPermissionArn"):
            kwargs["DeliverLogsPermissionArn"] = props["DeliverLogsPermissionArn"]
        result = ctx.client("ec2").create_flow_logs(**kwargs)
        if result.get("Unsuccessful"):
            raise RuntimeError(result["Unsuccessful"][0]["Error"]["Message"])
        return result["FlowLogIds"][0]

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").delete_flow_logs(FlowLogIds=[physical_id])

    def locate(self, props, ctx):
        return _by_tags(ctx, "describe_flow_logs", "FlowLogs", "FlowLogId")


PROVIDERS = [
    Vpc,
    Subnet,
    RouteTable,
    SubnetRouteTableAssociation,
    Route,
    Eip,
    NatGateway,
    InternetGateway,
    VpcGatewayAttachment,
    VpcEndpoint,
    FlowLog,
    SecurityGroup,
    SecurityGroupIngress,
    SecurityGroupEgress,
]
