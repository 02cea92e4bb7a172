"""KMS keys and aliases, SNS topics, topic policies and subscriptions: the alerts topic and what it needs.

As on AWS, SNS's CreateTopic returns an existing topic of the same name instead of failing, and Subscribe
returns an existing identical subscription: both are looked up first, so a create never adopts.
"""

from __future__ import annotations

import json
from typing import Any

from rentaliq.local.cfn.base import AlreadyExists, Provider, as_bool, as_json, is_not_found, removed_tag_keys, tag_list

_KEY_DEFAULT_POLICY_NAME = "default"


class KmsKey(Provider):
    """A key has no name: it carries CloudFormation's tags from its create on, so that after a crash the key an
    interrupted create made is found (and rolled back) rather than left behind."""

    type_name = "AWS::KMS::Key"

    def locate(self, props, ctx):
        if not ctx.stack_id:
            return []
        kms, wanted = ctx.client("kms"), {(t["Key"], t["Value"]) for t in ctx.cloudformation_tags()}
        found = []
        for page in kms.get_paginator("list_keys").paginate():
            for key in page["Keys"]:
                if kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion":
                    continue
                tags = {(t["TagKey"], t["TagValue"]) for t in kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])}
                if wanted <= tags:
                    found.append(key["KeyId"])
        return found

    def create(self, props, ctx):
        kms = ctx.client("kms")
        cloudformation = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in ctx.cloudformation_tags()]
        kwargs: dict[str, Any] = {
            "KeyUsage": props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            "KeySpec": props.get("KeySpec", "SYMMETRIC_DEFAULT"),
            "Tags": tag_list(props, "TagKey", "TagValue") + cloudformation,
        }
        if props.get("KeyPolicy"):
            kwargs["Policy"] = as_json(props["KeyPolicy"])
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        key_id = kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]
        if as_bool(props.get("EnableKeyRotation", False)):
            kms.enable_key_rotation(KeyId=key_id)
        if not as_bool(props.get("Enabled", True)):
            kms.disable_key(KeyId=key_id)
        return key_id

    def update(self, physical_id, old, new, ctx):
        self.in_place_only(old, new, frozenset({"KeyPolicy", "Description", "EnableKeyRotation", "Enabled", "Tags", "PendingWindowInDays"}))
        kms = ctx.client("kms")
        if new.get("KeyPolicy") != old.get("KeyPolicy") and new.get("KeyPolicy"):
            kms.put_key_policy(KeyId=physical_id, PolicyName=_KEY_DEFAULT_POLICY_NAME, Policy=as_json(new["KeyPolicy"]))
        if new.get("Description") != old.get("Description"):
            kms.update_key_description(KeyId=physical_id, Description=new.get("Description", ""))
        rotation = as_bool(new.get("EnableKeyRotation", False))
        if rotation != as_bool(old.get("EnableKeyRotation", False)):
            (kms.enable_key_rotation if rotation else kms.disable_key_rotation)(KeyId=physical_id)
        enabled = as_bool(new.get("Enabled", True))
        if enabled != as_bool(old.get("Enabled", True)):
            (kms.enable_key if enabled else kms.disable_key)(KeyId=physical_id)
        if removed := removed_tag_keys(old, new):
            kms.untag_resource(KeyId=physical_id, TagKeys=removed)
        if new.get("Tags"):
            kms.tag_resource(KeyId=physical_id, Tags=tag_list(new, "TagKey", "TagValue"))
        return physical_id

    def delete(self, physical_id, props, ctx):
        """A key is never deleted at once: AWS schedules it, 7 to 30 days out (the template's window, else 30)."""
        kms = ctx.client("kms")
        try:
            state = kms.describe_key(KeyId=physical_id)["KeyMetadata"]["KeyState"]
        except Exception as error:
            if is_not_found(error):
                return
            raise
        if state != "PendingDeletion":
            kms.schedule_key_deletion(KeyId=physical_id, PendingWindowInDays=int(props.get("PendingWindowInDays", 30)))

    def attributes(self, physical_id, props, ctx):
        arn = ctx.client("kms").describe_key(KeyId=physical_id)["KeyMetadata"]["Arn"]
        return {"Arn": arn, "KeyId": physical_id}


class KmsAlias(Provider):
    type_name = "AWS::KMS::Alias"

    def _aliases(self, ctx) -> dict[str, str]:
        pages = ctx.client("kms").get_paginator("list_aliases").paginate()
        return {a["AliasName"]: a.get("TargetKeyId", "") for page in pages for a in page["Aliases"]}

    def check_absent(self, props, ctx):
        if props["AliasName"] in self._aliases(ctx):
            raise AlreadyExists(props["AliasName"])

    def locate(self, props, ctx):
        return [props["AliasName"]] if props["AliasName"] in self._aliases(ctx) else []

    def create(self, props, ctx):
        ctx.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        return props["AliasName"]

    def update(self, physical_id, old, new, ctx):
        self.in_place_only(old, new, frozenset({"TargetKeyId"}))
        ctx.client("kms").update_alias(AliasName=physical_id, TargetKeyId=new["TargetKeyId"])
        return physical_id

    def delete(self, physical_id, props, ctx):
        if physical_id in self._aliases(ctx):
            ctx.client("kms").delete_alias(AliasName=physical_id)


class Topic(Provider):
    type_name = "AWS::SNS::Topic"
    _ATTRIBUTES = ("DisplayName", "KmsMasterKeyId", "SignatureVersion")

    @staticmethod
    def name(props, ctx) -> str:
        return props.get("TopicName") or ctx.generated_name(256)

    @staticmethod
    def arn(name: str, ctx) -> str:
        return f"arn:aws:sns:{ctx.region}:{ctx.account_id}:{name}"

    def locate(self, props, ctx):
        arn = self.arn(self.name(props, ctx), ctx)
        try:
            ctx.client("sns").get_topic_attributes(TopicArn=arn)
        except Exception as error:
            if is_not_found(error):
                return []
            raise
        return [arn]

    def check_absent(self, props, ctx):
        if self.locate(props, ctx):
            raise AlreadyExists(self.name(props, ctx))

    def create(self, props, ctx):
        attributes = {key: str(props[key]) for key in self._ATTRIBUTES if props.get(key) is not None}
        kwargs: dict[str, Any] = {"Name": self.name(props, ctx), "Attributes": attributes}
        if props.get("Tags"):
            kwargs["Tags"] = tag_list(props)
        return ctx.client("sns").create_topic(**kwargs)["TopicArn"]

    def update(self, physical_id, old, new, ctx):
        self.in_place_only(old, new, frozenset({*self._ATTRIBUTES, "Tags"}))
        sns = ctx.client("sns")
        for key in self._ATTRIBUTES:
            if new.get(key) != old.get(key):
                sns.set_topic_attributes(TopicArn=physical_id, AttributeName=key, AttributeValue=str(new.get(key) or ""))
        if removed := removed_tag_keys(old, new):
            sns.untag_resource(ResourceArn=physical_id, TagKeys=removed)
        if new.get("Tags"):
            sns.tag_resource(ResourceArn=physical_id, Tags=tag_list(new))
        return physical_id

    def delete(self, physical_id, props, ctx):
        ctx.client("sns").delete_topic(TopicArn=physical_id)  # idempotent, as on AWS

    def attributes(self, physical_id, props, ctx):
        return {"TopicArn": physical_id, "TopicName": physical_id.rsplit(":", 1)[1]}


def _default_topic_policy(topic_arn: str, account: str) -> str:
    """The policy SNS gives every new topic (the owner may do everything); deleting a TopicPolicy restores it."""
    actions = ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission", "SNS:DeleteTopic",
               "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"]  # fmt: skip
    statement = {"Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": actions,
                 "Resource": topic_arn, "Condition": {"StringEquals": {"AWS:SourceOwner": account}}}  # fmt: skip
    return json.dumps({"Version": "2008-10-17", "Id": "__default_policy_ID", "Statement": [statement]})


class TopicPolicy(Provider):
    type_name = "AWS::SNS::TopicPolicy"

    def create(self, props, ctx):
        self._apply(props, ctx)
        return ctx.generated_name(128)

    @staticmethod
    def _apply(props, ctx) -> None:
        for topic in props["Topics"]:
            ctx.client("sns").set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=as_json(props["PolicyDocument"]))

    def update(self, physical_id, old, new, ctx):
        for topic in set(old.get("Topics", [])) - set(new["Topics"]):
            self._reset(topic, ctx)
        self._apply(new, ctx)
        return physical_id

    def delete(self, physical_id, props, ctx):
        for topic in props.get("Topics", []):
            self._reset(topic, ctx)

    @staticmethod
    def _reset(topic: str, ctx) -> None:
        try:
            ctx.client("sns").set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=_default_topic_policy(topic, ctx.account_id))
        except Exception as error:
            if not is_not_found(error):
                raise


class Subscription(Provider):
    type_name = "AWS::SNS::Subscription"
    _ATTRIBUTES = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")

    @staticmethod
    def _existing(props, ctx) -> list[str]:
        pages = ctx.client("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=props["TopicArn"])
        return [
            s["SubscriptionArn"] for page in pages for s in page["Subscriptions"] if s["Protocol"] == props["Protocol"] and s["Endpoint"] == props["Endpoint"]
        ]

    def check_absent(self, props, ctx):
        if self._existing(props, ctx):
            raise AlreadyExists(f"subscription of {props['Endpoint']!r} ({props['Protocol']}) to {props['TopicArn']}")

    def locate(self, props, ctx):
        return self._existing(props, ctx)

    def create(self, props, ctx):
        attributes = {key: as_json(props[key]) if key != "RawMessageDelivery" else str(props[key]).lower()
                      for key in self._ATTRIBUTES if props.get(key) is not None}  # fmt: skip
        answer = ctx.client("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"], Attributes=attributes, ReturnSubscriptionArn=True
        )
        return answer["SubscriptionArn"]

    def update(self, physical_id, old, new, ctx):
        self.in_place_only(old, new, frozenset(self._ATTRIBUTES))
        sns = ctx.client("sns")
        for key in self._ATTRIBUTES:
            if new.get(key) != old.get(key):
                value = new.get(key)
                text = "" if value is None else (str(value).lower() if key == "RawMessageDelivery" else as_json(value))
                sns.set_subscription_attributes(SubscriptionArn=physical_id, AttributeName=key, AttributeValue=text)
        return physical_id

    def delete(self, physical_id, props, ctx):
        try:
            ctx.client("sns").unsubscribe(SubscriptionArn=physical_id)
        except Exception as error:
            if not is_not_found(error):
                raise

    def attributes(self, physical_id, props, ctx):
        return {"Arn": physical_id}


PROVIDERS = [KmsKey, KmsAlias, Topic, TopicPolicy, Subscription]
