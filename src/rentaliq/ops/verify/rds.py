"""RDS area: the database instance's every configured value, its security group and its parameter group.

Reads the instance once and hands the values other areas compare against on as an :class:`Instance`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rentaliq import naming
from rentaliq.contract import BACKUP_TAG, DB_PARAMETERS, RDS_CA_IDENTIFIER
from rentaliq.ops.verify.checks import RDS
from rentaliq.ops.verify.ec2 import Network
from rentaliq.ops.verify.reader import Audit

ENGINE = "postgres"  # ARCHITECTURE.md: RDS for PostgreSQL in every environment


@dataclass(frozen=True)
class Instance:
    """What the other areas compare with the live instance: its endpoint and its monitoring role."""

    endpoint: Mapping[str, Any]  # describe_db_instances' Endpoint (Address, Port); empty while it has none
    monitoring_role_arn: str | None


def check(audit: Audit, network: Network) -> Instance | None:
    """Every instance check; the instance as read, or None if it could not be read or is missing."""
    db, env, add = audit.db, audit.env, audit.record.add
    db_id = naming.db_instance_id(env)
    found = audit.read.call(RDS, "instance exists", db_id, "rds", "describe_db_instances", DBInstanceIdentifier=db_id)["DBInstances"]
    if not add(RDS, "instance exists", db_id, found[0]["DBInstanceIdentifier"] if found else None):
        return None
    inst = found[0]
    add(RDS, "instance class", db.instance_class, inst.get("DBInstanceClass"))
    add(RDS, "allocated storage (GiB)", db.allocated_storage_gib, inst.get("AllocatedStorage"))
    add(RDS, "max allocated storage (GiB)", db.max_allocated_storage_gib, inst.get("MaxAllocatedStorage"))
    add(RDS, "storage type", db.storage_type, inst.get("StorageType"))
    add(RDS, "Multi-AZ", db.multi_az, inst.get("MultiAZ"))
    add(RDS, "backup retention (days)", db.backup_retention_days, inst.get("BackupRetentionPeriod"))
    add(RDS, "backup window (UTC)", db.backup_window, inst.get("PreferredBackupWindow"))
    maintenance = inst.get("PreferredMaintenanceWindow")
    add(
        RDS,
        "maintenance window (UTC)",
        db.maintenance_window,
        maintenance,
        ok=isinstance(maintenance, str) and maintenance.lower() == db.maintenance_window.lower(),
    )
    add(RDS, "engine", ENGINE, inst.get("Engine"))
    version = str(inst.get("EngineVersion", ""))
    add(
        RDS,
        "engine version",
        db.engine_version,
        version or None,
        ok=version == db.engine_version or version.startswith(db.engine_version + "."),
        detail="" if "." in db.engine_version else f"any {db.engine_version}.x",
    )
    add(RDS, "Performance Insights", db.performance_insights, bool(inst.get("PerformanceInsightsEnabled")))
    if db.performance_insights:
        add(RDS, "Performance Insights retention (days)", db.performance_insights_retention_days, inst.get("PerformanceInsightsRetentionPeriod"))
    add(RDS, "enhanced monitoring interval (s)", db.enhanced_monitoring_interval_s, inst.get("MonitoringInterval", 0))
    if db.enhanced_monitoring_interval_s:  # with monitoring off, a role ARN RDS still reports is harmless
        role_arn = inst.get("MonitoringRoleArn")
        add(RDS, "enhanced monitoring role", naming.rds_monitoring_role(), role_arn.rsplit("/", 1)[-1] if role_arn else None)
    add(RDS, "deletion protection", db.deletion_protection, inst.get("DeletionProtection"))
    add(RDS, "storage encrypted", True, inst.get("StorageEncrypted"))
    # The CA clients verify the server against (sslmode=verify-full): a different one breaks every client's trust.
    add(RDS, "CA certificate", RDS_CA_IDENTIFIER, inst.get("CACertificateIdentifier"))
    add(RDS, "publicly accessible", False, inst.get("PubliclyAccessible"))
    add(RDS, "copy tags to snapshots", True, inst.get("CopyTagsToSnapshot"))
    add(RDS, "auto minor version upgrade", db.auto_minor_version_upgrade, inst.get("AutoMinorVersionUpgrade"))
    add(RDS, "CloudWatch log exports", sorted(db.cloudwatch_log_exports), sorted(inst.get("EnabledCloudwatchLogsExports") or []))
    # RDS reports DbInstancePort 0 for instances outside a cluster; the endpoint's port is the listener then.
    port, source = inst.get("DbInstancePort"), "DbInstancePort"
    if not port:
        port, source = (inst.get("Endpoint") or {}).get("Port"), "Endpoint.Port"
    add(RDS, "port", db.port, port, detail=f"from {source}")
    add(RDS, "master username", db.master_username, inst.get("MasterUsername"))
    add(RDS, "database name", db.database_name, inst.get("DBName"))
    add(RDS, "subnet group", naming.subnet_group(env), (inst.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"))
    subnets = (inst.get("DBSubnetGroup") or {}).get("Subnets") or []
    azs = sorted({s["SubnetAvailabilityZone"]["Name"] for s in subnets if s.get("SubnetAvailabilityZone")})
    add(RDS, "subnet group AZs", "at least 2", len(azs), ok=len(azs) >= 2, detail=", ".join(azs))
    if audit.spec.network.existing is not None:
        add(RDS, "subnet group subnets", sorted(audit.spec.network.existing.db_subnet_ids), sorted(s["SubnetIdentifier"] for s in subnets))
    audit.record.tags(RDS, "instance", {**audit.spec.resource_tags(), **BACKUP_TAG}, inst.get("TagList"))
    with audit.read.section(RDS, "rds security groups"):
        _security_groups(audit, inst, network)
    with audit.read.section(RDS, "rds parameters"):
        _parameters(audit, inst)
    return Instance(MappingProxyType(dict(inst.get("Endpoint") or {})), inst.get("MonitoringRoleArn"))


def _security_groups(audit: Audit, inst: dict[str, Any], network: Network) -> None:
    name = naming.rds_security_group(audit.env)
    if name not in network.groups:
        return  # the group could not be read; its EC2 check says why
    group = network.groups[name]
    attached = sorted(g["VpcSecurityGroupId"] for g in inst.get("VpcSecurityGroups", []) if g.get("Status", "active") == "active")
    expected = [group["GroupId"]] if group else [name]
    audit.record.add(
        RDS, "security groups", expected, attached, ok=group is not None and attached == expected, detail=f"{name}" + ("" if group else " not found")
    )


def _parameters(audit: Audit, inst: dict[str, Any]) -> None:
    name = naming.parameter_group(audit.env)
    groups = [g["DBParameterGroupName"] for g in inst.get("DBParameterGroups", [])]
    if not audit.record.add(RDS, "parameter group", [name], groups):
        return
    params = audit.read.paginate(RDS, "parameters readable", name, "rds", "describe_db_parameters", "Parameters", DBParameterGroupName=name)
    values = {p["ParameterName"]: p.get("ParameterValue") for p in params}
    for param, wanted in DB_PARAMETERS.items():
        actual = values.get(param)
        if param == "shared_preload_libraries":
            loaded = [lib.strip() for lib in (actual or "").split(",") if lib.strip()]
            needed = [lib.strip() for lib in wanted.split(",")]
            audit.record.add(RDS, f"parameter {param}", f"includes {wanted}", actual, ok=all(lib in loaded for lib in needed))
        else:
            audit.record.add(RDS, f"parameter {param}", wanted, actual)
