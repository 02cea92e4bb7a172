"""S3 buckets with every configuration our stacks set, and bucket policies."""

from __future__ import annotations

from typing import Any

from rentaliq.local.cfn.base import AlreadyExists, Provider, as_bool, as_json, exists, tag_list


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    api: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule.get("Status", "Enabled"), "Filter": {"Prefix": rule.get("Prefix", "")}}
    if rule.get("Transitions"):
        api["Transitions"] = [{"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in rule["Transitions"]]
    if rule.get("ExpirationInDays"):
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if rule.get("NoncurrentVersionExpiration"):
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    if rule.get("NoncurrentVersionTransitions"):
        api["NoncurrentVersionTransitions"] = [
            {"NoncurrentDays": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in rule["NoncurrentVersionTransitions"]
        ]
    if rule.get("AbortIncompleteMultipartUpload"):
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return api


def _metrics_configuration(config: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation MetricsConfiguration (Id, Prefix, TagFilters, AccessPointArn) in the S3 API's shape."""
    parts: dict[str, Any] = {}
    if config.get("Prefix"):
        parts["Prefix"] = config["Prefix"]
    if config.get("AccessPointArn"):
        parts["AccessPointArn"] = config["AccessPointArn"]
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in config.get("TagFilters", [])]
    api: dict[str, Any] = {"Id": config["Id"]}
    if len(parts) + len(tags) > 1:
        api["Filter"] = {"And": {**parts, **({"Tags": tags} if tags else {})}}
    elif parts:
        api["Filter"] = parts
    elif tags:
        api["Filter"] = {"Tag": tags[0]}
    return api


class Bucket(Provider):
    type_name = "AWS::S3::Bucket"

    @staticmethod
    def name(props, ctx) -> str:
        return props.get("BucketName") or ctx.generated_name(63, lower=True)

    def check_absent(self, props, ctx):
        # S3 in us-east-1 answers CreateBucket on one's own bucket with 200; CloudFormation still fails.
        name = self.name(props, ctx)
        if exists(ctx.client("s3").head_bucket, Bucket=name):
            raise AlreadyExists(name)

    def locate(self, props, ctx):
        name = self.name(props, ctx)
        return [name] if exists(ctx.client("s3").head_bucket, Bucket=name) else []

    def create(self, props, ctx):
        name = self.name(props, ctx)
        kwargs = {"Bucket": name}
        if ctx.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        ctx.client("s3").create_bucket(**kwargs)
        try:
            self._configure(name, {}, props, ctx)
        except Exception:
            ctx.client("s3").delete_bucket(Bucket=name)
            raise
        return name

    def update(self, physical_id, old, new, ctx):
        if old.get("BucketName") != new.get("BucketName"):
            return super().update(physical_id, old, new, ctx)
        self._configure(physical_id, old, new, ctx)
        return physical_id

    @staticmethod
    def _configure(name: str, old: dict[str, Any], props: dict[str, Any], ctx) -> None:
        s3 = ctx.client("s3")
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "BucketEncryption" in props:
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **({"BucketKeyEnabled": as_bool(rule["BucketKeyEnabled"])} if "BucketKeyEnabled" in rule else {}),
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        elif "BucketEncryption" in old:
            s3.delete_bucket_encryption(Bucket=name)
        if "PublicAccessBlockConfiguration" in props:
            block = {k: as_bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()}
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        elif "PublicAccessBlockConfiguration" in old:
            s3.delete_public_access_block(Bucket=name)
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]})
        elif "VersioningConfiguration" in old:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
        if "LifecycleConfiguration" in props:
            rules = [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        elif "LifecycleConfiguration" in old:
            s3.delete_bucket_lifecycle(Bucket=name)
        old_tiering = {c["Id"] for c in old.get("IntelligentTieringConfigurations", [])}
        new_tiering = {c["Id"]: c for c in props.get("IntelligentTieringConfigurations", [])}
        for config_id, config in new_tiering.items():
            api = {"Id": config_id, "Status": config.get("Status", "Enabled"), "Tierings": config["Tierings"]}
            if config.get("Prefix"):
                api["Filter"] = {"Prefix": config["Prefix"]}
            s3.put_bucket_intelligent_tiering_configuration(Bucket=name, Id=config_id, IntelligentTieringConfiguration=api)
        for config_id in old_tiering - set(new_tiering):
            s3.delete_bucket_intelligent_tiering_configuration(Bucket=name, Id=config_id)
        old_metrics = {c["Id"] for c in old.get("MetricsConfigurations", [])}
        new_metrics = {c["Id"]: c for c in props.get("MetricsConfigurations", [])}
        for config_id, config in new_metrics.items():
            s3.put_bucket_metrics_configuration(Bucket=name, Id=config_id, MetricsConfiguration=_metrics_configuration(config))
        for config_id in old_metrics - set(new_metrics):
            s3.delete_bucket_metrics_configuration(Bucket=name, Id=config_id)
        if "LoggingConfiguration" in props:
            logging_config = props["LoggingConfiguration"]
            status = {"LoggingEnabled": {"TargetBucket": logging_config["DestinationBucketName"], "TargetPrefix": logging_config.get("LogFilePrefix", "")}}
            s3.put_bucket_logging(Bucket=name, BucketLoggingStatus=status)
        elif "LoggingConfiguration" in old:
            s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={})
        if props.get("Tags"):  # aws:* tags are CloudFormation's own and refused from callers
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(props)})
        elif old.get("Tags"):  # an update (or rollback) that drops every tag
            s3.delete_bucket_tagging(Bucket=name)

    def delete(self, physical_id, props, ctx):
        ctx.client("s3").delete_bucket(Bucket=physical_id)

    def attributes(self, physical_id, props, ctx):
        return {
            "Arn": f"arn:aws:s3:::{physical_id}",
            "DomainName": f"{physical_id}.s3.amazonaws.com",
            "RegionalDomainName": f"{physical_id}.s3.{ctx.region}.amazonaws.com",
            "DualStackDomainName": f"{physical_id}.s3.dualstack.{ctx.region}.amazonaws.com",
            "WebsiteURL": f"http://{physical_id}.s3-website-{ctx.region}.amazonaws.com",
        }


class BucketPolicy(Provider):
    type_name = "AWS::S3::BucketPolicy"

    def create(self, props, ctx):
        ctx.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=as_json(props["PolicyDocument"]))
        return props["Bucket"]

    def update(self, physical_id, old, new, ctx):
        if old.get("Bucket") != new.get("Bucket"):
            return super().update(physical_id, old, new, ctx)
        return self.create(new, ctx)

    def delete(self, physical_id, props, ctx):
        ctx.client("s3").delete_bucket_policy(Bucket=physical_id)

    def locate(self, props, ctx):
        return [props["Bucket"]]  # deleting a policy that is not there is a no-op


PROVIDERS = [Bucket, BucketPolicy]
