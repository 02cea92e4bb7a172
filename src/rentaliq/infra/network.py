"""The VPC (two AZs, private DB and app subnets), its egress choice, and the two security groups of the spec.

``network.nat`` picks the app subnets' egress (issue 11 section 2):

- ``gateway``: ``nats`` managed NAT gateways in the public subnets;
- ``instance``: ``nats`` NAT instances there instead (:mod:`rentaliq.infra.nat_instances`);
- ``none``: isolated app subnets, no route out; no public subnets and no internet gateway either (nothing would
  use them). The public subnets' address ranges stay reserved, so the app and DB subnets keep their CIDRs and a
  switch between choices never replaces a subnet (nor, through its subnet group, the database).

The S3 gateway endpoint serves every choice; ``secrets_manager_endpoint`` adds a Secrets Manager interface
endpoint (:mod:`rentaliq.infra.endpoints`).
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import APP_PUBLIC_PORTS
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra import nat_instances
from rentaliq.infra.compliance import acknowledge
from rentaliq.infra.endpoints import SecretsManagerEndpoint
from rentaliq.infra.retention import removal_policy

POSTGRES_PORT_DESCRIPTION = "PostgreSQL"


class Network(Construct):
    """Either a new VPC built to the spec or the existing one the spec names; the rest of the stack can't tell."""

    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, key: kms.IKey | None = None) -> None:
        super().__init__(scope, id)
        net = spec.network
        self.key = key  # the environment's key for the flow-log group; None: CloudWatch Logs' own encryption
        self.vpc: ec2.IVpc  # created here, or an existing one imported by id
        self.nat_instances: list[ec2.Instance] = []  # nat = "instance": in zone order, for their health alarms
        if net.existing is None:
            self.vpc = self._create_vpc(spec)
            self.db_subnets = ec2.SubnetSelection(subnet_group_name="db")
            self.app_subnets = ec2.SubnetSelection(subnet_group_name="app")
        else:
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=net.existing.vpc_id,
                availability_zones=list(net.existing.availability_zones),
                isolated_subnet_ids=list(net.existing.db_subnet_ids),
                private_subnet_ids=list(net.existing.app_subnet_ids),
            )
            self.db_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            self.app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.rds_sg, self.app_sg = self._security_groups(spec)
        self.secrets_endpoint = (
            SecretsManagerEndpoint(self, "SecretsManagerEndpoint", spec=spec, vpc=self.vpc, subnets=self.app_subnets, app_sg=self.app_sg)
            if net.secrets_manager_endpoint
            else None
        )

    def _create_vpc(self, spec: EnvironmentSpec) -> ec2.Vpc:
        net = spec.network
        nat = nat_instances.provider(spec) if net.nat == "instance" else None
        egress = net.nat != "none"
        vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=naming.vpc(spec.name),
            ip_addresses=ec2.IpAddresses.cidr(net.vpc_cidr),
            max_azs=net.availability_zones,
            nat_gateways=net.nats,
            nat_gateway_provider=nat,  # None: managed NAT gateways
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24, reserved=not egress),
                ec2.SubnetConfiguration(
                    name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if egress else ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                ),
                ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            # A custom resource (a Lambda) would be needed to strip the default SG; nothing uses it.
            restrict_default_security_group=False,
        )
        if nat is not None:
            self.nat_instances = nat_instances.harden(vpc, nat, spec)
        log_group = logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.THREE_MONTHS, encryption_key=self.key, removal_policy=removal_policy(spec))
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group))
        acknowledge(
            vpc,
            id="HIPAA.Security-VPCDefaultSecurityGroupClosed",
            reason="The default security group is attached to nothing; closing it needs a Lambda-backed custom resource.",
        )
        for subnet in vpc.public_subnets:
            for rule in ("HIPAA.Security-VPCSubnetAutoAssignPublicIpDisabled", "HIPAA.Security-VPCNoUnrestrictedRouteToIGW"):
                acknowledge(subnet, id=rule, reason="Public subnets hold only the NAT gateways or instances; databases and apps live in private subnets.")
        acknowledge(
            vpc.node.find_child("FlowLog"),
            id="HIPAA.Security-IAMNoInlinePolicy",
            reason="CDK's flow-log role carries the one inline policy that lets VPC Flow Logs write its log group.",
        )
        if self.key is None:
            acknowledge(
                log_group,
                id="HIPAA.Security-CloudWatchLogGroupEncrypted",
                reason="Flow logs hold no customer data; CloudWatch Logs encrypts at rest with its own keys (spec: AWS-managed keys).",
            )
        return vpc

    def _security_groups(self, spec: EnvironmentSpec) -> tuple[ec2.SecurityGroup, ec2.SecurityGroup]:
        env, port = spec.name.value, spec.database.port
        rds_sg = ec2.SecurityGroup(
            self,
            "RdsSecurityGroup",
            vpc=self.vpc,
            security_group_name=naming.rds_security_group(env),
            description=f"RentalIQ {env} RDS PostgreSQL: {port} from the app SG and allowed CIDRs",
            allow_all_outbound=True,  # spec: all traffic out, for updates and patches
        )
        app_sg = ec2.SecurityGroup(
            self,
            "AppSecurityGroup",
            vpc=self.vpc,
            security_group_name=naming.app_security_group(env),
            description=f"RentalIQ {env} application: HTTPS/HTTP in, PostgreSQL to RDS, HTTPS/HTTP out",
            allow_all_outbound=False,
        )
        for public_port, protocol in APP_PUBLIC_PORTS.items():
            app_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(public_port), f"{protocol} from the internet")
        for public_port, protocol in APP_PUBLIC_PORTS.items():
            app_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(public_port), f"{protocol} to the internet")
        app_sg.connections.allow_to(rds_sg, ec2.Port.tcp(port), f"{POSTGRES_PORT_DESCRIPTION} to the RDS SG")
        for cidr in spec.database.allowed_cidrs:
            rds_sg.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"{POSTGRES_PORT_DESCRIPTION} from {cidr}")
        acknowledge(
            app_sg,
            id="AwsSolutions-EC23",
            reason="Spec: the application SG accepts HTTPS (443) and HTTP (80) from the internet.",
        )
        return rds_sg, app_sg
