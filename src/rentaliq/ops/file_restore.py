"""`rentaliq files restore ENV --as-of T`: bring every object under a prefix of the env's files bucket back to T.

The spec's S3 runbook (list-object-versions, copy-object with a versionId) for a whole prefix at once, with
the plan of :mod:`rentaliq.ops.file_restore_plan`. History is kept: a restore or undelete *copies* the
version as of T over the key (a new current version, server-side, no bytes through this machine), a delete
adds a delete marker as any delete does; no version is ever removed. The copy asks for the encryption the
bucket's default-encryption rule names (SSE-S3 in every environment of the spec), the same header the
runtime SDK sends on every put, and is checked: the new current version must have the old one's size and,
where both checksums are of one kind, its checksum.

Only the S3 API is used (boto3 clients of a :class:`~rentaliq.deploy.target.Target`), so the same code runs
on the local cloud and on AWS. A bucket that is not versioned (LAB) has no history to restore from and is
refused, as is PROD without ``confirm_prod``. Keys are applied concurrently; one key's failure is reported
and does not stop the others (running again applies only what is still different).

Writes that land on a key between the plan and its copy are not lost: they stay in the key's history. A version
the lifecycle moved to Glacier cannot be copied before S3 restores it (``RestoreObject``); its key fails with
S3's ``InvalidObjectState`` and the others go on. The copy lands in the Standard class, like any new upload.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rentaliq import naming
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.file_restore_plan import FileRestoreError, KeyPlan, RestorePlan, parse_as_of, plan_restore
from rentaliq.runtime.checksums import comparable, stored_checksum
from rentaliq.runtime.errors import InvalidObjectKey
from rentaliq.runtime.keys import validate_prefix

__all__ = ["FileRestoreError", "KeyResult", "RestorePlan", "RestoreReport", "apply_plan", "parse_as_of", "restore_files", "sse_args"]

COPY_OBJECT_LIMIT = 5 * 1024**3  # CopyObject's single-request limit; above it a multipart copy
DEFAULT_WORKERS = 8


@dataclass(frozen=True)
class KeyResult:
    """What happened to one key: ``new_version_id`` is the copy or the delete marker written; ``error`` a one-line reason."""

    plan: KeyPlan
    new_version_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "new_version_id": self.new_version_id, "ok": self.ok, "error": self.error}


@dataclass
class RestoreReport:
    env: str
    plan: RestorePlan
    dry_run: bool
    results: list[KeyResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[KeyResult]:
        return [r for r in self.results if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        done = {r.plan.key: r for r in self.results}
        items = [done[i.key].to_dict() if i.key in done else i.to_dict() for i in self.plan.items]
        return {
            "env": self.env,
            "bucket": self.plan.bucket,
            "prefix": self.plan.prefix,
            "as_of": self.plan.as_of.isoformat(),
            "dry_run": self.dry_run,
            "counts": self.plan.counts(),
            "failed": len(self.failed),
            "seconds": round(self.seconds, 3),
            "items": items,
        }


def check_prefix(prefix: str) -> str:
    try:
        return validate_prefix(prefix)
    except InvalidObjectKey as error:
        raise FileRestoreError(f"--prefix {prefix!r} is invalid: {'; '.join(error.rules)}; allowed: a key prefix, or none for the whole bucket") from None


def check_allowed(spec: EnvironmentSpec, *, dry_run: bool, confirm_prod: bool) -> None:
    """Refusals that need no request: an environment whose spec has no versioning, PROD without confirmation.

    A dry run changes nothing, so it needs no confirmation, in PROD either.
    """
    env = spec.name.value
    if not spec.storage.versioning:
        raise FileRestoreError(
            f"refusing to restore files in {env}: bucket {naming.files_bucket(env)} is not versioned (its spec turns versioning off), "
            "so it keeps no earlier versions; files restore needs a versioned bucket (qa, prod)"
        )
    if spec.is_prod and not confirm_prod and not dry_run:
        raise FileRestoreError(f"refusing to restore files in {env}: pass --confirm-prod (or --dry-run to see the plan)")


def check_versioned(s3: Any, bucket: str) -> None:
    """The live bucket must have versioning Enabled: Suspended would overwrite the ``null`` version, losing history."""
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except s3.exceptions.NoSuchBucket:
        raise FileRestoreError(f"bucket {bucket} does not exist: is the environment deployed?") from None
    if status != "Enabled":
        raise FileRestoreError(f"refusing to restore files: bucket {bucket} has versioning {status or 'never enabled'}; files restore needs versioning Enabled")


def sse_args(s3: Any, bucket: str) -> dict[str, str]:
    """The encryption headers for a copy: those of the bucket's default-encryption rule (AES256 when it has none)."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except s3.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    default: dict[str, str] = next((r["ApplyServerSideEncryptionByDefault"] for r in rules if "ApplyServerSideEncryptionByDefault" in r), {})
    args = {"ServerSideEncryption": default.get("SSEAlgorithm", "AES256")}
    if default.get("KMSMasterKeyID"):
        args["SSEKMSKeyId"] = default["KMSMasterKeyID"]
    return args


def _copy_back(s3: Any, bucket: str, item: KeyPlan, sse: dict[str, str]) -> str:
    """Copy the version as of T over the key, server-side; check size and checksum; return the new version id."""
    if item.as_of is None:  # never: restore and undelete always have a version as of T (the plan's rule)
        raise ValueError(f"{item.key}: no version as of the target time to copy back")
    version = item.as_of.version_id
    source = s3.head_object(Bucket=bucket, Key=item.key, VersionId=version, ChecksumMode="ENABLED")
    size = int(source["ContentLength"])
    copy_source = {"Bucket": bucket, "Key": item.key, "VersionId": version}
    if size <= COPY_OBJECT_LIMIT:
        response = s3.copy_object(Bucket=bucket, Key=item.key, CopySource=copy_source, MetadataDirective="COPY", ChecksumAlgorithm="CRC32", **sse)
        new_version = response.get("VersionId")
    else:
        from boto3.s3.transfer import TransferConfig

        # A managed multipart copy; metadata and content type come from the source's HEAD (s3transfer copies them).
        s3.copy(copy_source, bucket, item.key, ExtraArgs={**sse, "ChecksumAlgorithm": "CRC32"}, Config=TransferConfig(multipart_chunksize=256 * 1024**2))
        new_version = None
    head = s3.head_object(Bucket=bucket, Key=item.key, ChecksumMode="ENABLED", **({"VersionId": new_version} if new_version else {}))
    if not head.get("ServerSideEncryption"):
        raise RuntimeError("S3 reported no server-side encryption for the restored copy")
    if int(head["ContentLength"]) != size:
        raise RuntimeError(f"restored copy has {head['ContentLength']} bytes, version {version} has {size}")
    before, after = stored_checksum(source), stored_checksum(head)
    if comparable(before, after) and before is not None and after is not None and before.value != after.value:
        raise RuntimeError(f"restored copy has checksum {after.display}, version {version} has {before.display}")
    return str(head.get("VersionId") or new_version)


def _apply_one(s3: Any, bucket: str, item: KeyPlan, sse: dict[str, str]) -> KeyResult:
    try:
        if item.action == "delete":
            response = s3.delete_object(Bucket=bucket, Key=item.key)  # no VersionId: a delete marker, history kept
            if not response.get("DeleteMarker"):
                return KeyResult(item, response.get("VersionId"), "S3 did not report a delete marker")
            return KeyResult(item, response.get("VersionId"))
        return KeyResult(item, _copy_back(s3, bucket, item, sse))
    except Exception as error:  # noqa: BLE001 - one key's failure is reported with the others, not raised
        return KeyResult(item, None, " ".join(f"{type(error).__name__}: {error}".split())[:300])


def apply_plan(
    s3: Any,
    plan: RestorePlan,
    sse: dict[str, str],
    *,
    workers: int = DEFAULT_WORKERS,
    on_done: Callable[[int, int, KeyResult], None] | None = None,
) -> list[KeyResult]:
    """Apply every change of ``plan`` (``workers`` keys at a time); results in plan order."""
    changes = plan.changes
    results: list[KeyResult] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rentaliq-files-restore") as pool:
        for done, result in enumerate(pool.map(lambda item: _apply_one(s3, plan.bucket, item, sse), changes), start=1):
            results.append(result)
            if on_done is not None:
                on_done(done, len(changes), result)
    return results


def restore_files(
    target: Target,
    spec: EnvironmentSpec,
    as_of: datetime,
    *,
    prefix: str = "",
    dry_run: bool = False,
    confirm_prod: bool = False,
    page_size: int | None = None,
    workers: int = DEFAULT_WORKERS,
    on_listed: Callable[[int], None] | None = None,
    on_plan: Callable[[RestorePlan], None] | None = None,
    on_done: Callable[[int, int, KeyResult], None] | None = None,
) -> RestoreReport:
    """Plan (and unless ``dry_run``, apply) the restore of ``prefix`` in the env's files bucket to ``as_of``."""
    import time

    started = time.monotonic()
    check_allowed(spec, dry_run=dry_run, confirm_prod=confirm_prod)
    prefix = check_prefix(prefix)
    s3 = target.client("s3")
    bucket = naming.files_bucket(spec.name.value)
    check_versioned(s3, bucket)
    sse = sse_args(s3, bucket)
    plan = plan_restore(s3, bucket, prefix, as_of, page_size=page_size, on_key=on_listed)
    if on_plan is not None:
        on_plan(plan)
    report = RestoreReport(spec.name.value, plan, dry_run)
    if not dry_run:
        report.results = apply_plan(s3, plan, sse, workers=workers, on_done=on_done)
    report.seconds = time.monotonic() - started
    return report
