"""EC2 security groups and their standalone ingress/egress rules (split from :mod:`ec2`, which keeps the network)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rentaliq.local.cfn.base import Context, Named, Provider
from rentaliq.local.cfn.ec2_tags import retag
from rentaliq.local.cfn.ec2_tags import tag_specifications as _spec


def _permission(rule: dict[str, Any], peer_key: str) -> dict[str, Any]:
    """A CloudFormation SG rule as the EC2 API's IpPermission."""
    permission: dict[str, Any] = {"IpProtocol": str(rule["IpProtocol"])}
    if "FromPort" in rule:
        permission["FromPort"] = int(rule["FromPort"])
    if "ToPort" in rule:
        permission["ToPort"] = int(rule["ToPort"])
    description = {"Description": rule["Description"]} if rule.get("Description") else {}
    if rule.get("CidrIp"):
        permission["IpRanges"] = [{"CidrIp": rule["CidrIp"], **description}]
    elif rule.get("CidrIpv6"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **description}]
    elif rule.get(peer_key):
        permission["UserIdGroupPairs"] = [{"GroupId": rule[peer_key], **description}]
    elif rule.get("DestinationPrefixListId") or rule.get("SourcePrefixListId"):
        permission["PrefixListIds"] = [{"PrefixListId": rule.get("DestinationPrefixListId") or rule["SourcePrefixListId"], **description}]
    return permission


ALL_TRAFFIC = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


class SecurityGroup(Named):
    type_name = "AWS::EC2::SecurityGroup"
    name_max_length = 255

    def exists_detail(self, props):
        return f"a security group with this name exists in {props['VpcId']}"

    def locate(self, props, ctx):
        """Group names are unique per VPC; the physical id is the group id."""
        filters = [{"Name": "vpc-id", "Values": [props["VpcId"]]}, {"Name": "group-name", "Values": [self.name(props, ctx)]}]
        return [g["GroupId"] for g in ctx.client("ec2").describe_security_groups(Filters=filters)["SecurityGroups"]]

    def create(self, props, ctx):
        ec2 = ctx.client("ec2")
        group_id = ec2.create_security_group(
            GroupName=self.name(props, ctx), Description=props["GroupDescription"], VpcId=props["VpcId"], TagSpecifications=_spec(ctx, "security-group", props)
        )["GroupId"]
        self._apply_rules(group_id, {}, props, ctx)
        return group_id

    def update(self, physical_id, old, new, ctx):
        if any(old.get(k) != new.get(k) for k in self.replace_on_change):
            return super().update(physical_id, old, new, ctx)
        self._apply_rules(physical_id, old, new, ctx)
        retag(ctx, physical_id, old, new)
        return physical_id

    @staticmethod
    def _apply_rules(group_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> None:
        """Make the group's inline rules exactly the template's; no egress listed means allow-all, as on AWS."""
        ec2 = ctx.client("ec2")
        old_in = [_permission(r, "SourceSecurityGroupId") for r in old.get("SecurityGroupIngress", [])]
        new_in = [_permission(r, "SourceSecurityGroupId") for r in new.get("SecurityGroupIngress", [])]
        old_out = [_permission(r, "DestinationSecurityGroupId") for r in old.get("SecurityGroupEgress", [])] if old else [ALL_TRAFFIC]
        new_out = [_permission(r, "DestinationSecurityGroupId") for r in new.get("SecurityGroupEgress", [])] or [ALL_TRAFFIC]
        if old and not old.get("SecurityGroupEgress"):
            old_out = [ALL_TRAFFIC]
        if removed := [p for p in old_in if p not in new_in]:
            ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=removed)
        if added := [p for p in new_in if p not in old_in]:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=added)
        if removed := [p for p in old_out if p not in new_out]:
            ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=removed)
        if added := [p for p in new_out if p not in old_out]:
            ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=added)

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").delete_security_group(GroupId=physical_id)

    def attributes(self, physical_id, props, ctx):
        group = ctx.client("ec2").describe_security_groups(GroupIds=[physical_id])["SecurityGroups"][0]
        return {"GroupId": physical_id, "VpcId": group.get("VpcId")}


class _StandaloneRule(Provider):
    direction: str
    peer_key: str

    def _id(self, props) -> str:
        digest = hashlib.sha1(json.dumps(_permission(props, self.peer_key), sort_keys=True).encode()).hexdigest()[:12]
        return f"{props['GroupId']}|{self.direction}|{digest}"

    def create(self, props, ctx):
        ec2 = ctx.client("ec2")
        getattr(ec2, f"authorize_security_group_{self.direction}")(GroupId=props["GroupId"], IpPermissions=[_permission(props, self.peer_key)])
        return self._id(props)

    def update(self, physical_id, old, new, ctx):
        """Only the description changes in place (UpdateSecurityGroupRuleDescriptions*); the rule's id follows it."""
        self.in_place_only(old, new, frozenset({"Description"}))
        getattr(ctx.client("ec2"), f"update_security_group_rule_descriptions_{self.direction}")(
            GroupId=new["GroupId"], IpPermissions=[_permission(new, self.peer_key)]
        )
        return self._id(new)

    def locate(self, props, ctx):
        return [self._id(props)]  # revoking a rule that is not there fails as not found: fine

    def delete(self, physical_id, props, ctx):
        getattr(ctx.client("ec2"), f"revoke_security_group_{self.direction}")(GroupId=props["GroupId"], IpPermissions=[_permission(props, self.peer_key)])


class SecurityGroupIngress(_StandaloneRule):
    type_name = "AWS::EC2::SecurityGroupIngress"
    direction, peer_key = "ingress", "SourceSecurityGroupId"


class SecurityGroupEgress(_StandaloneRule):
    type_name = "AWS::EC2::SecurityGroupEgress"
    direction, peer_key = "egress", "DestinationSecurityGroupId"
