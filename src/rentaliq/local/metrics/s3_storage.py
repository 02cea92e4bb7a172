"""``AWS/S3`` daily storage metrics of every bucket: BucketSizeBytes per storage type, NumberOfObjects.

S3 publishes them once a day, in the bucket's region, with the dimensions ``BucketName`` and ``StorageType``
(``StandardStorage``, ``StandardIAStorage``, ... for BucketSizeBytes; ``AllStorageTypes`` for NumberOfObjects),
unit Bytes and Count. Both count every version of every object (noncurrent versions are stored and billed),
not delete markers. The local cloud measures them every ``RENTALIQ_LOCAL_S3_METRICS_SECONDS`` (default 86400)
from moto's buckets: the sizes are the objects' real byte counts.
"""

from __future__ import annotations

from typing import Any

from moto.s3.models import FakeKey, s3_backends

from rentaliq.local.metrics.publish import Datapoint

NAMESPACE = "AWS/S3"
INTERVAL_ENV = "RENTALIQ_LOCAL_S3_METRICS_SECONDS"
STORAGE_TYPES = {
    "STANDARD": "StandardStorage",
    "REDUCED_REDUNDANCY": "ReducedRedundancyStorage",
    "STANDARD_IA": "StandardIAStorage",
    "ONEZONE_IA": "OneZoneIAStorage",
    "INTELLIGENT_TIERING": "IntelligentTieringFAStorage",  # new objects start in the frequent-access tier
    "GLACIER_IR": "GlacierInstantRetrievalStorage",
    "GLACIER": "GlacierStorage",
    "DEEP_ARCHIVE": "DeepArchiveStorage",
}


def buckets() -> list[tuple[str, Any]]:
    """(account, bucket) for every bucket of every account."""
    found = []
    for account_id, account in list(dict.items(s3_backends)):
        for backend in list(dict.values(account)):
            found += [(account_id, bucket) for bucket in list(dict.values(backend.buckets))]
    return found


def measure() -> list[Datapoint]:
    points: list[Datapoint] = []
    for account, bucket in buckets():
        sizes: dict[str, int] = {}
        objects = 0
        for versions in list(dict.values(bucket.keys)):
            for version in list(versions):
                if isinstance(version, FakeKey):
                    storage_type = STORAGE_TYPES.get(str(version.storage_class or "STANDARD"), "StandardStorage")
                    sizes[storage_type] = sizes.get(storage_type, 0) + int(version.size)
                    objects += 1
        region = bucket.region_name
        for storage_type, size in sorted(sizes.items()):
            points.append(Datapoint(account, region, NAMESPACE, "BucketSizeBytes", size, "Bytes", {"BucketName": bucket.name, "StorageType": storage_type}))
        if objects:
            points.append(
                Datapoint(account, region, NAMESPACE, "NumberOfObjects", objects, "Count", {"BucketName": bucket.name, "StorageType": "AllStorageTypes"})
            )
    return points
