"""NAT instances (``network.nat = "instance"``): one small EC2 instance per NAT, the approach fck-nat popularised.

A t4g.nano NAT instance costs about $7 a month with its public IPv4 address and root volume, against about
$36 for a NAT gateway; it forwards a few Gbit/s at most, which these environments never approach. CDK's
``NatProvider.instance_v2`` builds the instances (Amazon Linux 2023, iptables masquerading in the user data,
source/destination check off) and the app subnets' default routes to them; this module makes them ours:

- their security group is ``rentaliq-{env}-nat-sg`` and admits all traffic from the VPC's CIDR only (no SSH:
  nothing listens but the kernel's forwarding), all traffic out;
- IMDSv2 is required and the root volume (gp3) is encrypted;
- each instance is named ``rentaliq-{env}-nat-{n}`` and watched by a health alarm (:class:`NatHealthAlarms`).

The image is the latest Amazon Linux 2023 for the type's architecture, read from AWS's public SSM parameter at
deploy time (a template parameter, as CDK emits it); the local cloud resolves it from moto's copy of those
parameters.
"""

from __future__ import annotations

from aws_cdk import Duration, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_sns as sns
from constructs import Construct

from rentaliq import contract, naming
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge

# Graviton families run the ARM64 image; the others the x86_64 one (spec.rules.NAT_INSTANCE_FAMILIES lists both).
ARM_FAMILIES = ("t4g", "c6g", "c7g", "m6g", "m7g")
ROOT_DEVICE = "/dev/xvda"  # Amazon Linux 2023's root device name
ROOT_VOLUME_GB = 8  # the AL2023 image's own size: a NAT instance stores nothing


def is_arm(instance_type: str) -> bool:
    return instance_type.split(".", 1)[0] in ARM_FAMILIES


def provider(spec: EnvironmentSpec) -> ec2.NatInstanceProviderV2:
    """The NAT provider the VPC builds its NAT instances and default routes with."""
    instance_type = spec.network.nat_instance_type
    cpu = ec2.AmazonLinuxCpuType.ARM_64 if is_arm(instance_type) else ec2.AmazonLinuxCpuType.X86_64
    return ec2.NatProvider.instance_v2(
        instance_type=ec2.InstanceType(instance_type),
        machine_image=ec2.MachineImage.latest_amazon_linux2023(cpu_type=cpu),
        default_allowed_traffic=ec2.NatTrafficDirection.OUTBOUND_ONLY,
    )


def harden(vpc: ec2.Vpc, nat: ec2.NatInstanceProviderV2, spec: EnvironmentSpec) -> list[ec2.Instance]:
    """Name, lock down and acknowledge what ``nat`` built in ``vpc``; the instances in zone order."""
    env = spec.name.value
    group = nat.security_group
    cfn_group = group.node.default_child
    assert isinstance(cfn_group, ec2.CfnSecurityGroup)
    cfn_group.group_name = naming.nat_security_group(env)
    cfn_group.group_description = f"RentalIQ {env} NAT instances: all traffic from the VPC, all traffic out"
    Tags.of(group).add("Name", naming.nat_security_group(env))  # not CDK's construct path ("rentaliq-lab/Network/Vpc")
    # The spec's CIDR as a literal (the VPC's is the same): the nag rules cannot read an Fn::GetAtt.
    group.add_ingress_rule(ec2.Peer.ipv4(spec.network.vpc_cidr), ec2.Port.all_traffic(), "All traffic from the VPC, to be forwarded")
    acknowledge(
        group,
        id="HIPAA.Security-EC2RestrictedCommonPorts",
        reason="Open to the VPC's own range only, never the internet: a NAT forwards whatever protocol the app subnets send.",
    )
    instances = []
    for subnet in vpc.public_subnets:
        instance = subnet.node.try_find_child("NatInstance")
        if isinstance(instance, ec2.Instance):
            instances.append(instance)
    for number, instance in enumerate(instances, start=1):
        Tags.of(instance).add("Name", naming.nat_instance(env, number))
        cfn = instance.instance
        # L1 properties, not overrides: the nag rules read these.
        cfn.metadata_options = ec2.CfnInstance.MetadataOptionsProperty(http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1)
        cfn.block_device_mappings = [
            ec2.CfnInstance.BlockDeviceMappingProperty(
                device_name=ROOT_DEVICE,
                ebs=ec2.CfnInstance.EbsProperty(volume_size=ROOT_VOLUME_GB, volume_type="gp3", encrypted=True, delete_on_termination=True),
            )
        ]
        _acknowledge(instance)
    return instances


def _acknowledge(instance: ec2.Instance) -> None:
    acknowledge(
        instance,
        id="AwsSolutions-EC28",
        reason="The health alarm reads StatusCheckFailed, published every minute without detailed monitoring; NAT needs no other metric.",
    )
    acknowledge(
        instance,
        id="HIPAA.Security-EC2InstanceDetailedMonitoringEnabled",
        reason="The health alarm reads StatusCheckFailed, published every minute without detailed monitoring; NAT needs no other metric.",
    )
    acknowledge(
        instance,
        id="AwsSolutions-EC29",
        reason="A NAT instance holds no state: the stack replaces it by a redeploy, and termination protection would block that.",
    )
    acknowledge(
        instance,
        id="HIPAA.Security-EC2InstanceNoPublicIp",
        reason="A NAT instance forwards the private subnets' traffic to the internet; it needs its public address.",
    )
    acknowledge(
        instance.role,
        id="HIPAA.Security-IAMNoInlinePolicy",
        reason="CDK's instance role; the NAT instance calls no AWS API and the role grants nothing.",
    )


class NatHealthAlarms(Construct):
    """``rentaliq-{env}-nat-{n}-health`` per NAT instance, notifying the alerts topic on ALARM and on OK.

    No EC2 recover action: AWS accepts it only on ``StatusCheckFailed_System``, and t4g/t3 instances recover
    from a system check failure by themselves (simplified automatic recovery is on by default).
    """

    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, instances: list[ec2.Instance], topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        health, notify = contract.NAT_HEALTH, actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        for number, instance in enumerate(instances, start=1):
            metric = cloudwatch.Metric(
                namespace=health.namespace,
                metric_name=health.metric,
                dimensions_map={health.dimension: instance.instance_id},
                period=Duration.seconds(health.period_s),
                statistic=health.statistic,
            )
            alarm = cloudwatch.Alarm(
                self,
                f"Nat{number}",
                alarm_name=naming.nat_health_alarm(spec.name.value, number),
                alarm_description=f"NAT instance {number} failed its status checks or is not running: the app subnets it serves have no internet egress",
                metric=metric,
                threshold=health.threshold,
                evaluation_periods=health.evaluation_periods,
                datapoints_to_alarm=health.evaluation_periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)
            self.alarms.append(alarm)
