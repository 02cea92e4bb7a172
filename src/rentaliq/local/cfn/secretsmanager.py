"""Secrets Manager secrets (generated or given) and RDS target attachments."""

from __future__ import annotations

import json
from typing import Any

from rentaliq.local.cfn.base import AlreadyExists, Named, Provider, is_not_found, removed_tag_keys, tag_list

# CloudFormation's GenerateSecretString properties and the GetRandomPassword parameters they map to.
_GENERATE_KEYS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeLowercase",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


class Secret(Named):
    type_name = "AWS::SecretsManager::Secret"
    name_max_length = 256

    @staticmethod
    def _describe(name: str, ctx) -> dict[str, Any] | None:
        try:
            return ctx.client("secretsmanager").describe_secret(SecretId=name)
        except Exception as error:
            if is_not_found(error):
                return None
            raise

    def check_absent(self, props, ctx):
        name = self.name(props, ctx)
        described = self._describe(name, ctx)
        if described is not None:
            scheduled = "You can't create this secret because a secret with this name is already scheduled for deletion."
            raise AlreadyExists(name, scheduled if described.get("DeletedDate") else None)

    def locate(self, props, ctx):
        described = self._describe(self.name(props, ctx), ctx)
        return [described["ARN"]] if described else []

    def create(self, props, ctx):
        sm = ctx.client("secretsmanager")
        kwargs: dict[str, Any] = {"Name": self.name(props, ctx), "SecretString": self._value(props, ctx)}
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        if props.get("KmsKeyId"):
            kwargs["KmsKeyId"] = props["KmsKeyId"]
        if props.get("Tags"):
            kwargs["Tags"] = tag_list(props)
        return sm.create_secret(**kwargs)["ARN"]

    @staticmethod
    def _value(props: dict[str, Any], ctx) -> str:
        if "SecretString" in props:
            return props["SecretString"]
        generate = props.get("GenerateSecretString", {})
        kwargs = {k: generate[k] for k in _GENERATE_KEYS if k in generate}
        if "PasswordLength" in kwargs:
            kwargs["PasswordLength"] = int(kwargs["PasswordLength"])
        password = ctx.client("secretsmanager").get_random_password(**kwargs)["RandomPassword"]
        if "GenerateStringKey" in generate:
            value = json.loads(generate.get("SecretStringTemplate", "{}"))
            value[generate["GenerateStringKey"]] = password
            return json.dumps(value)
        return password

    def update(self, physical_id, old, new, ctx):
        if old.get("Name") != new.get("Name"):
            return super().update(physical_id, old, new, ctx)
        sm = ctx.client("secretsmanager")
        if new.get("SecretString") is not None and new.get("SecretString") != old.get("SecretString"):
            sm.put_secret_value(SecretId=physical_id, SecretString=new["SecretString"])
        if new.get("Description") != old.get("Description"):
            sm.update_secret(SecretId=physical_id, Description=new.get("Description", ""))
        if new.get("KmsKeyId") != old.get("KmsKeyId"):
            # As UpdateSecret does on AWS: new versions use the key; without one, the AWS-managed aws/secretsmanager.
            sm.update_secret(SecretId=physical_id, KmsKeyId=new.get("KmsKeyId") or "alias/aws/secretsmanager")
        if removed := removed_tag_keys(old, new):
            sm.untag_resource(SecretId=physical_id, TagKeys=removed)
        if new.get("Tags"):
            sm.tag_resource(SecretId=physical_id, Tags=tag_list(new))
        return physical_id

    def delete(self, physical_id, props, ctx):
        sm = ctx.client("secretsmanager")
        try:
            described = sm.describe_secret(SecretId=physical_id)
        except sm.exceptions.ResourceNotFoundException:
            return
        if described.get("DeletedDate"):
            return  # already scheduled with the environment's recovery window (rentaliq destroy)
        sm.delete_secret(SecretId=physical_id, ForceDeleteWithoutRecovery=True)

    def attributes(self, physical_id, props, ctx):
        return {"Id": physical_id}


class SecretTargetAttachment(Provider):
    """Writes the target's connection facts into the secret; rerun on every deploy, so the secret tracks the instance."""

    type_name = "AWS::SecretsManager::SecretTargetAttachment"

    def create(self, props, ctx):
        if props["TargetType"] != "AWS::RDS::DBInstance":
            raise ValueError(f"SecretTargetAttachment TargetType {props['TargetType']!r}: the local cloud supports AWS::RDS::DBInstance")
        sm, rds = ctx.client("secretsmanager"), ctx.client("rds")
        db = rds.describe_db_instances(DBInstanceIdentifier=props["TargetId"])["DBInstances"][0]
        value = json.loads(sm.get_secret_value(SecretId=props["SecretId"])["SecretString"])
        value.update(engine=db["Engine"], host=db["Endpoint"]["Address"], port=db["Endpoint"]["Port"], dbInstanceIdentifier=db["DBInstanceIdentifier"])
        sm.put_secret_value(SecretId=props["SecretId"], SecretString=json.dumps(value))
        return props["SecretId"]

    def update(self, physical_id, old, new, ctx):
        return self.create(new, ctx)

    def delete(self, physical_id, props, ctx):
        return None


PROVIDERS = [Secret, SecretTargetAttachment]
