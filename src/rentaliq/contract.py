"""What the stacks promise to the code that deploys, audits and uses them.

The deployer, `verify` and the runtime read these names; the CDK constructs build from them. Kept free of
aws_cdk so that reading a constant never starts jsii (a no-op `up` or a `verify` should not pay for it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rentaliq import naming

if TYPE_CHECKING:
    from rentaliq.environments import MonitoringSpec

# CloudFormation can generate one value per secret; the API keys secret needs three, so `rentaliq deploy`
# generates them on first deploy and passes them as NoEcho parameters (UsePreviousValue afterwards).
API_KEY_PARAMETERS = {"api_key": "ApiKey", "jwt_secret": "JwtSecret", "encryption_key": "EncryptionKey"}

# Parameters the spec requires of every environment's database; security-relevant, so never left to defaults.
DB_PARAMETERS = {"rds.force_ssl": "1", "shared_preload_libraries": "pg_stat_statements"}

READ_SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")

GIB = 1024**3

# Stack output keys; the deploy engine, `status`, `verify` and the tests read outputs by these names.
OUTPUT_KEYS = (
    "DbEndpoint",
    "DbPort",
    "DbInstanceIdentifier",
    "FilesBucketName",
    "FilesBucketArn",
    "AccessLogsBucketName",
    "AccessLogsBucketArn",
    "DbCredentialsSecretArn",
    "DbConnectionStringSecretArn",
    "ApiKeysSecretArn",
    "S3ConfigSecretArn",
    "RdsSecurityGroupId",
    "AppSecurityGroupId",
    "ReadSecretsPolicyArn",
    "AppRoleArn",
    "VpcId",
    "AlertsTopicArn",
)
SECRET_OUTPUTS = {
    "db/credentials": "DbCredentialsSecretArn",
    "db/connection-string": "DbConnectionStringSecretArn",
    "api/keys": "ApiKeysSecretArn",
    "s3/config": "S3ConfigSecretArn",
}

# DESIGN.md "Secrets": the JSON keys of each secret, kept compatible with existing RentalIQ services, in the
# order the stacks write them. db/credentials is written by CDK's DatabaseSecret (RDS's own secret layout).
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "db/credentials": ("username", "password", "engine", "host", "port", "dbname", "dbInstanceIdentifier"),
    "db/connection-string": ("DATABASE_URL", "JDBC_URL"),
    "api/keys": tuple(API_KEY_PARAMETERS),
    "s3/config": ("bucket_name", "bucket_arn", "region"),
}
# s3/config carries the environment's customer-managed key (when [encryption] turns it on), so services encrypt
# their uploads with it without configuration of their own: an explicit AES256 would override the bucket's default.
S3_CONFIG_KMS_KEY = "kms_key_arn"


def secret_keys(logical_name: str, *, customer_managed_key: bool) -> tuple[str, ...]:
    """The keys a deployed secret holds: SECRET_KEYS, plus s3/config's key ARN where the environment has its key."""
    extra = (S3_CONFIG_KMS_KEY,) if logical_name == "s3/config" and customer_managed_key else ()
    return (*SECRET_KEYS[logical_name], *extra)


# The keys whose values are secret: never printed, only compared.
SECRET_VALUE_KEYS: dict[str, tuple[str, ...]] = {
    "db/credentials": ("password",),
    "db/connection-string": ("DATABASE_URL",),
    "api/keys": tuple(API_KEY_PARAMETERS),
}
# Both connection URLs require TLS that verifies the server (the query parameter libpq, Node's pg and JDBC read):
# verify-full means the same to all of them, while pg 8 reads "require" as verify-full and libpq as encrypt-only.
SSLMODE = "verify-full"
# The RDS CA that signs the instance's server certificate: set explicitly by the stack (never the account's
# default, which can change), compared by verify, and played on the local cloud by its own CA.
RDS_CA_IDENTIFIER = "rds-ca-rsa2048-g1"

# Data stores carry Backup=true (DESIGN.md), for AWS Backup selections by tag.
BACKUP_TAG = {"Backup": "true"}

# The application security group: these ports in from, and out to, the internet (port: protocol name).
APP_PUBLIC_PORTS = {443: "HTTPS", 80: "HTTP"}


def secrets_arn_pattern(partition: str, region: str, account: str, secrets_prefix: str) -> str:
    """``…:secret:rentaliq/{env}/*``: Secrets Manager appends a random suffix to every secret ARN, hence the wildcard."""
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{secrets_prefix}*"


# PROD's RDS enhanced monitoring: the role RDS assumes and the AWS managed policy attached to it.
MONITORING_PRINCIPAL = "monitoring.rds.amazonaws.com"
ENHANCED_MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm the stack creates; each notifies the alerts topic on ALARM and on OK.

    ``what`` names it (``naming.alarm``: ``rentaliq-{env}-db-{what}``, or ``rentaliq-{env}-files-{what}`` for the
    files bucket) and, in CamelCase, is its construct id. Thresholds and periods are read from the env spec."""

    what: str
    namespace: str
    metric: str
    statistic: str
    comparison: str  # CloudFormation's ComparisonOperator
    threshold: Callable[[MonitoringSpec], float]
    description: Callable[[MonitoringSpec], str]
    unit: str
    period: Callable[[MonitoringSpec], int] = lambda m: m.period_s
    # AWS's missing-data treatment: "missing" for the database (a stopped instance publishes nothing and its alarms go
    # to INSUFFICIENT_DATA, never to a false ALARM); "notBreaching" for request errors (no requests, no datapoint).
    treat_missing_data: str = "missing"
    enabled: Callable[[MonitoringSpec], bool] = lambda m: True

    @property
    def on_bucket(self) -> bool:
        return self.namespace == "AWS/S3"

    def name(self, env: str) -> str:
        return naming.resource_name(env, "files" if self.on_bucket else "db", self.what)

    def dimensions(self, env: str) -> dict[str, str]:
        """The alarm's dimensions: the DB instance, or the files bucket and its request-metrics filter."""
        if self.on_bucket:
            return {"BucketName": naming.files_bucket(env), "FilterId": REQUEST_METRICS_FILTER_ID}
        return {ALARM_DIMENSION: naming.db_instance_id(env)}


MS = 1 / 1000
# The spec's high-CPU alarm ("CPU > 80% for 5 minutes", its own period), then low free storage, high connections,
# read and write latency on the database, and 5xx errors on the files bucket where its request metrics are on.
ALARMS = (
    AlarmSpec(
        "high-cpu",
        "AWS/RDS",
        "CPUUtilization",
        "Average",
        "GreaterThanThreshold",
        lambda m: m.cpu_threshold_percent,
        lambda m: f"Alert when CPU exceeds {m.cpu_threshold_percent:g}%",
        "Percent",
        period=lambda m: m.cpu_period_s,
    ),
    AlarmSpec(
        "low-free-storage",
        "AWS/RDS",
        "FreeStorageSpace",
        "Minimum",
        "LessThanThreshold",
        lambda m: m.free_storage_threshold_gib * GIB,
        lambda m: f"Alert when free storage falls below {m.free_storage_threshold_gib:g} GiB",
        "Bytes",
    ),
    AlarmSpec(
        "high-connections",
        "AWS/RDS",
        "DatabaseConnections",
        "Maximum",
        "GreaterThanThreshold",
        lambda m: m.connections_threshold,
        lambda m: f"Alert when connections exceed {m.connections_threshold}",
        "Count",
    ),
    AlarmSpec(
        "high-read-latency",
        "AWS/RDS",
        "ReadLatency",
        "Average",
        "GreaterThanThreshold",
        lambda m: m.read_latency_threshold_ms * MS,
        lambda m: f"Alert when read latency exceeds {m.read_latency_threshold_ms:g} ms",
        "Seconds",
    ),
    AlarmSpec(
        "high-write-latency",
        "AWS/RDS",
        "WriteLatency",
        "Average",
        "GreaterThanThreshold",
        lambda m: m.write_latency_threshold_ms * MS,
        lambda m: f"Alert when write latency exceeds {m.write_latency_threshold_ms:g} ms",
        "Seconds",
    ),
    AlarmSpec(
        "5xx-errors",
        "AWS/S3",
        "5xxErrors",
        "Sum",
        "GreaterThanThreshold",
        lambda m: m.files_5xx_threshold,
        lambda m: f"Alert when the files bucket answers more than {m.files_5xx_threshold} 5xx errors in a period",
        "Count",
        treat_missing_data="notBreaching",
        enabled=lambda m: m.request_metrics,
    ),
)
ALARM_NAMESPACE, ALARM_DIMENSION = "AWS/RDS", "DBInstanceIdentifier"
ALARM_EVALUATION_PERIODS = 1
# The files bucket's request-metrics configuration (S3 metrics filter) when monitoring.request_metrics is on.
REQUEST_METRICS_FILTER_ID = "EntireBucket"


def replica_lag_alarm(replica_id: str) -> str:
    """The alarm ``rentaliq replica create`` gives a read replica: ``rentaliq-prod-db-replica-lag`` for
    ``rentaliq-prod-db-replica`` (the replica's identifier, then ``-lag``)."""
    return f"{replica_id}-lag"


# The RDS metrics the spec's "Monitoring & Alerting" names (units as CloudWatch reports them), and S3's; the
# dashboard graphs each of them, and `verify` checks that it does.
RDS_METRICS = {  # in the order people read them: load, storage, I/O, network
    "CPUUtilization": "Percent",
    "DatabaseConnections": "Count",
    "FreeStorageSpace": "Bytes",
    "ReadIOPS": "Count/Second",
    "WriteIOPS": "Count/Second",
    "ReadLatency": "Seconds",
    "WriteLatency": "Seconds",
    "NetworkReceiveThroughput": "Bytes/Second",
    "NetworkTransmitThroughput": "Bytes/Second",
}
S3_STORAGE_METRICS = {"BucketSizeBytes": ("Bytes", "StandardStorage"), "NumberOfObjects": ("Count", "AllStorageTypes")}
S3_REQUEST_METRICS = {"AllRequests": "Count", "4xxErrors": "Count", "5xxErrors": "Count"}


# The environment's AWS Budget (infra/budget.py; `verify` checks it, the local cloud stores it). Budgets bills a tag
# filter only once the tag is activated as a cost-allocation tag in Billing: `Environment` must be (README, "Budgets").
BUDGET_PRINCIPAL = "budgets.amazonaws.com"
BUDGET_TAG_KEY = "Environment"


@dataclass(frozen=True)
class BudgetAlert:
    """One notification of the budget: ``threshold`` percent of the limit, spent (ACTUAL) or forecast (FORECASTED)."""

    notification_type: str
    threshold: float
    comparison: str = "GREATER_THAN"
    threshold_type: str = "PERCENTAGE"


# The "80 % forecast and 100 % actual", each to the alerts topic.
BUDGET_ALERTS = (BudgetAlert("FORECASTED", 80), BudgetAlert("ACTUAL", 100))


def budget_cost_filter(environment_tag: str) -> dict[str, list[str]]:
    """Budgets' CostFilters for one value of the Environment cost-allocation tag: ``{"TagKeyValue": ["user:Environment$lab"]}``."""
    return {"TagKeyValue": [f"user:{BUDGET_TAG_KEY}${environment_tag}"]}


def budget_source_arn(partition: str, account: str) -> str:
    """What Budgets' SNS publishes carry as aws:SourceArn, in the form AWS documents for the topic policy
    (Cost Management guide, "Creating an Amazon SNS topic for budget notifications"): any budget of the account."""
    return f"arn:{partition}:budgets::{account}:*"


# A restore's cutover (`rentaliq restore ENV --cutover`) points the environment's DB secrets at another instance:
# these tags on the secrets say so, for `status` and `verify` to show it as a deliberate deviation, and the
# staging label marks the version the first cutover replaced (what `--rollback-cutover` writes back).
CUTOVER_TAG = "rentaliq:cutover"
CUTOVER_SINCE_TAG = "rentaliq:cutover-since"
CUTOVER_STAGE = "RENTALIQ_PRE_CUTOVER"
CUTOVER_SECRETS = ("db/credentials", "db/connection-string")

# Stack statuses that mean the last operation succeeded and the stack is at rest.
STABLE_STACK_STATUSES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})


def database_deletion_policy(final_snapshot: bool) -> str:
    """The DB instance's CloudFormation DeletionPolicy: database.final_snapshot is a Snapshot policy."""
    return "Snapshot" if final_snapshot else "Delete"


def deletion_policy(resource: Mapping[str, Any]) -> str:
    """A template resource's DeletionPolicy; CloudFormation's default when the template leaves it out is Delete."""
    return str(resource.get("DeletionPolicy", "Delete"))


# Operations `verify` calls that the local cloud does not implement, as "service:Operation" (botocore's
# names, e.g. "s3:GetBucketIntelligentTieringConfiguration"). On the local cloud their checks are reported
# "not checkable" without a call; any other error, an HTTP 500 included, is a failed check. Empty: the
# local cloud implements every operation our stacks need verified (tests/functional/test_verify.py
# asserts 0 not-checkable checks), so add an entry only with the moto gap it stands for.
LOCAL_UNIMPLEMENTED_OPERATIONS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NatHealthAlarm:
    """A NAT instance's health alarm (``network.nat = "instance"``): EC2's combined status check, which AWS publishes
    every minute at no charge (no detailed monitoring needed). Missing data is breaching: a stopped or terminated
    instance publishes nothing, and a NAT that is not there is as down as one that fails its checks."""

    namespace: str = "AWS/EC2"
    metric: str = "StatusCheckFailed"
    dimension: str = "InstanceId"
    statistic: str = "Maximum"
    period_s: int = 60
    evaluation_periods: int = 2
    threshold: float = 1.0
    comparison: str = "GreaterThanOrEqualToThreshold"
    treat_missing_data: str = "breaching"


NAT_HEALTH = NatHealthAlarm()


# The application role (issue 12 §1): who may assume it, and what it may do with its environment's files bucket.
APP_ROLE_PRINCIPALS = ("ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "lambda.amazonaws.com")
FILES_OBJECT_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
)
FILES_BUCKET_ACTIONS = ("s3:ListBucket",)


def files_bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"
