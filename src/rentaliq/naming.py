"""Every resource name and tag, produced in one place from the spec's naming convention.

Pattern: ``{project}-{environment}-{resource-type}[-{suffix}]`` and secret paths ``rentaliq/{env}/{area}/{name}``.
Nothing else in the code base spells a resource name; a rename here is a rename everywhere.
"""

from __future__ import annotations

PROJECT = "rentaliq"
PROJECT_TAG = "RentalIQ"
APPLICATION = "rentaliq"

# Logical secret names, as services ask for them (``db/credentials``), in the order the spec lists them.
SECRET_NAMES = ("db/credentials", "db/connection-string", "api/keys", "s3/config")


def stack_name(env: str) -> str:
    return f"{PROJECT}-{env}"


def resource_name(env: str, resource_type: str, suffix: str | None = None) -> str:
    parts = [PROJECT, env, resource_type] + ([suffix] if suffix else [])
    return "-".join(parts)


def db_instance_id(env: str) -> str:
    return resource_name(env, "db")


def files_bucket(env: str) -> str:
    return resource_name(env, "files")


def access_logs_bucket() -> str:
    """Shared by name across the account; only PROD creates it (spec: ``rentaliq-access-logs``)."""
    return f"{PROJECT}-access-logs"


def rds_security_group(env: str) -> str:
    return resource_name(env, "rds", "sg")


def app_security_group(env: str) -> str:
    return resource_name(env, "app", "sg")


def read_secrets_policy(env: str) -> str:
    return resource_name(env, "read-secrets", "policy")


def rds_monitoring_role() -> str:
    return f"{PROJECT}-rds-monitoring-role"


def vpc(env: str) -> str:
    return resource_name(env, "vpc")


def parameter_group(env: str) -> str:
    return resource_name(env, "db", "params")


def subnet_group(env: str) -> str:
    return resource_name(env, "db", "subnets")


def final_snapshot(env: str) -> str:
    """Stable on purpose: a time-stamped name would show a diff on every synth."""
    return resource_name(env, "db", "final-snapshot")


def manual_snapshot(env: str, date_stamp: str) -> str:
    """``rentaliq-prod-manual-20251108``, as the spec's runbook names manual snapshots."""
    return resource_name(env, "manual", date_stamp)


def drill_instance(env: str, stamp: str) -> str:
    """The DR drill's scratch restore, ``rentaliq-prod-drill-20251108103000``; deleted when the drill ends."""
    return resource_name(env, "drill", stamp)


def alarm(env: str, what: str) -> str:
    return resource_name(env, "db", what)


def secret_path(env: str, logical_name: str) -> str:
    if logical_name not in SECRET_NAMES:
        allowed = ", ".join(SECRET_NAMES)
        raise ValueError(f"unknown secret {logical_name!r}; allowed: {allowed}")
    return f"{PROJECT}/{env}/{logical_name}"


def secrets_prefix(env: str) -> str:
    return f"{PROJECT}/{env}/"


def restored_db_instance(env: str, minute_stamp: str) -> str:
    """``rentaliq-prod-db-restored-202511081430``: a restore always makes a new instance, named by when it was asked for."""
    return resource_name(env, "db", f"restored-{minute_stamp}")


def db_replica(env: str, number: int = 1) -> str:
    """``rentaliq-prod-db-replica``, then ``-replica-2``, ``-replica-3`` ... for further read replicas."""
    return resource_name(env, "db", "replica" if number == 1 else f"replica-{number}")


def alerts_topic(env: str) -> str:
    """The SNS topic every alarm of the environment notifies: ``rentaliq-lab-alerts``."""
    return resource_name(env, "alerts")


def dashboard(env: str) -> str:
    """The environment's CloudWatch dashboard: ``rentaliq-lab`` (the stack's name; one dashboard per environment)."""
    return stack_name(env)


def db_stop_schedule(env: str) -> str:
    """The EventBridge Scheduler schedule that stops the database off-hours: ``rentaliq-lab-db-stop``."""
    return resource_name(env, "db", "stop")


def db_start_schedule(env: str) -> str:
    """The schedule that starts it again: ``rentaliq-lab-db-start``."""
    return resource_name(env, "db", "start")


def scheduler_role(env: str) -> str:
    """The role EventBridge Scheduler assumes to stop and start that one database: ``rentaliq-lab-scheduler-role``."""
    return resource_name(env, "scheduler", "role")


def budget(env: str) -> str:
    """The environment's AWS Budget (monthly cost, the spec's upper bound): ``rentaliq-lab-monthly``."""
    return resource_name(env, "monthly")


def nat_security_group(env: str) -> str:
    """The NAT instances' security group (``network.nat = "instance"``): all traffic in from the VPC only."""
    return resource_name(env, "nat", "sg")


def nat_instance(env: str, number: int) -> str:
    """``rentaliq-prod-nat-1``, ``rentaliq-prod-nat-2``: the Name tag of each NAT instance, one per zone in order."""
    return resource_name(env, "nat", str(number))


def nat_health_alarm(env: str, number: int) -> str:
    """``rentaliq-prod-nat-1-health``: the StatusCheckFailed alarm of NAT instance ``number``."""
    return resource_name(env, "nat", f"{number}-health")


def endpoints_security_group(env: str) -> str:
    """The interface VPC endpoints' security group: HTTPS in from the app security group only."""
    return resource_name(env, "endpoints", "sg")


def app_instance_profile(env: str) -> str:
    """EC2 can only take a role through an instance profile; one per app role, same environment."""
    return resource_name(env, "app", "instance-profile")


def files_access_policy(env: str) -> str:
    return resource_name(env, "files-access", "policy")


def db_wake_stop_schedule(env: str) -> str:
    """The one-time schedule ``rentaliq wake --for`` leaves to stop the database when the hold ends off-hours:
    ``rentaliq-lab-db-wake-stop`` (not in the stack; destroy deletes it)."""
    return resource_name(env, "db", "wake-stop")


def trail(env: str) -> str:
    """The environment's CloudTrail trail (``[audit] cloudtrail``): ``rentaliq-prod-trail``."""
    return resource_name(env, "trail")


def trail_logs_bucket(env: str) -> str:
    """The bucket the trail (and AWS Config, under ``config/``) delivers to: ``rentaliq-prod-trail-logs``."""
    return resource_name(env, "trail", "logs")


def audit_key_alias(env: str) -> str:
    """The KMS key the trail's log files and Config's deliveries are encrypted with: ``alias/rentaliq-prod-audit``."""
    return f"alias/{resource_name(env, 'audit')}"


def config_recorder(env: str) -> str:
    """The AWS Config configuration recorder (``[audit] config``): ``rentaliq-prod-config-recorder``."""
    return resource_name(env, "config", "recorder")


def config_delivery_channel(env: str) -> str:
    return resource_name(env, "config", "channel")


def config_role(env: str) -> str:
    """The role AWS Config records with: ``rentaliq-prod-config-role``."""
    return resource_name(env, "config", "role")


def config_rule(env: str, identifier: str) -> str:
    """One managed Config rule: ``rentaliq-prod-rds-storage-encrypted`` for ``RDS_STORAGE_ENCRYPTED``."""
    return resource_name(env, identifier.lower().replace("_", "-"))


def env_key_alias(env: str) -> str:
    """The environment's customer-managed KMS key (``[encryption] customer_managed_key``)."""
    return f"alias/{PROJECT}-{env}"


def app_role(env: str) -> str:
    """The role the environment's applications run as (ECS tasks, Lambda, EC2; issue 12 section 1): infra/app_role.py
    creates it, the environment key's policy names it."""
    return resource_name(env, "app", "role")
