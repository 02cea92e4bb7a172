"""RDS parameter groups, subnet groups and DB instances, every property passed through to the RDS API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rentaliq.local.cfn.base import AlreadyExists, Named, as_bool, as_int, is_not_found, removed_tag_keys, tag_list


def _listed(describe, key: str, **kwargs) -> bool:
    """Whether an RDS describe call lists its resource (some answer not-found, some an empty list)."""
    try:
        return bool(describe(**kwargs)[key])
    except Exception as error:
        if is_not_found(error):
            return False
        raise


def _retag(ctx, arn: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Make an RDS resource's tags the template's (removing the keys it dropped)."""
    rds = ctx.client("rds")
    if removed := removed_tag_keys(old, new):
        rds.remove_tags_from_resource(ResourceName=arn, TagKeys=removed)
    if new.get("Tags") and new.get("Tags") != old.get("Tags"):
        rds.add_tags_to_resource(ResourceName=arn, Tags=tag_list(new))


class _RdsNamed(Named):
    """RDS names: lowercased (RDS stores them so), looked up with the type's describe call."""

    name_max_length, lowercase_name = 255, True
    # (describe call, the list it answers with, the parameter that takes the name)
    lookup: ClassVar[tuple[str, str, str]]

    def named_exists(self, name, ctx):
        call, listed, parameter = self.lookup
        return _listed(getattr(ctx.client("rds"), call), listed, **{parameter: name})


class DbParameterGroup(_RdsNamed):
    type_name = "AWS::RDS::DBParameterGroup"
    lookup = ("describe_db_parameter_groups", "DBParameterGroups", "DBParameterGroupName")

    def create(self, props, ctx):
        rds = ctx.client("rds")
        name = self.name(props, ctx)
        rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=props["Family"], Description=props["Description"], Tags=tag_list(props))
        self._set(name, props, ctx)
        return name

    @staticmethod
    def _set(name: str, props: dict[str, Any], ctx) -> None:
        params = [{"ParameterName": k, "ParameterValue": str(v), "ApplyMethod": "pending-reboot"} for k, v in props.get("Parameters", {}).items()]
        if params:
            ctx.client("rds").modify_db_parameter_group(DBParameterGroupName=name, Parameters=params)

    def update(self, physical_id, old, new, ctx):
        if any(old.get(k) != new.get(k) for k in self.replace_on_change):
            return super().update(physical_id, old, new, ctx)
        self._set(physical_id, new, ctx)
        _retag(ctx, f"arn:aws:rds:{ctx.region}:{ctx.account_id}:pg:{physical_id}", old, new)
        return physical_id

    def delete(self, physical_id, props, ctx):
        ctx.client("rds").delete_db_parameter_group(DBParameterGroupName=physical_id)


class DbSubnetGroup(_RdsNamed):
    type_name = "AWS::RDS::DBSubnetGroup"
    lookup = ("describe_db_subnet_groups", "DBSubnetGroups", "DBSubnetGroupName")

    def create(self, props, ctx):
        name = self.name(props, ctx)
        ctx.client("rds").create_db_subnet_group(
            DBSubnetGroupName=name, DBSubnetGroupDescription=props["DBSubnetGroupDescription"], SubnetIds=props["SubnetIds"], Tags=tag_list(props)
        )
        return name

    def update(self, physical_id, old, new, ctx):
        if old.get("DBSubnetGroupName") != new.get("DBSubnetGroupName"):
            return super().update(physical_id, old, new, ctx)
        ctx.client("rds").modify_db_subnet_group(
            DBSubnetGroupName=physical_id, DBSubnetGroupDescription=new["DBSubnetGroupDescription"], SubnetIds=new["SubnetIds"]
        )
        _retag(ctx, f"arn:aws:rds:{ctx.region}:{ctx.account_id}:subgrp:{physical_id}", old, new)
        return physical_id

    def delete(self, physical_id, props, ctx):
        ctx.client("rds").delete_db_subnet_group(DBSubnetGroupName=physical_id)


# Template property -> converter, for create and for in-place modification. The RDS API parameter has the
# property's name, except where _API_NAMES says otherwise.
_INSTANCE_PROPS: dict[str, Callable[[Any], Any]] = {
    "DBInstanceClass": str,
    "AllocatedStorage": as_int,
    "MaxAllocatedStorage": as_int,
    "StorageType": str,
    "MultiAZ": as_bool,
    "BackupRetentionPeriod": as_int,
    "PreferredBackupWindow": str,
    "PreferredMaintenanceWindow": str,
    "AutoMinorVersionUpgrade": as_bool,
    "EnablePerformanceInsights": as_bool,
    "PerformanceInsightsRetentionPeriod": as_int,
    "MonitoringInterval": as_int,
    "MonitoringRoleArn": str,
    "DeletionProtection": as_bool,
    "CopyTagsToSnapshot": as_bool,
    "PubliclyAccessible": as_bool,
    "DBParameterGroupName": str,
    "VPCSecurityGroups": list,
    "EngineVersion": str,
    "MasterUserPassword": str,
    "CACertificateIdentifier": str,
}
_CREATE_ONLY: dict[str, Callable[[Any], Any]] = {
    "DBInstanceIdentifier": str,
    "Engine": str,
    "MasterUsername": str,
    "DBName": str,
    "DBSubnetGroupName": str,
    "StorageEncrypted": as_bool,
    "KmsKeyId": str,  # create-only: a different key replaces the instance, as on AWS
    "Port": as_int,
    "EnableCloudwatchLogsExports": list,
}
_API_NAMES = {"VPCSecurityGroups": "VpcSecurityGroupIds"}
# What RestoreDBInstanceFromDBSnapshot itself takes; the rest of a restored instance's properties are modified after.
_RESTORE_PROPS = frozenset(
    {
        "DBInstanceClass",
        "Port",
        "MultiAZ",
        "PubliclyAccessible",
        "AutoMinorVersionUpgrade",
        "DBSubnetGroupName",
        "StorageType",
        "VPCSecurityGroups",
        "DBParameterGroupName",
        "DeletionProtection",
        "CopyTagsToSnapshot",
        "EnableCloudwatchLogsExports",
    }
)


def _api_kwargs(props: dict[str, Any], table: dict[str, Callable[[Any], Any]], keep: Callable[[str], bool] = lambda key: True) -> dict[str, Any]:
    """The RDS API parameters for the properties of ``table`` that ``props`` sets (and ``keep`` keeps), converted."""
    return {_API_NAMES.get(key, key): convert(props[key]) for key, convert in table.items() if key in props and keep(key)}


_IGNORED = {"ApplyImmediately"}  # how the change is applied, not state; the local cloud applies at once


class DbInstance(_RdsNamed):
    type_name = "AWS::RDS::DBInstance"
    name_max_length = 63
    lookup = ("describe_db_instances", "DBInstances", "DBInstanceIdentifier")

    def check_absent(self, props, ctx):
        """Only asks RDS: ``locate``'s clean-up of an orphaned server is for after a crash, not before a create."""
        name = self.name(props, ctx)
        if self.named_exists(name, ctx):
            raise AlreadyExists(name)

    def locate(self, props, ctx):
        """The instance, if RDS has it; and in any case no PostgreSQL server left without an instance."""
        name = self.name(props, ctx)
        if self.named_exists(name, ctx):
            return [name]
        from rentaliq.local import rds_postgres

        try:
            rds_postgres.engine().delete(name)  # a server whose instance a crash lost
        except Exception:  # noqa: BLE001 - the engine is not running in this process (tests of providers)
            pass
        return []

    def create(self, props, ctx):
        unknown = set(props) - set(_INSTANCE_PROPS) - set(_CREATE_ONLY) - _IGNORED - {"Tags", "DBSnapshotIdentifier"}
        if unknown:
            raise ValueError(f"AWS::RDS::DBInstance properties not supported by the local cloud: {', '.join(sorted(unknown))}")
        if props.get("DBSnapshotIdentifier"):
            return self._restore(props, ctx)
        kwargs = _api_kwargs(props, {**_INSTANCE_PROPS, **_CREATE_ONLY})
        kwargs["DBInstanceIdentifier"] = self.name(props, ctx)
        kwargs["Tags"] = tag_list(props)
        return ctx.client("rds").create_db_instance(**kwargs)["DBInstance"]["DBInstanceIdentifier"]

    def _restore(self, props, ctx) -> str:
        """DBSnapshotIdentifier set: CloudFormation restores the instance from the snapshot
        (RestoreDBInstanceFromDBSnapshot with what that call takes), then applies the rest with ModifyDBInstance."""
        known = {**_INSTANCE_PROPS, **_CREATE_ONLY}
        at_restore = _api_kwargs(props, known, lambda key: key in _RESTORE_PROPS)
        name = self.name(props, ctx)
        rds = ctx.client("rds")
        rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=name, DBSnapshotIdentifier=props["DBSnapshotIdentifier"], Tags=tag_list(props), **at_restore
        )
        afterwards = _api_kwargs(props, _INSTANCE_PROPS, lambda key: key not in _RESTORE_PROPS)
        if afterwards:
            rds.modify_db_instance(DBInstanceIdentifier=name, ApplyImmediately=True, **afterwards)
        return name

    def update(self, physical_id, old, new, ctx):
        if any(old.get(k) != new.get(k) for k in self.replace_on_change):
            return super().update(physical_id, old, new, ctx)
        rds = ctx.client("rds")
        changes = _api_kwargs(new, _INSTANCE_PROPS, lambda key: new.get(key) != old.get(key))
        if old.get("EnableCloudwatchLogsExports") != new.get("EnableCloudwatchLogsExports"):
            before, after = set(old.get("EnableCloudwatchLogsExports", [])), set(new.get("EnableCloudwatchLogsExports", []))
            changes["CloudwatchLogsExportConfiguration"] = {"EnableLogTypes": sorted(after - before), "DisableLogTypes": sorted(before - after)}
        if changes:
            rds.modify_db_instance(DBInstanceIdentifier=physical_id, ApplyImmediately=True, **changes)
        if new.get("Tags") != old.get("Tags"):
            arn = rds.describe_db_instances(DBInstanceIdentifier=physical_id)["DBInstances"][0]["DBInstanceArn"]
            _retag(ctx, arn, old, new)
        return physical_id

    def delete(self, physical_id, props, ctx, *, final_snapshot: str | None = None):
        kwargs: dict[str, Any] = {"DBInstanceIdentifier": physical_id, "DeleteAutomatedBackups": True}
        if final_snapshot:
            kwargs["FinalDBSnapshotIdentifier"] = final_snapshot
        else:
            kwargs["SkipFinalSnapshot"] = True
        ctx.client("rds").delete_db_instance(**kwargs)

    def attributes(self, physical_id, props, ctx):
        db = ctx.client("rds").describe_db_instances(DBInstanceIdentifier=physical_id)["DBInstances"][0]
        return {
            "Endpoint.Address": db["Endpoint"]["Address"],
            "Endpoint.Port": str(db["Endpoint"]["Port"]),
            "DBInstanceArn": db["DBInstanceArn"],
            "DbiResourceId": db.get("DbiResourceId", ""),
        }


PROVIDERS = [DbParameterGroup, DbSubnetGroup, DbInstance]
