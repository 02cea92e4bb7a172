"""Where moto's KMS-encrypted resources report keys differently from AWS (issue 12 section 4).

AWS resolves the key a request names (key id, alias name or alias ARN) and reports the key's ARN from then on:
an object's ``SSEKMSKeyId``, an RDS instance's ``KmsKeyId``. moto stores the string as given, or a placeholder
(``default_kms_key_id``) for an encrypted instance created without a key, where AWS uses and reports its
AWS-managed ``aws/rds`` key. Checks that look keys up (``verify``, IAM enforcement of ``kms:Decrypt``) need the
ARN, so these fixes store it. moto's CloudWatch Logs also lacks AssociateKmsKey/DisassociateKmsKey, through which
CloudFormation changes a log group's ``KmsKeyId`` in place.
"""

from __future__ import annotations

from typing import Any

from moto.kms.models import kms_backends
from moto.logs import responses as logs_responses
from moto.logs.exceptions import ResourceNotFoundException
from moto.rds import models as rds_models
from moto.s3 import models as s3_models

RDS_MANAGED_ALIAS = "alias/aws/rds"


def key_arn(account_id: str, region: str, key_id: str | None) -> str | None:
    """The ARN of the key ``key_id`` names in that account and region; ``key_id`` unchanged if KMS has no such key."""
    if not key_id:
        return key_id
    backend = kms_backends[account_id][region]
    try:
        return backend.describe_key(key_id).arn
    except Exception:  # noqa: BLE001 - unknown key or alias: left as given, as moto had it
        return key_id


def install() -> None:
    original_put = s3_models.S3Backend.put_object

    def put_object(self: s3_models.S3Backend, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
        fake = original_put(self, bucket_name, key_name, value, *args, **kwargs)
        if fake.encryption == "aws:kms" and fake.kms_key_id:
            fake.kms_key_id = key_arn(self.account_id, self.get_bucket(bucket_name).region_name, fake.kms_key_id)
        return fake

    s3_models.S3Backend.put_object = put_object  # type: ignore[method-assign]

    original_init = rds_models.DBInstance.__init__

    def init(self: rds_models.DBInstance, backend: Any, **kwargs: Any) -> None:
        original_init(self, backend, **kwargs)
        if self.storage_encrypted:
            named = kwargs.get("kms_key_id")
            self.kms_key_id = key_arn(self.account_id, self.region, named or RDS_MANAGED_ALIAS)

    rds_models.DBInstance.__init__ = init  # type: ignore[method-assign]

    install_log_group_keys()
    install_aws_managed_keys()


def install_aws_managed_keys() -> None:
    """moto makes ``alias/aws/rds`` and the like on first use, but as customer-managed keys; AWS reports ``KeyManager``
    ``AWS`` for them (a deploy tells the two apart before it would change a database's key)."""
    from moto.kms.models import KmsBackend

    original = KmsBackend._generate_default_keys

    def generate(self: KmsBackend, alias_name: str) -> str | None:
        key_id = original(self, alias_name)
        if key_id is not None:
            self.keys[key_id].key_manager = "AWS"
        return key_id

    KmsBackend._generate_default_keys = generate  # type: ignore[method-assign]


def install_log_group_keys() -> None:
    def set_key(response: logs_responses.LogsResponse, key_id: str | None) -> str:
        name = response._get_param("logGroupName")
        group = response.logs_backend.groups.get(name)
        if group is None:
            raise ResourceNotFoundException(msg="The specified log group does not exist.")
        group.kms_key_id = key_id
        return ""

    logs_responses.LogsResponse.associate_kms_key = lambda self: set_key(self, self._get_param("kmsKeyId"))  # type: ignore[attr-defined]
    logs_responses.LogsResponse.disassociate_kms_key = lambda self: set_key(self, None)  # type: ignore[attr-defined]
