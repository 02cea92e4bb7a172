"""What RDS shows of automated backups, from the real archive: LatestRestorableTime and RestoreWindow.

``describe-db-instances`` answers each local instance's ``LatestRestorableTime`` from its WAL archive (none
while retention is 0), and ``describe-db-instance-automated-backups`` its ``RestoreWindow`` (oldest base
backup to the latest archived transaction), in RDS's DBInstanceAutomatedBackup shape.
"""

from __future__ import annotations

import datetime
from typing import Any

from moto.rds import models as rds_models

from rentaliq.local import rds_postgres as bound
from rentaliq.local import rds_recovery as recovery
from rentaliq.local.postgres.archive import restore_window


def install() -> None:
    original_latest = rds_models.DBInstance.latest_restorable_time.fget

    def latest_restorable_time(self: Any) -> datetime.datetime | None:
        if not bound.is_bound(self):
            return original_latest(self)
        if not recovery.wants_backups(self):
            return None
        window = restore_window(recovery.archive_of(self))
        return window[1] if window else None

    rds_models.DBInstance.latest_restorable_time = property(latest_restorable_time)

    original_describe = rds_models.RDSBackend.describe_db_instance_automated_backups

    def describe_db_instance_automated_backups(self: Any, db_instance_identifier: str | None = None, **kwargs: Any) -> list[Any]:
        # moto's own entries, minus those of local instances (their snapshots are base backups, shown below)
        others = [
            b for b in original_describe(self, db_instance_identifier, **kwargs) if not all(getattr(s, "_rentaliq_dir", None) for s in b.automated_snapshots)
        ]
        wanted = str(db_instance_identifier).lower() if db_instance_identifier else None
        local = [
            _automated_backup(db)
            for db in list(self.databases.values())
            if bound.is_bound(db) and recovery.wants_backups(db) and (wanted is None or db.db_instance_identifier == wanted)
        ]
        return others + [b for b in local if b is not None]

    rds_models.RDSBackend.describe_db_instance_automated_backups = describe_db_instance_automated_backups


def _automated_backup(db: Any) -> dict[str, Any] | None:
    archive = recovery.archive_of(db)
    window = restore_window(archive)
    if window is None:
        return None
    view = {
        "DBInstanceArn": db.db_instance_arn,
        "DbiResourceId": db.dbi_resource_id,
        "Region": db.region,
        "DBInstanceIdentifier": db.db_instance_identifier,
        "RestoreWindow": {"EarliestTime": window[0], "LatestTime": window[1]},
        "AllocatedStorage": db.allocated_storage,
        "Status": "active",
        "Port": db.port,
        "AvailabilityZone": db.availability_zone,
        "InstanceCreateTime": db.created,
        "MasterUsername": db.master_username,
        "Engine": db.engine,
        "EngineVersion": db.engine_version,
        "LicenseModel": db.license_model,
        "Encrypted": bool(db.storage_encrypted),
        "StorageType": db.storage_type,
        "KmsKeyId": db.kms_key_id,
        "BackupRetentionPeriod": int(db.backup_retention_period),
        "DBInstanceAutomatedBackupsArn": f"arn:aws:rds:{db.region}:{db.account_id}:auto-backup:ab-{str(db.dbi_resource_id).lower()}",
        "BackupTarget": "region",
    }
    return {key: value for key, value in view.items() if value is not None}
