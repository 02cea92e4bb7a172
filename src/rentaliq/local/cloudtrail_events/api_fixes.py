"""CloudTrail's API where moto's differs from AWS's, for the trails the local cloud stores.

- CreateTrail on a name that exists fails with ``TrailAlreadyExistsException`` (moto replaced the trail);
- CreateTrail checks, as CloudTrail does, that the bucket's policy lets ``cloudtrail.amazonaws.com`` put objects
  (``InsufficientS3BucketPolicyException``) and that a given KMS key exists (``KmsKeyNotFoundException``) and its
  policy lets CloudTrail generate data keys (``InsufficientEncryptionPolicyException``);
- DeleteTrail of a trail that does not exist fails with ``TrailNotFoundException`` (moto answered 200);
- DescribeTrails honours ``trailNameList`` (names or ARNs; moto returned every trail).
"""

from __future__ import annotations

import json
from typing import Any

CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows_cloudtrail(policy_text: str | bytes | None, actions: tuple[str, ...]) -> bool:
    """Whether a resource policy has an Allow statement for CloudTrail's service principal on one of ``actions``."""
    try:
        document = json.loads(policy_text or "{}")
    except ValueError:
        return False
    for statement in _as_list(document.get("Statement") or []):
        principal = statement.get("Principal") or {}
        services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
        wanted = [a for a in _as_list(statement.get("Action", [])) if a in actions or a in ("*", "s3:*", "kms:*")]
        if statement.get("Effect") == "Allow" and CLOUDTRAIL_PRINCIPAL in services and wanted:
            return True
    return False


def _check_destination(account_id: str, region: str, bucket_name: str, kms_key_id: str | None) -> None:
    from moto.kms.models import kms_backends
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    try:
        bucket = s3_backends[account_id][get_partition(region)].get_bucket(bucket_name)
    except Exception:  # noqa: BLE001 - moto's own check names the missing bucket
        return
    if not allows_cloudtrail(bucket.policy, ("s3:PutObject",)):
        raise _error("InsufficientS3BucketPolicyException", f"Incorrect S3 bucket policy is detected for bucket: {bucket_name}")
    if kms_key_id:
        kms = kms_backends[account_id][region]
        try:
            key = kms.describe_key(kms_key_id)
        except Exception:  # noqa: BLE001 - any lookup failure is "no such key" to CloudTrail
            raise _error("KmsKeyNotFoundException", f"KMS key {kms_key_id} not found.") from None
        if not allows_cloudtrail(key.policy, ("kms:GenerateDataKey*", "kms:GenerateDataKey")):
            raise _error("InsufficientEncryptionPolicyException", "Insufficient permissions to access S3 bucket or KMS key.")


def install() -> None:
    from moto.cloudtrail.exceptions import TrailNotFoundException
    from moto.cloudtrail.models import CloudTrailBackend

    original_create = CloudTrailBackend.create_trail
    if getattr(original_create, "_rentaliq", False):
        return

    def create_trail(self: Any, name: str, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.trails:
            arn = self.trails[name].arn
            raise _error("TrailAlreadyExistsException", f"Trail {arn} already exists for customer: {self.account_id}")
        kms_key_id = kwargs.get("kms_key_id", args[8] if len(args) > 8 else None)  # after prefix, topic, 4 flags, 2 CloudWatch ARNs
        _check_destination(self.account_id, self.region_name, bucket_name, kms_key_id)
        return original_create(self, name, bucket_name, *args, **kwargs)

    create_trail._rentaliq = True  # type: ignore[attr-defined]
    CloudTrailBackend.create_trail = create_trail  # type: ignore[method-assign]

    def delete_trail(self: Any, name: str) -> None:
        trail = self.get_trail(name)  # raises TrailNotFoundException, as AWS does
        if trail is None:
            raise TrailNotFoundException(account_id=self.account_id, name=name)
        self.trails.pop(trail.trail_name, None)

    CloudTrailBackend.delete_trail = delete_trail  # type: ignore[method-assign]

    from moto.cloudtrail.responses import CloudTrailResponse

    original_describe = CloudTrailResponse.describe_trails

    def describe_trails(self: Any) -> str:
        answer: str = original_describe(self)
        wanted = self._get_param("trailNameList") or []
        if not wanted:
            return answer
        listed = json.loads(answer)
        listed["trailList"] = [t for t in listed["trailList"] if t.get("Name") in wanted or t.get("TrailARN") in wanted]
        return json.dumps(listed)

    CloudTrailResponse.describe_trails = describe_trails  # type: ignore[method-assign]
