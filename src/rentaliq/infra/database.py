"""The RDS PostgreSQL instance, its parameter group and its generated master credentials."""

from __future__ import annotations

from functools import partial
from typing import cast

from aws_cdk import Duration, RemovalPolicy, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import BACKUP_TAG, DB_PARAMETERS, ENHANCED_MONITORING_POLICY, MONITORING_PRINCIPAL, RDS_CA_IDENTIFIER, database_deletion_policy
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.compliance import acknowledge, acknowledge_secret
from rentaliq.infra.network import Network
from rentaliq.infra.retention import secret_removal_policy

# Characters a generated password never contains: RDS forbids / @ " and space, and leaving out the rest of
# the URL-reserved set keeps the DATABASE_URL that CloudFormation assembles valid without encoding.
# Passwords set later (rotation, ops) may contain anything: rentaliq.runtime percent-encodes them.
PASSWORD_EXCLUDED_CHARACTERS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\=,^"
# CloudFormation's DeletionPolicy (contract.database_deletion_policy) as CDK's RemovalPolicy.
REMOVAL_POLICIES = {"Delete": RemovalPolicy.DESTROY, "Snapshot": RemovalPolicy.SNAPSHOT}


def _insights_retention(days: int) -> rds.PerformanceInsightRetention:
    """CDK names retentions (DEFAULT = 7 days, MONTHS_n = 31*n days, LONG_TERM = 731 days); the spec counts days."""
    if days == 7:
        return rds.PerformanceInsightRetention.DEFAULT
    if days == 731:
        return rds.PerformanceInsightRetention.LONG_TERM
    return rds.PerformanceInsightRetention[f"MONTHS_{days // 31}"]


class Database(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, network: Network, key: kms.IKey | None = None) -> None:
        super().__init__(scope, id)
        env, db = spec.name.value, spec.database
        engine = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.of(db.engine_version, "15"))

        self.credentials = rds.DatabaseSecret(
            self,
            "CredentialsSecret",
            secret_name=naming.secret_path(env, "db/credentials"),
            username=db.master_username,
            dbname=db.database_name,
            exclude_characters=PASSWORD_EXCLUDED_CHARACTERS,
            encryption_key=key,
        )
        self.credentials.apply_removal_policy(secret_removal_policy())

        self.parameter_group = rds.ParameterGroup(
            self,
            "ParameterGroup",
            engine=engine,
            name=naming.parameter_group(env),
            description=f"RentalIQ {env}: TLS enforced, pg_stat_statements loaded",
            parameters=DB_PARAMETERS,
        )
        subnet_group = rds.SubnetGroup(
            self,
            "SubnetGroup",
            vpc=network.vpc,
            vpc_subnets=network.db_subnets,
            subnet_group_name=naming.subnet_group(env),
            description=f"RentalIQ {env} private DB subnets",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.monitoring_role = self._monitoring_role() if db.enhanced_monitoring_interval_s else None

        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            instance_identifier=naming.db_instance_id(env),
            engine=engine,
            instance_type=ec2.InstanceType(db.instance_class.removeprefix("db.")),
            vpc=network.vpc,
            subnet_group=subnet_group,
            security_groups=[network.rds_sg],
            port=db.port,
            credentials=rds.Credentials.from_secret(self.credentials),
            database_name=db.database_name,
            allocated_storage=db.allocated_storage_gib,
            max_allocated_storage=db.max_allocated_storage_gib,
            storage_type=rds.StorageType(db.storage_type.upper()),
            storage_encrypted=True,
            # None: RDS's AWS-managed key (aws/rds). A different key replaces the instance: deploy refuses that on a
            # live environment (rentaliq.spec.deployed).
            storage_encryption_key=key,
            ca_certificate=rds.CaCertificate.of(RDS_CA_IDENTIFIER),  # rds-ca-rsa2048-g1, explicitly: clients trust its bundle
            publicly_accessible=False,
            multi_az=db.multi_az,
            backup_retention=Duration.days(db.backup_retention_days),
            preferred_backup_window=db.backup_window,
            preferred_maintenance_window=db.maintenance_window,
            auto_minor_version_upgrade=db.auto_minor_version_upgrade,
            enable_performance_insights=db.performance_insights,
            performance_insight_retention=(_insights_retention(db.performance_insights_retention_days) if db.performance_insights else None),
            monitoring_interval=Duration.seconds(db.enhanced_monitoring_interval_s) if self.monitoring_role else None,
            monitoring_role=self.monitoring_role,
            cloudwatch_logs_exports=list(db.cloudwatch_log_exports) or None,
            deletion_protection=db.deletion_protection,
            copy_tags_to_snapshot=True,
            parameter_group=self.parameter_group,
            # CloudFormation names the final snapshot itself, so the template never changes between synths.
            removal_policy=REMOVAL_POLICIES[database_deletion_policy(db.final_snapshot)],
        )
        cfn = cast(rds.CfnDBInstance, self.instance.node.default_child)  # a DatabaseInstance's default child, always
        cfn.apply_immediately = db.apply_immediately
        if db.final_snapshot:
            cfn.add_metadata("rentaliq:final-snapshot", naming.final_snapshot(env))
        for tag, value in BACKUP_TAG.items():
            Tags.of(self.instance).add(tag, value)
        self._acknowledge(spec, customer_managed_key=key is not None)

    def _monitoring_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "MonitoringRole",
            role_name=naming.rds_monitoring_role(),
            assumed_by=iam.ServicePrincipal(MONITORING_PRINCIPAL),
            description="Lets RDS publish enhanced monitoring metrics to CloudWatch Logs",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(ENHANCED_MONITORING_POLICY)],
        )
        acknowledge(
            role,
            id=f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{ENHANCED_MONITORING_POLICY}]",
            reason="AWS's purpose-built policy for RDS enhanced monitoring, kept current by AWS.",
        )
        return role

    def _acknowledge(self, spec: EnvironmentSpec, *, customer_managed_key: bool) -> None:
        db = spec.database
        ack = partial(acknowledge, self.instance)
        ack(id="AwsSolutions-RDS11", reason="Spec: PostgreSQL listens on the standard port 5432; access is limited by security groups.")
        ack(id="AwsSolutions-RDS6", reason="Spec: password authentication with credentials from Secrets Manager; IAM auth is not used by RentalIQ services.")
        ack(id="HIPAA.Security-RDSInBackupPlan", reason="Spec: RDS automated backups with per-environment retention; AWS Backup plans are a Phase 2 item.")
        if not db.multi_az:
            ack(id="AwsSolutions-RDS3", reason=f"Spec: {spec.name.value.upper()} is single-AZ by design, for cost.")
            ack(id="HIPAA.Security-RDSMultiAZSupport", reason=f"Spec: {spec.name.value.upper()} is single-AZ by design, for cost.")
        if not db.deletion_protection:
            for rule in ("AwsSolutions-RDS10", "HIPAA.Security-RDSInstanceDeletionProtectionEnabled"):
                ack(id=rule, reason=f"Spec: {spec.name.value.upper()} is disposable; deletion protection is PROD-only.")
        if not db.enhanced_monitoring_interval_s:
            ack(id="HIPAA.Security-RDSEnhancedMonitoringEnabled", reason="Spec: enhanced monitoring is PROD-only.")
        for export in ("postgresql", "upgrade"):
            if export not in db.cloudwatch_log_exports:
                ack(
                    id=f"HIPAA.Security-RDSLoggingEnabled[LogExport::{export}]",
                    reason=f"Spec: CloudWatch log exports are off in {spec.name.value.upper()}, for cost.",
                )
        no_rotation = "Spec: no rotation_days in this environment (rentaliq rotate rotates on demand); the SDK re-reads rotated credentials."
        acknowledge_secret(self.credentials, customer_managed_key, None if spec.secrets.rotation_days else no_rotation)  # infra/rotation.py schedules it
