"""The rules a spec must follow beyond each field's type and bounds, and the comparison with what is deployed.

Each rule is a small function that declares the fields it reads and yields ``(field, value, allowed)``
for every problem it finds; :func:`check` turns them into the one-line problems of a SpecError, in the
order the rules are written here. Declaring the fields lets a rule run even when other fields of the spec
failed validation (every problem at once), and be skipped when one of its own fields did.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rentaliq.spec import aws, windows
from rentaliq.spec.deployed import DeployedValues, Finding, compare_with_deployed
from rentaliq.spec.models import (
    INSTANCE_CLASSES,
    LOG_EXPORTS,
    MONITORING_INTERVALS,
    PERFORMANCE_INSIGHTS_RETENTION,
    SECRET_RECOVERY_WINDOWS,
    WEEKDAYS,
    EnvironmentSpec,
)
from rentaliq.spec.partial import Loc, UnreadableField
from rentaliq.urls import is_loopback, without_credentials

__all__ = ["RULES", "DeployedValues", "Finding", "Rule", "check", "compare_with_deployed"]

Problem = tuple[str, Any, str]  # (dotted field, the bad value, what is allowed)
Check = Callable[[EnvironmentSpec], Iterator[Problem]]


@dataclass(frozen=True)
class Rule:
    fields: tuple[str, ...]
    check: Check

    def reads(self, loc: Loc) -> bool:
        """Whether a problem at ``loc`` concerns a field this rule reads (or the section holding it)."""
        path = tuple(str(part) for part in loc)
        return any(path[: len(f)] == f[: len(path)] for f in (tuple(field.split(".")) for field in self.fields))


RULES: list[Rule] = []


def rule(*fields: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        RULES.append(Rule(fields, check))
        return check

    return register


def check(spec: EnvironmentSpec, env: str, skip: Callable[[Rule], bool] = lambda _: False) -> list[str]:
    """Every problem the rules find in ``spec``, one line each; rules for which ``skip`` is true do not run."""
    problems: list[str] = []
    for r in RULES:
        if skip(r):
            continue
        try:
            found = list(r.check(spec))
        except UnreadableField:  # a field it reads failed validation: that problem is already reported
            continue
        problems.extend(f"{env}: {field}={value!r} is invalid; allowed: {allowed}" for field, value, allowed in found)
    return problems


# Instance types a NAT instance may use: small burstable ones, ARM or x86 (NAT needs network, not CPU). A closed list,
# so a typo ("t4g.weird") fails here, not at RunInstances minutes into a deploy; each has a price in cost/prices.toml.
NAT_INSTANCE_TYPES = ("t4g.nano", "t4g.micro", "t4g.small", "t3.nano", "t3.micro", "t3a.nano")
NAT_INSTANCE_FAMILIES = tuple(dict.fromkeys(t.split(".")[0] for t in NAT_INSTANCE_TYPES))
_PROD_ONLY = "true in prod (set allow_unsafe_prod = true to override deliberately)"
_IDENTIFIER = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,62}")


@rule("database.instance_class")
def _instance_class(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.database.instance_class not in INSTANCE_CLASSES:
        allowed = "an RDS PostgreSQL class such as db.t3.micro, db.t3.small, db.t3.medium, db.m6g.large"
        yield "database.instance_class", spec.database.instance_class, allowed


@rule("database.allocated_storage_gib", "database.max_allocated_storage_gib")
def _storage_within_max(spec: EnvironmentSpec) -> Iterator[Problem]:
    db = spec.database
    if db.allocated_storage_gib > db.max_allocated_storage_gib:
        yield "database.allocated_storage_gib", db.allocated_storage_gib, f"at most database.max_allocated_storage_gib ({db.max_allocated_storage_gib})"


@rule("database.backup_retention_days")
def _backup_retention(spec: EnvironmentSpec) -> Iterator[Problem]:
    if not 0 <= spec.database.backup_retention_days <= 35:
        yield "database.backup_retention_days", spec.database.backup_retention_days, "0 to 35 days"


@rule("database.backup_window")
def _backup_window(spec: EnvironmentSpec) -> Iterator[Problem]:
    backup = windows.daily_minutes(spec.database.backup_window)
    if backup is None or windows.span(*backup, windows.DAY) < 30:
        yield "database.backup_window", spec.database.backup_window, "hh24:mi-hh24:mi in UTC, at least 30 minutes, e.g. 03:00-04:00"


@rule("database.maintenance_window")
def _maintenance_window(spec: EnvironmentSpec) -> Iterator[Problem]:
    maintenance = windows.weekly_minutes(spec.database.maintenance_window)
    if maintenance is None or windows.span(*maintenance, windows.WEEK) < 30:
        allowed = "ddd:hh24:mi-ddd:hh24:mi in UTC, at least 30 minutes, e.g. sun:04:00-sun:05:00"
        yield "database.maintenance_window", spec.database.maintenance_window, allowed


@rule("database.backup_window", "database.maintenance_window")
def _windows_apart(spec: EnvironmentSpec) -> Iterator[Problem]:
    db = spec.database
    backup, maintenance = windows.daily_minutes(db.backup_window), windows.weekly_minutes(db.maintenance_window)
    if backup and maintenance and windows.daily_overlaps_weekly(backup, maintenance):
        yield "database.maintenance_window", db.maintenance_window, f"a window that does not overlap database.backup_window ({db.backup_window})"


@rule("database.enhanced_monitoring_interval_s")
def _monitoring_interval(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.database.enhanced_monitoring_interval_s not in MONITORING_INTERVALS:
        yield "database.enhanced_monitoring_interval_s", spec.database.enhanced_monitoring_interval_s, ", ".join(map(str, MONITORING_INTERVALS))


@rule("database.performance_insights_retention_days")
def _insights_retention(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.database.performance_insights_retention_days not in PERFORMANCE_INSIGHTS_RETENTION:
        allowed = "7, a multiple of 31 up to 713, or 731"
        yield "database.performance_insights_retention_days", spec.database.performance_insights_retention_days, allowed


@rule("database.cloudwatch_log_exports")
def _log_exports(spec: EnvironmentSpec) -> Iterator[Problem]:
    for export in spec.database.cloudwatch_log_exports:
        if export not in LOG_EXPORTS:
            yield "database.cloudwatch_log_exports", export, ", ".join(LOG_EXPORTS)


@rule("database.engine_version")
def _engine_version(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.database.engine_version.split(".")[0] != "15":
        yield "database.engine_version", spec.database.engine_version, "PostgreSQL 15 (15 or 15.x)"


@rule("database.master_username")
def _master_username(spec: EnvironmentSpec) -> Iterator[Problem]:
    name = spec.database.master_username
    if not _IDENTIFIER.fullmatch(name) or name in ("postgres", "rdsadmin"):
        yield "database.master_username", name, "a letter then letters, digits or _ (max 63), not a reserved name"


@rule("database.database_name")
def _database_name(spec: EnvironmentSpec) -> Iterator[Problem]:
    if not _IDENTIFIER.fullmatch(spec.database.database_name):
        yield "database.database_name", spec.database.database_name, "a letter then letters, digits or _ (max 63)"


@rule("database.allowed_cidrs")
def _allowed_cidrs(spec: EnvironmentSpec) -> Iterator[Problem]:
    for index, cidr in enumerate(spec.database.allowed_cidrs):
        allowed = aws.private_cidr_problem(cidr)
        if allowed:
            yield f"database.allowed_cidrs[{index}]", cidr, allowed


@rule("secrets.recovery_window_days")
def _secret_recovery(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.secrets.recovery_window_days not in SECRET_RECOVERY_WINDOWS:
        yield "secrets.recovery_window_days", spec.secrets.recovery_window_days, "0 (delete at once) or 7 to 30 days"


@rule("storage.lifecycle.glacier_after_days", "storage.lifecycle.infrequent_access_after_days")
def _glacier_after_ia(spec: EnvironmentSpec) -> Iterator[Problem]:
    life = spec.storage.lifecycle
    if life.glacier_after_days <= life.infrequent_access_after_days:
        allowed = f"more than storage.lifecycle.infrequent_access_after_days ({life.infrequent_access_after_days})"
        yield "storage.lifecycle.glacier_after_days", life.glacier_after_days, allowed


@rule("storage.lifecycle.expire_current_after_days", "storage.lifecycle.glacier_after_days")
def _expire_after_glacier(spec: EnvironmentSpec) -> Iterator[Problem]:
    life = spec.storage.lifecycle
    if life.expire_current_after_days is not None and life.expire_current_after_days <= life.glacier_after_days:
        allowed = f"more than storage.lifecycle.glacier_after_days ({life.glacier_after_days})"
        yield "storage.lifecycle.expire_current_after_days", life.expire_current_after_days, allowed


@rule("audit.trail_logs_ia_after_days", "audit.trail_logs_glacier_after_days", "audit.trail_logs_expire_after_days")
def _trail_logs_in_order(spec: EnvironmentSpec) -> Iterator[Problem]:
    audit = spec.audit
    if audit.trail_logs_glacier_after_days <= audit.trail_logs_ia_after_days:
        yield (
            "audit.trail_logs_glacier_after_days",
            audit.trail_logs_glacier_after_days,
            f"more than audit.trail_logs_ia_after_days ({audit.trail_logs_ia_after_days})",
        )
    if audit.trail_logs_expire_after_days <= audit.trail_logs_glacier_after_days:
        yield (
            "audit.trail_logs_expire_after_days",
            audit.trail_logs_expire_after_days,
            f"more than audit.trail_logs_glacier_after_days ({audit.trail_logs_glacier_after_days})",
        )


@rule("storage.versioning", "storage.lifecycle.expire_noncurrent_after_days")
def _noncurrent_with_versioning(spec: EnvironmentSpec) -> Iterator[Problem]:
    storage, days = spec.storage, spec.storage.lifecycle.expire_noncurrent_after_days
    if days is not None and not storage.versioning:
        yield "storage.lifecycle.expire_noncurrent_after_days", days, "unset when storage.versioning is false"
    if storage.versioning and days is None:
        yield "storage.lifecycle.expire_noncurrent_after_days", None, "a number of days when storage.versioning is true"


@rule("storage.intelligent_tiering", "storage.lifecycle.intelligent_tiering_after_days")
def _tiering_set_with_flag(spec: EnvironmentSpec) -> Iterator[Problem]:
    days = spec.storage.lifecycle.intelligent_tiering_after_days
    if spec.storage.intelligent_tiering != (days is not None):
        yield "storage.lifecycle.intelligent_tiering_after_days", days, "set exactly when storage.intelligent_tiering is true"


@rule("storage.lifecycle.intelligent_tiering_after_days", "storage.lifecycle.infrequent_access_after_days", "storage.lifecycle.glacier_after_days")
def _tiering_between_transitions(spec: EnvironmentSpec) -> Iterator[Problem]:
    life = spec.storage.lifecycle
    days = life.intelligent_tiering_after_days
    if days is not None and not life.infrequent_access_after_days < days < life.glacier_after_days:
        yield "storage.lifecycle.intelligent_tiering_after_days", days, "between the Standard-IA and Glacier transitions (S3's storage-class waterfall)"


@rule("storage.archive_access_after_days", "storage.deep_archive_access_after_days")
def _deep_archive_after_archive(spec: EnvironmentSpec) -> Iterator[Problem]:
    storage = spec.storage
    if storage.deep_archive_access_after_days <= storage.archive_access_after_days:
        allowed = f"more than storage.archive_access_after_days ({storage.archive_access_after_days})"
        yield "storage.deep_archive_access_after_days", storage.deep_archive_access_after_days, allowed


@rule("network.vpc_cidr")
def _vpc_cidr(spec: EnvironmentSpec) -> Iterator[Problem]:
    cidr = spec.network.vpc_cidr
    try:
        vpc_net = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        yield "network.vpc_cidr", cidr, "a private IPv4 range between /16 and /24, e.g. 10.10.0.0/16"
        return
    if not 16 <= vpc_net.prefixlen <= 24 or not vpc_net.is_private:
        yield "network.vpc_cidr", cidr, "a private IPv4 range between /16 and /24"


@rule("network.existing", "network.nat", "network.nat_count", "network.availability_zones")
def _nat_per_zone(spec: EnvironmentSpec) -> Iterator[Problem]:
    net = spec.network
    if net.nat == "none" and net.nat_count is not None:
        yield "network.nat_count", net.nat_count, 'unset with network.nat = "none" (there is no NAT to count)'
    elif net.existing is None and net.nats > net.availability_zones:
        yield "network.nat_count", net.nat_count, f"1 to network.availability_zones ({net.availability_zones})"


@rule("network.nat_instance_type")
def _nat_instance_type(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.network.nat_instance_type not in NAT_INSTANCE_TYPES:
        yield "network.nat_instance_type", spec.network.nat_instance_type, f"one of {', '.join(NAT_INSTANCE_TYPES)}"


@rule("schedule.days")
def _schedule_days(spec: EnvironmentSpec) -> Iterator[Problem]:
    days = spec.schedule.days
    for day in days:
        if day not in WEEKDAYS:
            yield "schedule.days", day, f"days from {' '.join(WEEKDAYS)}"
    if len(set(days)) != len(days):
        yield "schedule.days", list(days), "each day once"


@rule("schedule.timezone")
def _schedule_timezone(spec: EnvironmentSpec) -> Iterator[Problem]:
    if not _is_time_zone(spec.schedule.timezone):
        yield "schedule.timezone", spec.schedule.timezone, "an IANA time zone such as America/New_York, Europe/Berlin or UTC"


@rule("schedule.start_at", "schedule.stop_at")
def _schedule_start_before_stop(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.schedule.start_at >= spec.schedule.stop_at:  # HH:MM strings order as times do
        yield "schedule.start_at", spec.schedule.start_at, f"earlier in the day than schedule.stop_at ({spec.schedule.stop_at})"


@rule("name", "allow_unsafe_prod", "schedule.enabled")
def _prod_runs_around_the_clock(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.is_prod and spec.schedule.enabled and not spec.allow_unsafe_prod:
        yield "schedule.enabled", True, "false in prod: a stopped production database is an outage (set allow_unsafe_prod = true to override deliberately)"


@rule("name", "allow_unsafe_prod", "schedule.enabled", "schedule.stop_at", "schedule.start_at", "schedule.days", "schedule.timezone", "database.backup_window")
def _backups_while_running(spec: EnvironmentSpec) -> Iterator[Problem]:
    """RDS takes no automated backup of a stopped instance: a backup window inside the off-hours would mean none ever."""
    from rentaliq.spec.backup_hours import backup_window_problem

    if spec.is_prod and not spec.allow_unsafe_prod:
        return  # PROD's schedule itself is refused: one problem, not two

    backup = windows.daily_minutes(spec.database.backup_window)
    if not spec.schedule.enabled or backup is None or windows.span(*backup, windows.DAY) < 30 or not _is_time_zone(spec.schedule.timezone):
        return  # a malformed window or time zone has its own problem
    if any(day not in WEEKDAYS for day in spec.schedule.days) or spec.schedule.start_at >= spec.schedule.stop_at:
        return  # reported by their own rules
    allowed = backup_window_problem(spec.schedule, spec.database.backup_window)
    if allowed:
        yield "database.backup_window", spec.database.backup_window, allowed


def _is_time_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@rule("monitoring.cpu_period_s", "monitoring.period_s")
def _alarm_periods(spec: EnvironmentSpec) -> Iterator[Problem]:
    for field in ("cpu_period_s", "period_s"):
        period = getattr(spec.monitoring, field)
        if period not in (10, 30) and period % 60:
            yield f"monitoring.{field}", period, "10, 30 or a multiple of 60 seconds (CloudWatch's alarm periods)"


# An address SNS accepts: no spaces, quotes, angle brackets or control characters, one @, a dotted domain.
_EMAIL = re.compile(r"[^@\s\"<>(),;:\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


@rule("alerts.emails")
def _alert_emails(spec: EnvironmentSpec) -> Iterator[Problem]:
    for email in spec.alerts.emails:
        if not _EMAIL.fullmatch(email):
            yield "alerts.emails", email, "an email address such as oncall@example.com"


@rule("alerts.https_endpoints", "alerts.chat_webhook_url")
def _alert_urls(spec: EnvironmentSpec) -> Iterator[Problem]:
    urls = [("alerts.https_endpoints", url) for url in spec.alerts.https_endpoints]
    if spec.alerts.chat_webhook_url is not None:
        urls.append(("alerts.chat_webhook_url", spec.alerts.chat_webhook_url))
    for field, url in urls:
        allowed = _alert_url_problem(url)
        if allowed:
            yield field, without_credentials(url), allowed


@rule("alerts.emails", "alerts.https_endpoints", "alerts.chat_webhook_url")
def _alert_subscriptions_once(spec: EnvironmentSpec) -> Iterator[Problem]:
    seen: set[str] = set()
    for _protocol, endpoint in spec.alerts.subscriptions():
        if endpoint in seen:
            yield "alerts", without_credentials(endpoint), "each email address and URL once (it is one subscription)"
        seen.add(endpoint)


def _alert_url_problem(url: str) -> str | None:
    """What is wrong with a subscriber URL, or None. Credentials in it are refused: the spec is a reviewed file,
    and SNS lists a subscription's endpoint to anyone who may list subscriptions."""
    from urllib.parse import urlsplit

    https = "an https:// URL with a host (http:// only on a loopback address, for local testing)"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return https
    if not host or any(c.isspace() or ord(c) < 32 for c in url):
        return https
    if parts.username is not None or parts.password is not None:
        return "a URL without user:password@ (credentials do not belong in the spec; the endpoint checks a token in its path instead)"
    if parts.scheme == "https":
        return None
    return None if parts.scheme == "http" and is_loopback(host) else https


@rule("cost.monthly_usd_low", "cost.monthly_usd_high")
def _cost_range(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.cost.monthly_usd_low > spec.cost.monthly_usd_high:
        yield "cost.monthly_usd_low", spec.cost.monthly_usd_low, f"at most cost.monthly_usd_high ({spec.cost.monthly_usd_high})"


@rule("region")
def _region(spec: EnvironmentSpec) -> Iterator[Problem]:
    allowed = aws.region_problem(spec.region)
    if allowed:
        yield "region", spec.region, allowed


@rule("cost.budget", "region")
def _budget_region(spec: EnvironmentSpec) -> Iterator[Problem]:
    allowed = aws.budget_region_problem(spec.region) if spec.cost.budget else None
    if allowed:
        yield "cost.budget", True, allowed


@rule("tags.owner", "tags.managed_by", "tags.cost_center")
def _tag_values(spec: EnvironmentSpec) -> Iterator[Problem]:
    for field, value, required in (("owner", spec.tags.owner, True), ("managed_by", spec.tags.managed_by, True), ("cost_center", spec.tags.cost_center, False)):
        allowed = None if value is None else aws.tag_value_problem(value, required=required)
        if allowed:
            yield f"tags.{field}", value, allowed


@rule("name", "allow_unsafe_prod", "database.deletion_protection", "database.multi_az", "database.final_snapshot")
def _prod_is_safe(spec: EnvironmentSpec) -> Iterator[Problem]:
    if spec.is_prod and not spec.allow_unsafe_prod:
        db = spec.database
        for field, value in (("deletion_protection", db.deletion_protection), ("multi_az", db.multi_az), ("final_snapshot", db.final_snapshot)):
            if not value:
                yield f"database.{field}", False, _PROD_ONLY
