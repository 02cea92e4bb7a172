"""The typed environment spec: every per-environment value, with its unit and default.

Each field's docstring is its documentation (pydantic keeps it as the field's description), in the manner of
aws-cdk's props: what it sets, the unit, the AWS property it becomes, and ``Default:``; a field without a
default is set by each environment's built-in file (``rentaliq/spec/{env}.toml``). The built-in values and
the user's ``config/{env}.toml`` overrides are read by :mod:`rentaliq.spec.loader`; the rules that span
fields live in :mod:`rentaliq.spec.rules`.

Validation is strict: a value must have the field's type as written (``"30"`` is not 30, ``"yes"`` is not
true). The one leniency is that a list is accepted for a tuple field, since TOML has only lists.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rentaliq import naming
from rentaliq.spec.audit import AuditSpec
from rentaliq.spec.encryption import EncryptionSpec


class EnvName(StrEnum):
    LAB = "lab"
    QA = "qa"
    PROD = "prod"


ENV_NAMES: tuple[str, ...] = tuple(e.value for e in EnvName)

# RDS for PostgreSQL 15 instance classes we accept. A typo here would otherwise surface as a failed
# deploy minutes later.
INSTANCE_CLASSES: tuple[str, ...] = tuple(
    f"db.{family}.{size}"
    for family, sizes in {
        "t3": ("micro", "small", "medium", "large", "xlarge", "2xlarge"),
        "t4g": ("micro", "small", "medium", "large", "xlarge", "2xlarge"),
        "m5": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"),
        "m6g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
        "m6i": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge"),
        "m7g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
        "r5": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"),
        "r6g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
        "r6i": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge"),
        "r7g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    }.items()
    for size in sizes
)
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
LOG_EXPORTS = ("postgresql", "upgrade")
PERFORMANCE_INSIGHTS_RETENTION = (7, 31, 62, 93, 124, 155, 186, 217, 248, 279, 310, 341, 372, 403, 434, 465, 496, 527, 558, 589, 620, 651, 682, 713, 731)
SECRET_RECOVERY_WINDOWS = (0, *range(7, 31))

# strict: no coercion of what a file says; allow_inf_nan off: TOML's inf and nan are no threshold or price;
# use_attribute_docstrings: the docstrings below are the field docs.
_Frozen = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True)


class DatabaseSpec(BaseModel):
    """The RDS for PostgreSQL instance (``AWS::RDS::DBInstance``) and who may reach it."""

    model_config = _Frozen

    instance_class: str
    """RDS instance class (DBInstanceClass), one of INSTANCE_CLASSES, e.g. ``db.t3.micro``. Required."""
    allocated_storage_gib: int = Field(ge=20, le=65536)
    """Storage at creation, in GiB (AllocatedStorage), 20 to 65,536. Can never decrease once deployed. Required."""
    max_allocated_storage_gib: int = Field(ge=20, le=65536)
    """Ceiling for storage autoscaling, in GiB (MaxAllocatedStorage); at least allocated_storage_gib. Required."""
    multi_az: bool
    """A synchronous standby in a second availability zone (MultiAZ). Required; prod needs true."""
    backup_retention_days: int
    """Days automated backups are kept (BackupRetentionPeriod), 0 to 35; 0 turns backups off. Required."""
    backup_window: str = "03:00-04:00"
    """Daily backup window, ``hh24:mi-hh24:mi`` in UTC, at least 30 minutes (PreferredBackupWindow).
    Default: ``03:00-04:00``."""
    maintenance_window: str = "sun:04:00-sun:05:00"
    """Weekly maintenance window, ``ddd:hh24:mi-ddd:hh24:mi`` in UTC, at least 30 minutes, not overlapping the
    backup window (PreferredMaintenanceWindow). Default: ``sun:04:00-sun:05:00``."""
    performance_insights: bool
    """Performance Insights on (EnablePerformanceInsights). Required."""
    performance_insights_retention_days: int = 7
    """Days Performance Insights keeps its data: 7 (free), a multiple of 31 up to 713, or 731
    (PerformanceInsightsRetentionPeriod). Default: 7."""
    enhanced_monitoring_interval_s: int = 0
    """Enhanced Monitoring interval in seconds, one of 0 (off), 1, 5, 10, 15, 30, 60 (MonitoringInterval). Default: 0."""
    deletion_protection: bool
    """RDS refuses to delete the instance while true (DeletionProtection). Required; prod needs true."""
    final_snapshot: bool
    """Take a final snapshot when the instance is deleted (DeletionPolicy Snapshot) instead of none. Required; prod needs true."""
    cloudwatch_log_exports: tuple[str, ...] = Field(default=(), strict=False)
    """PostgreSQL logs published to CloudWatch Logs, from ``postgresql`` and ``upgrade``
    (EnableCloudwatchLogsExports). Default: none."""
    auto_minor_version_upgrade: bool = True
    """RDS applies minor engine upgrades in the maintenance window (AutoMinorVersionUpgrade). Default: true."""
    apply_immediately: bool = False
    """Modifications apply at once instead of in the next maintenance window (ApplyImmediately). Default: false."""
    engine_version: str = "15"
    """PostgreSQL engine version, ``15`` or ``15.x`` (EngineVersion). Default: ``15``."""
    master_username: str = "rentaliq_admin"
    """The master user's name: a letter, then letters, digits or _, up to 63 characters; not ``postgres`` or
    ``rdsadmin`` (MasterUsername). Its password is generated into Secrets Manager. Default: ``rentaliq_admin``."""
    database_name: str = "rentaliq"
    """The database created with the instance, same form as master_username (DBName). Changing it replaces
    the instance. Default: ``rentaliq``."""
    port: int = Field(default=5432, ge=1150, le=65535)
    """TCP port PostgreSQL listens on, 1150 to 65535 (Port). Default: 5432."""
    allowed_cidrs: tuple[str, ...] = Field(default=(), strict=False)
    """Extra IPv4 ranges the database security group admits on ``port``, besides the app security group;
    private ranges only: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918), 100.64.0.0/10 (RFC 6598).
    Default: none."""
    storage_type: Literal["gp2", "gp3"] = "gp3"
    """EBS volume type, ``gp2`` or ``gp3`` (StorageType). Default: ``gp3``."""


class LifecycleSpec(BaseModel):
    """The files bucket's lifecycle rules (S3 LifecycleConfiguration); every value is in days after creation."""

    model_config = _Frozen

    infrequent_access_after_days: int = Field(default=90, ge=30)
    """Days until objects move to S3 Standard-IA; S3 needs at least 30. Default: 90."""
    glacier_after_days: int = Field(ge=1)
    """Days until objects move to S3 Glacier Flexible Retrieval; after the Standard-IA transition. Required."""
    intelligent_tiering_after_days: int | None = None
    """Days until objects move to S3 Intelligent-Tiering; set exactly when storage.intelligent_tiering is true,
    between the Standard-IA and Glacier transitions. Default: unset."""
    expire_current_after_days: int | None = None
    """Days until current object versions expire (are deleted or become noncurrent); after the Glacier
    transition. Default: unset (never)."""
    abort_incomplete_multipart_after_days: int = Field(default=7, ge=1)
    """Days after which an unfinished multipart upload is aborted and its parts freed. Default: 7."""
    expire_noncurrent_after_days: int | None = None
    """Days a noncurrent version is kept; required when storage.versioning is true, unset otherwise.
    Default: unset."""


class StorageSpec(BaseModel):
    """The files bucket (``AWS::S3::Bucket``) and, in prod, its access-logs bucket."""

    model_config = _Frozen

    versioning: bool
    """S3 versioning on the files bucket (VersioningConfiguration). Required."""
    access_logs: bool
    """Server access logs delivered to a separate logs bucket (LoggingConfiguration). Required."""
    intelligent_tiering: bool
    """Objects move to Intelligent-Tiering with archive tiers (IntelligentTieringConfigurations). Required."""
    lifecycle: LifecycleSpec
    """The lifecycle rules. Required."""
    archive_access_after_days: int = Field(default=90, ge=90, le=730)
    """Intelligent-Tiering: days without access until the Archive Access tier, 90 to 730 (only with
    intelligent_tiering). Default: 90."""
    deep_archive_access_after_days: int = Field(default=180, ge=180, le=730)
    """Intelligent-Tiering: days without access until the Deep Archive Access tier, 180 to 730, after the
    archive tier (only with intelligent_tiering). Default: 180."""


class SecretsSpec(BaseModel):
    """The Secrets Manager secrets (``AWS::SecretsManager::Secret``): credentials, connection string, API keys."""

    model_config = _Frozen

    recovery_window_days: int
    """Days a deleted secret stays recoverable: 0 (deleted at once) or 7 to 30 (RecoveryWindowInDays on
    delete). Required."""
    rotation_days: int | None = Field(default=None, ge=1, le=1000)
    """Days between automatic rotations of ``rentaliq/{env}/db/credentials`` (the hosted single-user PostgreSQL
    rotation, RotationRules.AutomaticallyAfterDays), 1 to 1000 as Secrets Manager allows; unset: no scheduled
    rotation (``rentaliq rotate`` still rotates on demand). Default: unset (PROD sets 30)."""


class ExistingNetwork(BaseModel):
    """A VPC that already exists, used instead of creating one."""

    model_config = _Frozen

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    """The VPC's id, ``vpc-`` and 8 or 17 hex digits. Required."""
    db_subnet_ids: tuple[str, ...] = Field(min_length=2, strict=False)
    """Private subnets for the DB subnet group, at least two, in different availability zones. Required."""
    app_subnet_ids: tuple[str, ...] = Field(min_length=2, strict=False)
    """Private subnets for the application, at least two. Required."""
    availability_zones: tuple[str, ...] = Field(min_length=2, strict=False)
    """The availability zones of those subnets, e.g. ``us-east-1a``, at least two. Required."""


NatChoice = Literal["gateway", "instance", "none"]
WEEKDAYS: tuple[str, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


class NetworkSpec(BaseModel):
    """The VPC the stack creates (public, app and DB subnets; the app subnets' egress), or an existing one."""

    model_config = _Frozen

    vpc_cidr: str
    """The VPC's IPv4 range, private, /16 to /24, e.g. ``10.10.0.0/16`` (CidrBlock). Required."""
    availability_zones: int = Field(default=2, ge=2, le=3)
    """Availability zones the subnets span, 2 or 3. Default: 2."""
    nat: NatChoice
    """How the app subnets reach the internet: ``gateway`` (managed NAT gateways, about $33 a month each plus
    $0.045 per GB), ``instance`` (a small NAT instance of ``nat_instance_type`` per NAT, with its own security
    group and a health alarm, about $7 a month each) or ``none`` (isolated app subnets: no internet egress; AWS
    services through the S3 gateway endpoint and, with ``secrets_manager_endpoint``, a Secrets Manager interface
    endpoint). Required (LAB ``none``, QA ``instance``, PROD ``instance``, one per zone)."""
    nat_count: int | None = Field(default=None, ge=1, le=3)
    """NAT gateways or instances, 1 to availability_zones; one per zone keeps egress up through a zone failure.
    Unset with ``nat = "none"``. Default: 1 (none with ``nat = "none"``)."""
    nat_instance_type: str = Field(default="t4g.nano", pattern=r"^[a-z][a-z0-9]*\.[a-z0-9]+$")
    """EC2 instance type of a NAT instance (``nat = "instance"``): t4g.nano, t4g.micro, t4g.small, t3.nano, t3.micro
    or t3a.nano; an ARM (Graviton) type runs the ARM Amazon Linux 2023 image. Default: ``t4g.nano``."""
    secrets_manager_endpoint: bool = False
    """A Secrets Manager interface endpoint in the app subnets (private DNS on; its security group admits HTTPS
    from the app security group only): the spec's Phase 2 "private access", about $7.30 a month per zone.
    Default: false."""
    secrets_manager_private_dns: bool = True
    """Private DNS on the Secrets Manager endpoint (PrivateDnsEnabled): the usual ``secretsmanager.{region}.amazonaws.com``
    resolves to it, so no client changes; off, clients must use the endpoint's own DNS name. Only with
    ``secrets_manager_endpoint``. Default: true."""
    existing: ExistingNetwork | None = None
    """Use this existing VPC instead of creating one. Default: unset (the stack creates the VPC)."""

    @property
    def nats(self) -> int:
        """How many NAT gateways or instances the VPC gets (0 with ``nat = "none"``)."""
        if self.nat == "none":
            return 0
        return 1 if self.nat_count is None else self.nat_count


class ScheduleSpec(BaseModel):
    """Off-hours stop and start of the database (the spec's "Schedule Start/Stop": LAB and QA): two EventBridge
    Scheduler schedules calling RDS's StopDBInstance and StartDBInstance. Times are wall-clock times in
    ``timezone``, so they follow daylight saving time. Storage, backups and the secrets are billed while stopped;
    the instance hours are not."""

    model_config = _Frozen

    enabled: bool = True
    """Whether the schedules exist; false keeps the database running around the clock. Default: true."""
    stop_at: str = Field(default="20:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """When the database stops, ``HH:MM`` (24-hour) in ``timezone``, on each of ``days``. Default: ``20:00``."""
    start_at: str = Field(default="07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """When it starts, ``HH:MM`` in ``timezone``, on each of ``days``; before stop_at. Default: ``07:00``."""
    days: tuple[str, ...] = Field(default=("MON", "TUE", "WED", "THU", "FRI"), min_length=1, strict=False)
    """The days it runs, from ``MON TUE WED THU FRI SAT SUN``: it starts at start_at and stops at stop_at on each
    of them, and stays stopped on the others. Default: Monday to Friday."""
    timezone: str = "America/New_York"
    """The IANA time zone of the times, e.g. ``America/New_York`` or ``Europe/Berlin``
    (ScheduleExpressionTimezone). Default: ``America/New_York``."""


class MonitoringSpec(BaseModel):
    """The CloudWatch alarms on the environment (``AWS::CloudWatch::Alarm``), each notifying the alerts topic."""

    model_config = _Frozen

    alarms: bool
    """Create the alarms. Required."""
    cpu_threshold_percent: float = Field(default=80, gt=0, le=100)
    """High-CPU alarm threshold, percent of CPUUtilization (above 0, at most 100). Default: 80."""
    cpu_period_s: int = Field(default=300, gt=0)
    """The high-CPU alarm's period, in seconds: 10, 30 or a multiple of 60 (CloudWatch's rule). Default: 300
    (the spec's "CPU > 80% for 5 minutes")."""
    period_s: int = Field(default=300, gt=0)
    """The other alarms' period, in seconds: 10, 30 or a multiple of 60. Default: 300."""
    free_storage_threshold_gib: float = Field(gt=0)
    """Low-storage alarm threshold, GiB of FreeStorageSpace (above 0). Required."""
    connections_threshold: int = Field(gt=0)
    """High-connections alarm threshold, a count of DatabaseConnections (above 0). Required."""
    read_latency_threshold_ms: float = Field(default=20, gt=0)
    """High read-latency alarm threshold, milliseconds of ReadLatency (average per I/O). Default: 20."""
    write_latency_threshold_ms: float = Field(default=20, gt=0)
    """High write-latency alarm threshold, milliseconds of WriteLatency (average per I/O). Default: 20."""
    replica_lag_threshold_s: float = Field(default=60, gt=0)
    """Replica-lag alarm threshold, seconds of ReplicaLag; ``rentaliq replica create`` gives each read replica
    this alarm, and deleting the replica deletes it. Default: 60."""
    request_metrics: bool = False
    """Publish the files bucket's request metrics (AllRequests, 4xxErrors, 5xxErrors: an S3 metrics configuration
    named ``EntireBucket``, billed as CloudWatch custom metrics) and alarm on its 5xx errors. Default: false."""
    files_5xx_threshold: int = Field(default=5, ge=0)
    """Files-bucket 5xx alarm threshold: 5xxErrors (Sum) per period above this alarms (needs request_metrics).
    Default: 5."""


class AlertsSpec(BaseModel):
    """Who the alerts topic ``rentaliq-{env}-alerts`` notifies: every alarm publishes to it on ALARM and on OK.

    Each address or URL becomes an ``AWS::SNS::Subscription``; an email subscription delivers only once its
    owner confirms the mail AWS sends, an HTTPS one once the endpoint confirms (SNS's handshake)."""

    model_config = _Frozen

    emails: tuple[str, ...] = Field(default=(), strict=False)
    """Email addresses (SNS protocol ``email``). Default: none."""
    https_endpoints: tuple[str, ...] = Field(default=(), strict=False)
    """HTTPS URLs that receive SNS's JSON notifications (protocol ``https``); ``http://`` only on loopback, for
    local testing. Default: none."""
    chat_webhook_url: str | None = None
    """A chat tool's incoming webhook that accepts SNS's JSON (a Teams or Slack *workflow* webhook; Slack's classic
    incoming webhooks need AWS Chatbot instead), subscribed with protocol ``https``. Default: unset."""

    def subscriptions(self) -> tuple[tuple[str, str], ...]:
        """``(protocol, endpoint)`` pairs, in spec order."""
        urls = (*self.https_endpoints, *((self.chat_webhook_url,) if self.chat_webhook_url else ()))
        return (*(("email", e) for e in self.emails), *((url.split(":", 1)[0], url) for url in urls))


class TagsSpec(BaseModel):
    """Tag values every taggable resource carries, besides Project, Environment and Application.

    Values follow AWS's tag rules: up to 256 characters; letters, digits, spaces and ``_ . : / = + - @``.
    """

    model_config = _Frozen

    owner: str = "Keith Perez"
    """The Owner tag: who answers for the environment; not empty. Default: ``Keith Perez``."""
    managed_by: str = "CDK"
    """The ManagedBy tag. Default: ``CDK``."""
    cost_center: str | None = None
    """The CostCenter tag, for cost allocation. Default: unset (no CostCenter tag)."""


class CostSpec(BaseModel):
    """The spec's "Estimated Cost/Month" row, kept as the target the estimate is checked against."""

    model_config = _Frozen

    monthly_usd_low: float
    """Low end of the expected monthly bill, in US dollars. Required."""
    monthly_usd_high: float
    """High end of the expected monthly bill, in US dollars; at least monthly_usd_low. Required."""
    reserved_instance: bool = False
    """The database's instance hours are covered by a 1-year Standard reserved instance, No Upfront, bought for it
    (the spec's "Future Optimizations" plans one for PROD). A reservation is a purchase in the billing console, not a
    template resource, so only this field tells ``rentaliq cost``: it then prices the instance hours at that rate,
    every hour of the month (a reservation bills whether the instance runs or not), and shows on-demand as the
    alternative. Default: false (on-demand)."""
    budget: bool = True
    """An AWS Budget at monthly_usd_high that notifies the alerts topic (80 % forecast, 100 % actual). Default: on;
    must be off in a region where CloudFormation has no AWS::Budgets::Budget."""


class UsageSpec(BaseModel):
    """Usage assumptions that turn the template's resources into a monthly bill (``rentaliq cost``): what a
    template cannot say. Monthly figures; shown on the bill; ``rentaliq cost --usage KEY=VALUE`` overrides them."""

    model_config = _Frozen

    nat_gb: float = Field(default=10, ge=0)
    """GB per month through the NAT gateways, all together (their per-GB processing charge). Default: 10."""
    endpoint_gb: float = Field(default=0, ge=0)
    """GB per month through interface VPC endpoints, all together. Default: 0."""
    secret_api_calls: int = Field(default=2500, ge=0)
    """Secrets Manager API calls per secret per month (GetSecretValue, DescribeSecret). Default: 2,500."""
    kms_requests: int = Field(default=1000, ge=0)
    """KMS requests per key per month (SNS encrypting alarm notifications). Default: 1,000."""
    sns_publishes: int = Field(default=100, ge=0)
    """Messages published per topic per month (each alarm transition to ALARM or OK is one). Default: 100."""
    flow_log_gb: float = Field(default=1, ge=0)
    """GB of VPC flow logs ingested per month. Default: 1."""
    db_log_gb: float = Field(default=0.5, ge=0)
    """GB of PostgreSQL logs exported to CloudWatch Logs per month (when cloudwatch_log_exports is set). Default: 0.5."""
    enhanced_monitoring_kb: float = Field(default=12, ge=0)
    """KB one Enhanced Monitoring sample (an RDSOSMetrics log event) ingests. Default: 12."""
    backup_gb: float = Field(default=0, ge=0)
    """GB of RDS backup storage beyond the free 100 % of provisioned storage. Default: 0."""
    files_standard_gb: float = Field(default=5, ge=0)
    """GB in the files bucket's S3 Standard class (noncurrent versions included). Default: 5."""
    files_standard_ia_gb: float = Field(default=0, ge=0)
    """GB in S3 Standard-IA. Default: 0."""
    files_intelligent_tiering_gb: float = Field(default=0, ge=0)
    """GB in S3 Intelligent-Tiering. Default: 0."""
    files_intelligent_tiering_objects: int = Field(default=0, ge=0)
    """Objects in S3 Intelligent-Tiering (its monitoring charge is per object). Default: 0."""
    files_glacier_gb: float = Field(default=0, ge=0)
    """GB in S3 Glacier Flexible Retrieval. Default: 0."""
    files_put_requests: int = Field(default=10_000, ge=0)
    """PUT, COPY, POST and LIST requests per month on the files bucket. Default: 10,000."""
    files_get_requests: int = Field(default=100_000, ge=0)
    """GET requests per month on the files bucket. Default: 100,000."""
    access_logs_gb: float = Field(default=1, ge=0)
    """GB kept in an access-logs bucket (S3 Standard). Default: 1."""
    trail_logs_gb: float = Field(default=1, ge=0)
    """GB kept in the trail-logs bucket (``[audit]``; CloudTrail and Config deliveries, S3 Standard). Default: 1."""
    trail_logs_put_requests: int = Field(default=10_000, ge=0)
    """Log files CloudTrail and Config deliver a month (one PUT each; about one per region every 5 minutes). Default: 10,000."""
    config_items: int = Field(default=300, ge=0)
    """AWS Config configuration items recorded a month (one per resource change). Default: 300."""
    config_rule_evaluations: int = Field(default=60, ge=0)
    """Evaluations per Config rule a month (on each change of a resource in scope, or daily). Default: 60."""
    request_metrics: int = Field(default=16, ge=0, le=16)
    """Metrics an S3 request-metrics configuration publishes in a month, 0 to 16 (S3 publishes a metric only when
    there is such traffic). Default: 16."""


class RecoverySpec(BaseModel):
    """The spec's recovery objectives ("Backup & Disaster Recovery"): the targets ``rentaliq drill`` measures against."""

    model_config = _Frozen

    rpo_minutes: int = Field(ge=1)
    """Recovery Point Objective: the most committed data, in minutes of writes, a point-in-time restore may lose
    (spec: LAB up to 24 h, QA up to 1 h, PROD < 5 min). A drill passes when the RPO it measures is below it. Required."""
    rto_minutes: int = Field(ge=1)
    """Recovery Time Objective, the upper bound of the spec's range: minutes from the restore request until the
    restored database accepts TLS connections with verified data (spec: LAB 4-8 h, QA 2-4 h, PROD < 1 h). A drill
    passes when the RTO it measures is below it. Required."""


class EnvironmentSpec(BaseModel):
    """One environment: everything that differs between lab, qa and prod."""

    model_config = _Frozen

    name: EnvName = Field(strict=False)
    """The environment, ``lab``, ``qa`` or ``prod``; a file's value must match the file's name. Required."""
    region: str = "us-east-1"
    """The AWS region the stack deploys to, a real region code such as ``us-east-1``. Default: ``us-east-1``."""
    account: str | None = None
    """The AWS account id the stack is bound to. Default: unset (the caller's account)."""
    critical: bool
    """Whether the environment is business-critical (adds the Critical=true tag). Required."""
    database: DatabaseSpec
    """The database. Required."""
    storage: StorageSpec
    """The files bucket. Required."""
    secrets: SecretsSpec
    """The secrets. Required."""
    network: NetworkSpec
    """The network. Required."""
    monitoring: MonitoringSpec
    """The alarms. Required."""
    encryption: EncryptionSpec = EncryptionSpec()
    """Encryption at rest: AWS-managed keys or the environment's own KMS key. Default: AWS-managed keys (PROD's
    built-in spec turns the customer-managed key on)."""
    alerts: AlertsSpec = AlertsSpec()
    """Who the alarms notify. Default: no subscriptions (the topic exists; subscribe later in the spec)."""
    tags: TagsSpec = TagsSpec()
    """The tag values. Default: owner ``Keith Perez``, managed_by ``CDK``, no cost center."""
    cost: CostSpec
    """The expected monthly cost. Required."""
    recovery: RecoverySpec
    """The recovery objectives (RPO, RTO). Required."""
    usage: UsageSpec = UsageSpec()
    """The usage assumptions a bill is priced with. Default: UsageSpec's defaults."""
    schedule: ScheduleSpec = ScheduleSpec(enabled=False)
    """Off-hours stop/start of the database. Default: none (LAB and QA's built-in specs turn it on; PROD refuses
    one unless allow_unsafe_prod)."""
    audit: AuditSpec = AuditSpec()
    """The audit trail (CloudTrail, AWS Config). Default: off (PROD's built-in spec turns both on)."""
    allow_unsafe_prod: bool = False
    """PROD must be Multi-AZ with deletion protection and a final snapshot; true is the deliberate, reviewable
    way out. Default: false."""

    @property
    def stack_name(self) -> str:
        return naming.stack_name(self.name)

    @property
    def is_prod(self) -> bool:
        return self.name is EnvName.PROD

    def resource_tags(self) -> dict[str, str]:
        """Tags every taggable resource carries (the spec's tagging strategy)."""
        tags = {
            "Project": naming.PROJECT_TAG,
            "Environment": self.name.value,
            "ManagedBy": self.tags.managed_by,
            "Owner": self.tags.owner,
            "Application": naming.APPLICATION,
        }
        if self.critical:
            tags["Critical"] = "true"
        if self.tags.cost_center:
            tags["CostCenter"] = self.tags.cost_center
        return tags
