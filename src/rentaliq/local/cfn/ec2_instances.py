"""EC2 instances and IAM instance profiles: what a NAT instance (``network.nat = "instance"``) is made of.

An instance has no name CloudFormation could look for, so a create finds what an interrupted create left
behind by the CloudFormation tags it gives in the RunInstances call itself (``locate``), as the other EC2
types do; it never adopts an instance it did not start. Updated in place, as AWS does for an EBS-backed
instance: its tags, the source/destination check, the security groups and the instance type (a stop, a
ModifyInstanceAttribute and a start; AWS's "some interruption"). Any other change replaces it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rentaliq.local.cfn.base import Context, Named, Provider, as_bool, exists, tag_list
from rentaliq.local.cfn.ec2_tags import retag

_GONE = ("shutting-down", "terminated")


def _user_data(value: str) -> str:
    """The template's Fn::Base64 text, decoded: boto3 base64-encodes UserData itself."""
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


def _block_devices(props: dict[str, Any]) -> list[dict[str, Any]]:
    devices = []
    for mapping in props.get("BlockDeviceMappings", []):
        device: dict[str, Any] = {"DeviceName": mapping["DeviceName"]}
        if ebs := mapping.get("Ebs"):
            device["Ebs"] = {
                **({"VolumeSize": int(ebs["VolumeSize"])} if "VolumeSize" in ebs else {}),
                **({"VolumeType": ebs["VolumeType"]} if "VolumeType" in ebs else {}),
                **({"Encrypted": as_bool(ebs["Encrypted"])} if "Encrypted" in ebs else {}),
                **({"KmsKeyId": ebs["KmsKeyId"]} if "KmsKeyId" in ebs else {}),
                "DeleteOnTermination": as_bool(ebs.get("DeleteOnTermination", True)),
            }
        devices.append(device)
    return devices


def _metadata_options(props: dict[str, Any]) -> dict[str, Any]:
    options = props.get("MetadataOptions") or {}
    return {k: (int(v) if k == "HttpPutResponseHopLimit" else v) for k, v in options.items()}


class Instance(Provider):
    type_name = "AWS::EC2::Instance"
    updatable = frozenset({"Tags", "SourceDestCheck", "SecurityGroupIds", "InstanceType"})

    def create(self, props, ctx):
        ec2 = ctx.client("ec2")
        tags = tag_list(props) + ctx.cloudformation_tags()
        kwargs: dict[str, Any] = {
            "ImageId": props["ImageId"],
            "InstanceType": props.get("InstanceType", "m1.small"),
            "MinCount": 1,
            "MaxCount": 1,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        }
        for key in ("SubnetId", "SecurityGroupIds", "KeyName", "PrivateIpAddress"):
            if props.get(key):
                kwargs[key] = props[key]
        if props.get("AvailabilityZone") and not props.get("SubnetId"):
            kwargs["Placement"] = {"AvailabilityZone": props["AvailabilityZone"]}
        if props.get("IamInstanceProfile"):
            kwargs["IamInstanceProfile"] = {"Name": props["IamInstanceProfile"]}
        if props.get("UserData"):
            kwargs["UserData"] = _user_data(props["UserData"])
        if props.get("BlockDeviceMappings"):
            kwargs["BlockDeviceMappings"] = _block_devices(props)
        if props.get("MetadataOptions"):
            kwargs["MetadataOptions"] = _metadata_options(props)
        if "Monitoring" in props:
            kwargs["Monitoring"] = {"Enabled": as_bool(props["Monitoring"])}
        instance_id: str = ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"]
        if "SourceDestCheck" in props:
            ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": as_bool(props["SourceDestCheck"])})
        return instance_id

    def update(self, physical_id, old, new, ctx):
        self.in_place_only(old, new, self.updatable)
        ec2 = ctx.client("ec2")
        if old.get("SourceDestCheck") != new.get("SourceDestCheck"):
            ec2.modify_instance_attribute(InstanceId=physical_id, SourceDestCheck={"Value": as_bool(new.get("SourceDestCheck", True))})
        if old.get("SecurityGroupIds") != new.get("SecurityGroupIds") and new.get("SecurityGroupIds"):
            ec2.modify_instance_attribute(InstanceId=physical_id, Groups=new["SecurityGroupIds"])
        if old.get("InstanceType") != new.get("InstanceType"):
            ec2.stop_instances(InstanceIds=[physical_id])
            ec2.modify_instance_attribute(InstanceId=physical_id, InstanceType={"Value": new["InstanceType"]})
            ec2.start_instances(InstanceIds=[physical_id])
        retag(ctx, physical_id, old, new)
        return physical_id

    def delete(self, physical_id, props, ctx):
        ctx.client("ec2").terminate_instances(InstanceIds=[physical_id])

    def locate(self, props, ctx):
        if not ctx.stack_id:
            return []
        filters = [
            {"Name": "tag:aws:cloudformation:stack-id", "Values": [ctx.stack_id]},
            {"Name": "tag:aws:cloudformation:logical-id", "Values": [ctx.logical_id]},
        ]
        reservations = ctx.client("ec2").describe_instances(Filters=filters)["Reservations"]
        return [i["InstanceId"] for r in reservations for i in r["Instances"] if i["State"]["Name"] not in _GONE]

    def attributes(self, physical_id, props, ctx):
        instance = ctx.client("ec2").describe_instances(InstanceIds=[physical_id])["Reservations"][0]["Instances"][0]
        return {
            "InstanceId": physical_id,
            "AvailabilityZone": instance["Placement"]["AvailabilityZone"],
            "PrivateDnsName": instance.get("PrivateDnsName", ""),
            "PrivateIp": instance.get("PrivateIpAddress", ""),
            "PublicDnsName": instance.get("PublicDnsName", ""),
            "PublicIp": instance.get("PublicIpAddress", ""),
            "VpcId": instance.get("VpcId", ""),
        }


class InstanceProfile(Named):
    type_name = "AWS::IAM::InstanceProfile"
    name_max_length = 128

    def named_exists(self, name, ctx):
        return exists(ctx.client("iam").get_instance_profile, InstanceProfileName=name)

    def create(self, props, ctx):
        iam, name = ctx.client("iam"), self.name(props, ctx)
        iam.create_instance_profile(InstanceProfileName=name, Path=props.get("Path", "/"))
        for role in props.get("Roles", []):
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
        return name

    def update(self, physical_id, old, new, ctx):
        """Roles change in place (an instance profile holds at most one)."""
        self.in_place_only(old, new, frozenset({"Roles"}))
        iam = ctx.client("iam")
        before, after = old.get("Roles", []), new.get("Roles", [])
        for role in [r for r in before if r not in after]:
            iam.remove_role_from_instance_profile(InstanceProfileName=physical_id, RoleName=role)
        for role in [r for r in after if r not in before]:
            iam.add_role_to_instance_profile(InstanceProfileName=physical_id, RoleName=role)
        return physical_id

    def delete(self, physical_id, props, ctx: Context):
        iam = ctx.client("iam")
        for role in iam.get_instance_profile(InstanceProfileName=physical_id)["InstanceProfile"].get("Roles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=physical_id, RoleName=role["RoleName"])
        iam.delete_instance_profile(InstanceProfileName=physical_id)

    def attributes(self, physical_id, props, ctx):
        return {"Arn": ctx.client("iam").get_instance_profile(InstanceProfileName=physical_id)["InstanceProfile"]["Arn"]}


PROVIDERS = [Instance, InstanceProfile]
