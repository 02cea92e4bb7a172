"""The audit trail's types: ``AWS::CloudTrail::Trail`` and AWS Config's recorder, delivery channel and rules.

Each goes through the public API of the local cloud, as CloudFormation's handlers do on AWS:

- a create looks for the name first and fails with the service's own "already exists" wording, never adopting a
  trail, recorder, channel or rule made by hand (and a rollback leaves that one alone);
- a trail with ``IsLogging`` true is started (CreateTrail leaves a trail stopped; StartLogging starts it);
- a recorder is started as soon as a delivery channel exists, whichever of the two is created second (AWS's
  ConfigurationRecorder documentation: "AWS CloudFormation starts the recorder as soon as the delivery channel is
  available"); deleting the channel stops the recorder first (Config refuses to delete the last channel of a
  recording recorder).

Every template property is passed on or refused by name.
"""

from __future__ import annotations

import json
from typing import Any

from rentaliq.local.cfn.base import AlreadyExists, Context, Named, ProviderError, as_bool, is_not_found, removed_tag_keys, tag_list


def _refuse_unknown(type_name: str, props: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(props) - known)
    if unknown:
        raise ProviderError(f"The local cloud cannot create {type_name} with {', '.join(unknown)}; supported: {', '.join(sorted(known))}")


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property tree as Config's camelCase API structures (``AllSupported`` -> ``allSupported``)."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    if value in ("true", "false"):
        return value == "true"
    return value


class Trail(Named):
    type_name = "AWS::CloudTrail::Trail"
    name_property = "TrailName"  # type: ignore[assignment]
    name_max_length = 128
    KNOWN = {
        "TrailName",
        "S3BucketName",
        "S3KeyPrefix",
        "IncludeGlobalServiceEvents",
        "IsMultiRegionTrail",
        "EnableLogFileValidation",
        "KMSKeyId",
        "IsLogging",
        "SnsTopicName",
        "CloudWatchLogsLogGroupArn",
        "CloudWatchLogsRoleArn",
        "Tags",
    }

    def named_exists(self, name: str, ctx: Context) -> bool:
        try:
            ctx.client("cloudtrail").get_trail(Name=name)
        except Exception as error:
            if is_not_found(error):
                return False
            raise
        return True

    def check_absent(self, props: dict[str, Any], ctx: Context) -> None:
        name = self.name(props, ctx)
        if self.named_exists(name, ctx):
            arn = f"arn:aws:cloudtrail:{ctx.region}:{ctx.account_id}:trail/{name}"
            raise AlreadyExists(name, f"TrailAlreadyExistsException: Trail {arn} already exists for customer: {ctx.account_id}")

    @staticmethod
    def _settings(props: dict[str, Any]) -> dict[str, Any]:
        settings: dict[str, Any] = {"S3BucketName": props["S3BucketName"]}
        for key in ("S3KeyPrefix", "SnsTopicName", "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"):
            if props.get(key):
                settings[key] = props[key]
        if props.get("KMSKeyId"):
            settings["KmsKeyId"] = props["KMSKeyId"]
        settings["IncludeGlobalServiceEvents"] = as_bool(props.get("IncludeGlobalServiceEvents", True))
        settings["IsMultiRegionTrail"] = as_bool(props.get("IsMultiRegionTrail", False))
        settings["EnableLogFileValidation"] = as_bool(props.get("EnableLogFileValidation", False))
        return settings

    def create(self, props: dict[str, Any], ctx: Context) -> str:
        _refuse_unknown(self.type_name, props, self.KNOWN)
        name = self.name(props, ctx)
        trails = ctx.client("cloudtrail")
        trails.create_trail(Name=name, TagsList=tag_list(props) + ctx.cloudformation_tags(), **self._settings(props))
        if as_bool(props.get("IsLogging")):
            trails.start_logging(Name=name)
        return name

    def update(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> str:
        _refuse_unknown(self.type_name, new, self.KNOWN)
        trails = ctx.client("cloudtrail")
        if {k: v for k, v in old.items() if k not in ("IsLogging", "Tags")} != {k: v for k, v in new.items() if k not in ("IsLogging", "Tags")}:
            trails.update_trail(Name=physical_id, **self._settings(new))
        if as_bool(new.get("IsLogging")) != as_bool(old.get("IsLogging")):
            (trails.start_logging if as_bool(new.get("IsLogging")) else trails.stop_logging)(Name=physical_id)
        arn = self.attributes(physical_id, new, ctx)["Arn"]
        if removed := removed_tag_keys(old, new):
            trails.remove_tags(ResourceId=arn, TagsList=[{"Key": key} for key in removed])
        if new.get("Tags") and new.get("Tags") != old.get("Tags"):
            trails.add_tags(ResourceId=arn, TagsList=tag_list(new))
        return physical_id

    def delete(self, physical_id: str, props: dict[str, Any], ctx: Context) -> None:
        try:
            ctx.client("cloudtrail").delete_trail(Name=physical_id)
        except Exception as error:
            if not is_not_found(error):
                raise

    def attributes(self, physical_id: str, props: dict[str, Any], ctx: Context) -> dict[str, Any]:
        trail = ctx.client("cloudtrail").get_trail(Name=physical_id)["Trail"]
        return {"Arn": trail["TrailARN"], "SnsTopicArn": trail.get("SnsTopicARN", "")}


def _start_recorders(ctx: Context) -> None:
    """Start every recorder once a channel exists (there is at most one recorder per account and region)."""
    config = ctx.client("config")
    if not config.describe_delivery_channels().get("DeliveryChannels"):
        return
    for recorder in config.describe_configuration_recorders().get("ConfigurationRecorders", []):
        config.start_configuration_recorder(ConfigurationRecorderName=recorder["name"])


class ConfigurationRecorder(Named):
    type_name = "AWS::Config::ConfigurationRecorder"
    name_property = "Name"  # type: ignore[assignment]
    name_max_length = 256
    KNOWN = {"Name", "RoleARN", "RecordingGroup", "RecordingMode"}

    def named_exists(self, name: str, ctx: Context) -> bool:
        try:
            found = ctx.client("config").describe_configuration_recorders(ConfigurationRecorderNames=[name])["ConfigurationRecorders"]
        except Exception as error:
            if is_not_found(error):
                return False
            raise
        return bool(found)

    def _put(self, name: str, props: dict[str, Any], ctx: Context) -> None:
        _refuse_unknown(self.type_name, props, self.KNOWN)
        recorder: dict[str, Any] = {"name": name, "roleARN": props["RoleARN"]}
        for key in ("RecordingGroup", "RecordingMode"):
            if props.get(key):
                recorder[key[:1].lower() + key[1:]] = _camel(props[key])
        ctx.client("config").put_configuration_recorder(ConfigurationRecorder=recorder)

    def create(self, props: dict[str, Any], ctx: Context) -> str:
        name = self.name(props, ctx)
        self._put(name, props, ctx)
        _start_recorders(ctx)
        return name

    def update(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> str:
        self._put(physical_id, new, ctx)
        return physical_id

    def delete(self, physical_id: str, props: dict[str, Any], ctx: Context) -> None:
        config = ctx.client("config")
        try:
            config.stop_configuration_recorder(ConfigurationRecorderName=physical_id)
            config.delete_configuration_recorder(ConfigurationRecorderName=physical_id)
        except Exception as error:
            if not is_not_found(error):
                raise


class DeliveryChannel(Named):
    type_name = "AWS::Config::DeliveryChannel"
    name_property = "Name"  # type: ignore[assignment]
    name_max_length = 256
    KNOWN = {"Name", "S3BucketName", "S3KeyPrefix", "S3KmsKeyArn", "SnsTopicARN", "ConfigSnapshotDeliveryProperties"}

    def named_exists(self, name: str, ctx: Context) -> bool:
        try:
            found = ctx.client("config").describe_delivery_channels(DeliveryChannelNames=[name])["DeliveryChannels"]
        except Exception as error:
            if is_not_found(error):
                return False
            raise
        return bool(found)

    def _put(self, name: str, props: dict[str, Any], ctx: Context) -> None:
        _refuse_unknown(self.type_name, props, self.KNOWN)
        channel: dict[str, Any] = {"name": name, "s3BucketName": props["S3BucketName"]}
        for key, api in (("S3KeyPrefix", "s3KeyPrefix"), ("S3KmsKeyArn", "s3KmsKeyArn"), ("SnsTopicARN", "snsTopicARN")):
            if props.get(key):
                channel[api] = props[key]
        if props.get("ConfigSnapshotDeliveryProperties"):
            channel["configSnapshotDeliveryProperties"] = _camel(props["ConfigSnapshotDeliveryProperties"])
        ctx.client("config").put_delivery_channel(DeliveryChannel=channel)

    def create(self, props: dict[str, Any], ctx: Context) -> str:
        name = self.name(props, ctx)
        self._put(name, props, ctx)
        _start_recorders(ctx)
        return name

    def update(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> str:
        self._put(physical_id, new, ctx)
        return physical_id

    def delete(self, physical_id: str, props: dict[str, Any], ctx: Context) -> None:
        config = ctx.client("config")
        try:
            for recorder in config.describe_configuration_recorders().get("ConfigurationRecorders", []):
                config.stop_configuration_recorder(ConfigurationRecorderName=recorder["name"])
            config.delete_delivery_channel(DeliveryChannelName=physical_id)
        except Exception as error:
            if not is_not_found(error):
                raise


class ConfigRule(Named):
    type_name = "AWS::Config::ConfigRule"
    name_property = "ConfigRuleName"  # type: ignore[assignment]
    name_max_length = 128
    KNOWN = {"ConfigRuleName", "Description", "Source", "Scope", "InputParameters", "MaximumExecutionFrequency", "EvaluationModes", "Compliance"}

    def named_exists(self, name: str, ctx: Context) -> bool:
        try:
            found = ctx.client("config").describe_config_rules(ConfigRuleNames=[name])["ConfigRules"]
        except Exception as error:
            if is_not_found(error):
                return False
            raise
        return bool(found)

    def _put(self, name: str, props: dict[str, Any], ctx: Context) -> None:
        _refuse_unknown(self.type_name, props, self.KNOWN)
        rule: dict[str, Any] = {"ConfigRuleName": name, "Source": props["Source"]}
        for key in ("Description", "Scope", "MaximumExecutionFrequency", "EvaluationModes"):
            if props.get(key):
                rule[key] = props[key]
        if props.get("InputParameters"):
            parameters = props["InputParameters"]
            rule["InputParameters"] = parameters if isinstance(parameters, str) else json.dumps(parameters)
        ctx.client("config").put_config_rule(ConfigRule=rule)

    def create(self, props: dict[str, Any], ctx: Context) -> str:
        name = self.name(props, ctx)
        self._put(name, props, ctx)
        return name

    def update(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> str:
        self._put(physical_id, new, ctx)
        return physical_id

    def delete(self, physical_id: str, props: dict[str, Any], ctx: Context) -> None:
        try:
            ctx.client("config").delete_config_rule(ConfigRuleName=physical_id)
        except Exception as error:
            if not is_not_found(error):
                raise

    def attributes(self, physical_id: str, props: dict[str, Any], ctx: Context) -> dict[str, Any]:
        rule = ctx.client("config").describe_config_rules(ConfigRuleNames=[physical_id])["ConfigRules"][0]
        return {"Arn": rule["ConfigRuleArn"], "ConfigRuleId": rule["ConfigRuleId"]}


PROVIDERS = [Trail, ConfigurationRecorder, DeliveryChannel, ConfigRule]
