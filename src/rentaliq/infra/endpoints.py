"""Interface VPC endpoints (``network.secrets_manager_endpoint``): Secrets Manager reached without the internet.

With ``nat = "none"`` the app subnets have no route out, so a service reading its secrets needs the endpoint;
with a NAT it keeps secret reads off the NAT (the spec's Phase 2 "private access"). Private DNS follows
``network.secrets_manager_private_dns`` (default on: the SDK's usual ``secretsmanager.{region}.amazonaws.com``
resolves to the endpoint and no code changes; off: clients must name the endpoint's DNS). Its own security
group ``rentaliq-{env}-endpoints-sg`` admits HTTPS from the app security group only.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from rentaliq import naming
from rentaliq.environments import EnvironmentSpec

HTTPS = 443


class SecretsManagerEndpoint(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, app_sg: ec2.ISecurityGroup) -> None:
        super().__init__(scope, id)
        env = spec.name.value
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            security_group_name=naming.endpoints_security_group(env),
            description=f"RentalIQ {env} interface endpoints: HTTPS from the app SG only",
            allow_all_outbound=False,  # an endpoint answers; it never opens a connection
        )
        # Ingress on this group only: the app SG's egress (HTTPS to the internet, per the spec) already covers it.
        self.security_group.add_ingress_rule(app_sg, ec2.Port.tcp(HTTPS), "HTTPS from the app SG")
        self.endpoint = ec2.InterfaceVpcEndpoint(
            self,
            "Endpoint",
            vpc=vpc,
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=subnets,
            private_dns_enabled=spec.network.secrets_manager_private_dns,
            security_groups=[self.security_group],
            open=False,
        )
