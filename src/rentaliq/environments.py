"""The typed environment specs: the only place that holds a per-environment value.

Each spec carries every row of ARCHITECTURE.md's "Environment Comparison" table plus the values the
stacks, the local cloud, the audit and the cost estimate need. Specs are frozen; overrides come from
one TOML file per environment and pass the same validation as the built-in values, all problems
reported at once.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rentaliq import naming


class EnvName(StrEnum):
    LAB = "lab"
    QA = "qa"
    PROD = "prod"


ENV_NAMES: tuple[str, ...] = tuple(e.value for e in EnvName)

# RDS for PostgreSQL 15 instance classes we accept. A typo here would otherwise surface as a failed
# deploy minutes later; the cost table (rentaliq.cost) prices the same list.
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

_Frozen = ConfigDict(frozen=True, extra="forbid")


class DatabaseSpec(BaseModel):
    model_config = _Frozen

    instance_class: str
    allocated_storage_gib: int = Field(ge=20, le=65536)
    max_allocated_storage_gib: int = Field(ge=20, le=65536)
    multi_az: bool
    backup_retention_days: int
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "sun:04:00-sun:05:00"
    performance_insights: bool
    performance_insights_retention_days: int = 7
    enhanced_monitoring_interval_s: int = 0
    deletion_protection: bool
    final_snapshot: bool
    cloudwatch_log_exports: tuple[str, ...] = ()
    auto_minor_version_upgrade: bool = True
    apply_immediately: bool = False
    engine_version: str = "15"
    master_username: str = "rentaliq_admin"
    database_name: str = "rentaliq"
    port: int = Field(default=5432, ge=1150, le=65535)
    allowed_cidrs: tuple[str, ...] = ()
    storage_type: Literal["gp2", "gp3"] = "gp3"


class LifecycleSpec(BaseModel):
    model_config = _Frozen

    infrequent_access_after_days: int = Field(default=90, ge=30)
    glacier_after_days: int = Field(ge=1)
    intelligent_tiering_after_days: int | None = None
    expire_current_after_days: int | None = None
    abort_incomplete_multipart_after_days: int = Field(default=7, ge=1)
    expire_noncurrent_after_days: int | None = None


class StorageSpec(BaseModel):
    model_config = _Frozen

    versioning: bool
    access_logs: bool
    intelligent_tiering: bool
    lifecycle: LifecycleSpec
    # Intelligent-Tiering archive tiers (only with intelligent_tiering); AWS minimums are 90 and 180 days.
    archive_access_after_days: int = Field(default=90, ge=90, le=730)
    deep_archive_access_after_days: int = Field(default=180, ge=180, le=730)


class SecretsSpec(BaseModel):
    model_config = _Frozen

    recovery_window_days: int


class ExistingNetwork(BaseModel):
    model_config = _Frozen

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    db_subnet_ids: tuple[str, ...] = Field(min_length=2)
    app_subnet_ids: tuple[str, ...] = Field(min_length=2)
    availability_zones: tuple[str, ...] = Field(min_length=2)


class NetworkSpec(BaseModel):
    model_config = _Frozen

    vpc_cidr: str
    availability_zones: int = Field(default=2, ge=2, le=3)
    nat_gateways: int = Field(ge=0, le=3)
    existing: ExistingNetwork | None = None


class MonitoringSpec(BaseModel):
    model_config = _Frozen

    alarms: bool
    cpu_threshold_percent: float = Field(default=80, gt=0, le=100)
    cpu_period_s: int = 300
    free_storage_threshold_gib: float = Field(gt=0)
    connections_threshold: int = Field(gt=0)


class TagsSpec(BaseModel):
    model_config = _Frozen

    owner: str = "Keith Perez"
    managed_by: str = "CDK"
    cost_center: str | None = None


class CostSpec(BaseModel):
    """The spec's "Estimated Cost/Month" row, kept as the target the estimate is checked against."""

    model_config = _Frozen

    monthly_usd_low: float
    monthly_usd_high: float


class EnvironmentSpec(BaseModel):
    model_config = _Frozen

    name: EnvName
    region: str = "us-east-1"
    account: str | None = None
    critical: bool
    database: DatabaseSpec
    storage: StorageSpec
    secrets: SecretsSpec
    network: NetworkSpec
    monitoring: MonitoringSpec
    tags: TagsSpec = TagsSpec()
    cost: CostSpec
    # PROD must be Multi-AZ with deletion protection; this flag is the deliberate, reviewable way out.
    allow_unsafe_prod: bool = False

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


_BUILT_IN: dict[str, dict[str, Any]] = {
    "lab": {
        "name": "lab",
        "critical": False,
        "database": {
            "instance_class": "db.t3.micro",
            "allocated_storage_gib": 20,
            "max_allocated_storage_gib": 50,
            "multi_az": False,
            "backup_retention_days": 3,
            "performance_insights": False,
            "enhanced_monitoring_interval_s": 0,
            "deletion_protection": False,
            "final_snapshot": False,
            "cloudwatch_log_exports": (),
            "apply_immediately": True,
            "allowed_cidrs": ("10.10.0.0/16",),
        },
        "storage": {
            "versioning": False,
            "access_logs": False,
            "intelligent_tiering": False,
            "lifecycle": {"glacier_after_days": 180, "expire_current_after_days": 365},
        },
        "secrets": {"recovery_window_days": 0},
        "network": {"vpc_cidr": "10.10.0.0/16", "nat_gateways": 1},
        "monitoring": {"alarms": True, "free_storage_threshold_gib": 2, "connections_threshold": 60},
        "cost": {"monthly_usd_low": 16, "monthly_usd_high": 18},
    },
    "qa": {
        "name": "qa",
        "critical": False,
        "database": {
            "instance_class": "db.t3.small",
            "allocated_storage_gib": 50,
            "max_allocated_storage_gib": 100,
            "multi_az": False,
            "backup_retention_days": 7,
            "performance_insights": True,
            "enhanced_monitoring_interval_s": 0,
            "deletion_protection": False,
            "final_snapshot": False,
            "cloudwatch_log_exports": ("postgresql", "upgrade"),
            "allowed_cidrs": ("10.20.0.0/16",),
        },
        "storage": {
            "versioning": True,
            "access_logs": False,
            "intelligent_tiering": False,
            "lifecycle": {"glacier_after_days": 180, "expire_noncurrent_after_days": 90},
        },
        "secrets": {"recovery_window_days": 7},
        "network": {"vpc_cidr": "10.20.0.0/16", "nat_gateways": 1},
        "monitoring": {"alarms": True, "free_storage_threshold_gib": 5, "connections_threshold": 120},
        "cost": {"monthly_usd_low": 32, "monthly_usd_high": 36},
    },
    "prod": {
        "name": "prod",
        "critical": True,
        "database": {
            "instance_class": "db.t3.medium",
            "allocated_storage_gib": 100,
            "max_allocated_storage_gib": 500,
            "multi_az": True,
            "backup_retention_days": 30,
            "performance_insights": True,
            "enhanced_monitoring_interval_s": 60,
            "deletion_protection": True,
            "final_snapshot": True,
            "cloudwatch_log_exports": ("postgresql", "upgrade"),
            "allowed_cidrs": ("10.30.0.0/16",),
        },
        "storage": {
            "versioning": True,
            "access_logs": True,
            "intelligent_tiering": True,
            "lifecycle": {
                "glacier_after_days": 365,
                "intelligent_tiering_after_days": 180,
                "expire_noncurrent_after_days": 90,
            },
        },
        "secrets": {"recovery_window_days": 30},
        "network": {"vpc_cidr": "10.30.0.0/16", "nat_gateways": 2},
        "monitoring": {"alarms": True, "free_storage_threshold_gib": 10, "connections_threshold": 300},
        "cost": {"monthly_usd_low": 123, "monthly_usd_high": 131},
    },
}


class SpecError(ValueError):
    """Every problem of one or more specs, reported at once; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid environment spec:\n  " + "\n  ".join(problems) if len(problems) > 1 else problems[0])


_WINDOW_DAILY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_WINDOW_WEEKLY = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$"
)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEK = 7 * 24 * 60


def _daily_minutes(window: str) -> tuple[int, int] | None:
    m = _WINDOW_DAILY.match(window)
    if not m:
        return None
    h1, m1, h2, m2 = map(int, m.groups())
    return h1 * 60 + m1, h2 * 60 + m2


def _weekly_minutes(window: str) -> tuple[int, int] | None:
    m = _WINDOW_WEEKLY.match(window)
    if not m:
        return None
    d1, h1, m1, d2, h2, m2 = m.groups()
    start = _DAYS.index(d1) * 1440 + int(h1) * 60 + int(m1)
    end = _DAYS.index(d2) * 1440 + int(h2) * 60 + int(m2)
    return start, end


def _span(start: int, end: int, period: int) -> int:
    return (end - start) % period


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Two half-open intervals on the week circle, each given as (start, end) in minutes."""
    a_len, b_len = _span(*a, _WEEK), _span(*b, _WEEK)
    return (b[0] - a[0]) % _WEEK < a_len or (a[0] - b[0]) % _WEEK < b_len


def _check(spec: EnvironmentSpec) -> list[str]:
    """Cross-field rules pydantic cannot express; each line names field, value and what is allowed."""
    env = spec.name.value
    db, problems = spec.database, []

    def bad(field: str, value: Any, allowed: str) -> None:
        problems.append(f"{env}: {field}={value!r} is invalid; allowed: {allowed}")

    if db.instance_class not in INSTANCE_CLASSES:
        bad("database.instance_class", db.instance_class, "an RDS PostgreSQL class such as db.t3.micro, db.t3.small, db.t3.medium, db.m6g.large")
    if db.allocated_storage_gib > db.max_allocated_storage_gib:
        bad("database.allocated_storage_gib", db.allocated_storage_gib, f"at most database.max_allocated_storage_gib ({db.max_allocated_storage_gib})")
    if not 0 <= db.backup_retention_days <= 35:
        bad("database.backup_retention_days", db.backup_retention_days, "0 to 35 days")
    backup = _daily_minutes(db.backup_window)
    if backup is None or _span(*backup, 1440) < 30:
        bad("database.backup_window", db.backup_window, "hh24:mi-hh24:mi in UTC, at least 30 minutes, e.g. 03:00-04:00")
    maintenance = _weekly_minutes(db.maintenance_window)
    if maintenance is None or _span(*maintenance, _WEEK) < 30:
        bad("database.maintenance_window", db.maintenance_window, "ddd:hh24:mi-ddd:hh24:mi in UTC, at least 30 minutes, e.g. sun:04:00-sun:05:00")
    if backup and maintenance:
        if any(_overlaps(((d * 1440 + backup[0]) % _WEEK, (d * 1440 + backup[0] + _span(*backup, 1440)) % _WEEK), maintenance) for d in range(7)):
            bad("database.maintenance_window", db.maintenance_window, f"a window that does not overlap database.backup_window ({db.backup_window})")
    if db.enhanced_monitoring_interval_s not in MONITORING_INTERVALS:
        bad("database.enhanced_monitoring_interval_s", db.enhanced_monitoring_interval_s, ", ".join(map(str, MONITORING_INTERVALS)))
    if db.performance_insights_retention_days not in PERFORMANCE_INSIGHTS_RETENTION:
        bad("database.performance_insights_retention_days", db.performance_insights_retention_days, "7, a multiple of 31 up to 713, or 731")
    for export in db.cloudwatch_log_exports:
        if export not in LOG_EXPORTS:
            bad("database.cloudwatch_log_exports", export, ", ".join(LOG_EXPORTS))
    if db.engine_version.split(".")[0] != "15":
        bad("database.engine_version", db.engine_version, "PostgreSQL 15 (15 or 15.x)")
    if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,62}", db.master_username) or db.master_username in ("postgres", "rdsadmin"):
        bad("database.master_username", db.master_username, "a letter then letters, digits or _ (max 63), not a reserved name")
    if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,62}", db.database_name):
        bad("database.database_name", db.database_name, "a letter then letters, digits or _ (max 63)")
    for cidr in db.allowed_cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            bad("database.allowed_cidrs", cidr, "IPv4 CIDR blocks such as 10.0.0.0/16")
        else:
            if cidr in ("0.0.0.0/0", "::/0"):
                bad("database.allowed_cidrs", cidr, "a private range; the database is never open to the internet")

    if spec.secrets.recovery_window_days not in SECRET_RECOVERY_WINDOWS:
        bad("secrets.recovery_window_days", spec.secrets.recovery_window_days, "0 (delete at once) or 7 to 30 days")

    storage, life = spec.storage, spec.storage.lifecycle
    if life.glacier_after_days <= life.infrequent_access_after_days:
        bad("storage.lifecycle.glacier_after_days", life.glacier_after_days, f"more than storage.lifecycle.infrequent_access_after_days ({life.infrequent_access_after_days})")
    if life.expire_current_after_days is not None and life.expire_current_after_days <= life.glacier_after_days:
        bad("storage.lifecycle.expire_current_after_days", life.expire_current_after_days, f"more than storage.lifecycle.glacier_after_days ({life.glacier_after_days})")
    if life.expire_noncurrent_after_days is not None and not storage.versioning:
        bad("storage.lifecycle.expire_noncurrent_after_days", life.expire_noncurrent_after_days, "unset when storage.versioning is false")
    if storage.versioning and life.expire_noncurrent_after_days is None:
        bad("storage.lifecycle.expire_noncurrent_after_days", None, "a number of days when storage.versioning is true")
    if storage.intelligent_tiering != (life.intelligent_tiering_after_days is not None):
        bad("storage.lifecycle.intelligent_tiering_after_days", life.intelligent_tiering_after_days, "set exactly when storage.intelligent_tiering is true")
    if life.intelligent_tiering_after_days is not None and not (
        life.infrequent_access_after_days < life.intelligent_tiering_after_days < life.glacier_after_days
    ):
        bad("storage.lifecycle.intelligent_tiering_after_days", life.intelligent_tiering_after_days, "between the Standard-IA and Glacier transitions (S3's storage-class waterfall)")
    if storage.deep_archive_access_after_days <= storage.archive_access_after_days:
        bad("storage.deep_archive_access_after_days", storage.deep_archive_access_after_days, f"more than storage.archive_access_after_days ({storage.archive_access_after_days})")

    net = spec.network
    try:
        vpc_net = ipaddress.ip_network(net.vpc_cidr, strict=True)
        if not 16 <= vpc_net.prefixlen <= 24 or not vpc_net.is_private:
            bad("network.vpc_cidr", net.vpc_cidr, "a private IPv4 range between /16 and /24")
    except ValueError:
        bad("network.vpc_cidr", net.vpc_cidr, "a private IPv4 range between /16 and /24, e.g. 10.10.0.0/16")
    if net.existing is None and net.nat_gateways > net.availability_zones:
        bad("network.nat_gateways", net.nat_gateways, f"0 to network.availability_zones ({net.availability_zones})")

    if spec.cost.monthly_usd_low > spec.cost.monthly_usd_high:
        bad("cost.monthly_usd_low", spec.cost.monthly_usd_low, f"at most cost.monthly_usd_high ({spec.cost.monthly_usd_high})")

    if spec.is_prod and not spec.allow_unsafe_prod:
        if not db.deletion_protection:
            bad("database.deletion_protection", False, "true in prod (set allow_unsafe_prod = true to override deliberately)")
        if not db.multi_az:
            bad("database.multi_az", False, "true in prod (set allow_unsafe_prod = true to override deliberately)")
        if not db.final_snapshot:
            bad("database.final_snapshot", False, "true in prod (set allow_unsafe_prod = true to override deliberately)")
    return problems


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _pydantic_problems(env: str, error: ValidationError) -> list[str]:
    problems = []
    for err in error.errors():
        field = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"{env}: unknown field {field!r}; see `rentaliq envs --json` for the fields a spec has")
        else:
            problems.append(f"{env}: {field}={err.get('input')!r} is invalid; allowed: {err['msg'].lower()}")
    return problems


def check_env_name(name: str) -> EnvName:
    try:
        return EnvName(name.lower())
    except ValueError:
        raise SpecError([f"unknown environment {name!r}; allowed: {', '.join(ENV_NAMES)}"]) from None


def build_spec(name: str, overrides: dict[str, Any] | None = None) -> EnvironmentSpec:
    """The built-in spec for ``name`` with ``overrides`` applied; raises SpecError listing every problem."""
    env = check_env_name(name)
    data = _merge(_BUILT_IN[env.value], overrides or {})
    if data.get("name", env.value) != env.value:
        raise SpecError([f"{env.value}: name={data['name']!r} is invalid; allowed: {env.value!r} (the file's environment)"])
    try:
        spec = EnvironmentSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(_pydantic_problems(env.value, error)) from None
    problems = _check(spec)
    if problems:
        raise SpecError(problems)
    return spec


def config_dir() -> Path:
    """Where override files live: $RENTALIQ_CONFIG_DIR, else ./config."""
    return Path(os.environ.get("RENTALIQ_CONFIG_DIR", "config"))


def load_overrides(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or config_dir()) / f"{name}.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SpecError([f"{name}: {path}: not valid TOML ({error})"]) from None


def load_spec(name: str, directory: Path | None = None) -> EnvironmentSpec:
    """The spec as deployed: built-in values plus ``{config_dir}/{env}.toml`` if present."""
    env = check_env_name(name)
    return build_spec(env.value, load_overrides(env.value, directory))


def load_specs(names: list[str] | None = None, directory: Path | None = None) -> list[EnvironmentSpec]:
    """Several specs, validating all of them before failing so one run shows every problem."""
    specs, problems = [], []
    for name in names or list(ENV_NAMES):
        try:
            specs.append(load_spec(name, directory))
        except SpecError as error:
            problems.extend(error.problems)
    if problems:
        raise SpecError(problems)
    return specs
