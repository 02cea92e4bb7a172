"""One stack per environment: ``rentaliq-lab``, ``rentaliq-qa``, ``rentaliq-prod``."""

from __future__ import annotations

from aws_cdk import CfnOutput, DefaultStackSynthesizer, Environment, Stack, Tags
from constructs import Construct

from rentaliq.contract import SECRET_OUTPUTS
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.access import Access
from rentaliq.infra.alerts import Alerts
from rentaliq.infra.app_role import AppRole, require_encrypted_puts
from rentaliq.infra.audit import Audit
from rentaliq.infra.budget import Budget
from rentaliq.infra.dashboard import Dashboard
from rentaliq.infra.database import Database
from rentaliq.infra.keys import EnvironmentKey
from rentaliq.infra.monitoring import Monitoring
from rentaliq.infra.nat_instances import NatHealthAlarms
from rentaliq.infra.network import Network
from rentaliq.infra.rotation import add_rotation
from rentaliq.infra.schedule import OffHoursSchedule
from rentaliq.infra.secrets import Secrets
from rentaliq.infra.storage import Storage


class RentalIQStack(Stack):
    def __init__(self, scope: Construct, *, spec: EnvironmentSpec) -> None:
        super().__init__(
            scope,
            spec.stack_name,
            stack_name=spec.stack_name,
            description=f"RentalIQ {spec.name.value.upper()} environment (RDS PostgreSQL, S3, Secrets Manager, IAM, VPC)",
            env=Environment(account=spec.account, region=spec.region),
            # No bootstrap stack is needed: templates are deployed as change sets, never through assets.
            synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
            termination_protection=spec.is_prod,
        )
        self.spec = spec
        for key, value in spec.resource_tags().items():
            Tags.of(self).add(key, value)

        # [encryption] customer_managed_key: the environment's key, given to everything it encrypts; None keeps AWS-managed keys.
        self.encryption = EnvironmentKey(self, "EnvironmentKey", spec=spec) if spec.encryption.customer_managed_key else None
        env_key = self.encryption.key if self.encryption else None
        self.network = Network(self, "Network", spec=spec, key=env_key)
        self.storage = Storage(self, "Storage", spec=spec, key=env_key)
        self.database = Database(self, "Database", spec=spec, network=self.network, key=env_key)
        self.secrets = Secrets(self, "Secrets", spec=spec, database=self.database, files_bucket=self.storage.files_bucket, key=env_key)
        self.rotation = add_rotation(self.database, spec=spec, database=self.database, network=self.network)
        self.access = Access(self, "Access", spec=spec)
        self.app_role = AppRole(self, "AppRole", spec=spec, read_secrets_policy=self.access.read_secrets_policy, key=env_key)
        require_encrypted_puts(self.storage.files_bucket)
        self.alerts = Alerts(self, "Alerts", spec=spec, key=self.encryption.policy_key if self.encryption else None)
        self.monitoring = Monitoring(
            self, "Monitoring", spec=spec, instance=self.database.instance, files_bucket=self.storage.files_bucket, topic=self.alerts.topic
        )
        nat_alarms = NatHealthAlarms(self, "NatHealth", spec=spec, instances=self.network.nat_instances, topic=self.alerts.topic).alarms
        self.dashboard = Dashboard(self, "Dashboard", spec=spec, alarms=self.monitoring.alarms + nat_alarms)
        self.budget = Budget(self, "Budget", spec=spec, alerts=self.alerts) if spec.cost.budget else None
        if self.budget is not None and self.encryption is not None:
            # Budgets checks it may encrypt when the budget is created: the key (and its BudgetsUseKey statement) first.
            self.budget.budget.node.add_dependency(self.encryption.cfn_key)
        self.schedule = OffHoursSchedule(self, "Schedule", spec=spec, instance=self.database.instance) if spec.schedule.enabled else None
        audit = spec.audit
        self.audit = Audit(self, "Audit", spec=spec, access_logs=self.storage.access_logs_bucket) if audit.cloudtrail or audit.config else None
        self._outputs()

    def _outputs(self) -> None:
        instance, storage = self.database.instance, self.storage
        outputs = {
            "DbEndpoint": instance.db_instance_endpoint_address,
            "DbPort": instance.db_instance_endpoint_port,
            "DbInstanceIdentifier": instance.instance_identifier,
            "FilesBucketName": storage.files_bucket.bucket_name,
            "FilesBucketArn": storage.files_bucket.bucket_arn,
            "RdsSecurityGroupId": self.network.rds_sg.security_group_id,
            "AppSecurityGroupId": self.network.app_sg.security_group_id,
            "ReadSecretsPolicyArn": self.access.read_secrets_policy.managed_policy_arn,
            "AppRoleArn": self.app_role.role.role_arn,
            "VpcId": self.network.vpc.vpc_id,
            "AlertsTopicArn": self.alerts.topic.topic_arn,
        }
        if storage.access_logs_bucket is not None:
            outputs["AccessLogsBucketName"] = storage.access_logs_bucket.bucket_name
            outputs["AccessLogsBucketArn"] = storage.access_logs_bucket.bucket_arn
        for logical_name, key in SECRET_OUTPUTS.items():
            outputs[key] = self.secrets.all()[logical_name].secret_arn
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)
