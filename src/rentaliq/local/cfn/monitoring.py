"""CloudWatch alarms and dashboards, and CloudWatch Logs log groups."""

from __future__ import annotations

from typing import Any

from rentaliq.local.cfn.base import Named, ProviderError, as_bool, removed_tag_keys, tag_list

_ALARM_PROPS = {
    "AlarmDescription": str,
    "MetricName": str,
    "Namespace": str,
    "Statistic": str,
    "ExtendedStatistic": str,
    "Period": int,
    "EvaluationPeriods": int,
    "DatapointsToAlarm": int,
    "Threshold": float,
    "ComparisonOperator": str,
    "TreatMissingData": str,
    "Unit": str,
    "ActionsEnabled": as_bool,
    "AlarmActions": list,
    "OKActions": list,
    "InsufficientDataActions": list,
}


class _PutByName(Named):
    """A resource that CloudWatch creates, and silently overwrites, with one Put call by name: ``Named`` looks
    first, so a create never adopts an existing one."""

    name_max_length = 255

    def create(self, props, ctx):
        name = self.name(props, ctx)
        self._put(name, props, ctx)
        return name

    @staticmethod
    def _put(name: str, props: dict[str, Any], ctx) -> None:
        raise NotImplementedError


class Alarm(_PutByName):
    type_name = "AWS::CloudWatch::Alarm"

    def named_exists(self, name, ctx) -> bool:
        return bool(ctx.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"])

    @staticmethod
    def _put(name: str, props: dict[str, Any], ctx) -> None:
        kwargs = {key: convert(props[key]) for key, convert in _ALARM_PROPS.items() if key in props}
        if props.get("Dimensions"):
            kwargs["Dimensions"] = [{"Name": d["Name"], "Value": str(d["Value"])} for d in props["Dimensions"]]
        if props.get("Metrics"):
            kwargs["Metrics"] = props["Metrics"]
        ctx.client("cloudwatch").put_metric_alarm(AlarmName=name, Tags=tag_list(props), **kwargs)

    def update(self, physical_id, old, new, ctx):
        if old.get("AlarmName") != new.get("AlarmName"):
            return super().update(physical_id, old, new, ctx)
        self._put(physical_id, new, ctx)
        if removed := removed_tag_keys(old, new):
            arn = ctx.client("cloudwatch").describe_alarms(AlarmNames=[physical_id])["MetricAlarms"][0]["AlarmArn"]
            ctx.client("cloudwatch").untag_resource(ResourceARN=arn, TagKeys=removed)
        return physical_id

    def delete(self, physical_id, props, ctx):
        ctx.client("cloudwatch").delete_alarms(AlarmNames=[physical_id])

    def attributes(self, physical_id, props, ctx):
        alarm = ctx.client("cloudwatch").describe_alarms(AlarmNames=[physical_id])["MetricAlarms"][0]
        return {"Arn": alarm["AlarmArn"]}


class Dashboard(_PutByName):
    type_name = "AWS::CloudWatch::Dashboard"

    def named_exists(self, name, ctx) -> bool:
        entries = ctx.client("cloudwatch").list_dashboards(DashboardNamePrefix=name)["DashboardEntries"]
        return any(d["DashboardName"] == name for d in entries)

    @staticmethod
    def _put(name: str, props: dict[str, Any], ctx) -> None:
        cw = ctx.client("cloudwatch")
        answer = cw.put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        if answer.get("DashboardValidationMessages"):
            raise ProviderError(f"DashboardBody of {name} is invalid: {answer['DashboardValidationMessages']}")
        if props.get("Tags"):
            cw.tag_resource(ResourceARN=Dashboard.arn(name, ctx), Tags=tag_list(props))

    @staticmethod
    def arn(name: str, ctx) -> str:
        return ctx.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardArn"]

    def update(self, physical_id, old, new, ctx):
        self._put(physical_id, new, ctx)
        if removed := removed_tag_keys(old, new):
            ctx.client("cloudwatch").untag_resource(ResourceARN=self.arn(physical_id, ctx), TagKeys=removed)
        return physical_id

    def delete(self, physical_id, props, ctx):
        if self.named_exists(physical_id, ctx):
            ctx.client("cloudwatch").delete_dashboards(DashboardNames=[physical_id])


class LogGroup(Named):
    type_name = "AWS::Logs::LogGroup"
    name_max_length = 512

    def named_exists(self, name, ctx) -> bool:
        groups = ctx.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        return any(g["logGroupName"] == name for g in groups)

    def create(self, props, ctx):
        logs = ctx.client("logs")
        name = self.name(props, ctx)
        kwargs: dict[str, Any] = {"logGroupName": name}
        if props.get("Tags"):
            kwargs["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        if props.get("KmsKeyId"):
            kwargs["kmsKeyId"] = props["KmsKeyId"]
        logs.create_log_group(**kwargs)
        if props.get("RetentionInDays"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return name

    def update(self, physical_id, old, new, ctx):
        if old.get("LogGroupName") != new.get("LogGroupName"):
            return super().update(physical_id, old, new, ctx)
        logs = ctx.client("logs")
        if new.get("KmsKeyId") != old.get("KmsKeyId"):  # in place on AWS: AssociateKmsKey / DisassociateKmsKey
            if new.get("KmsKeyId"):
                logs.associate_kms_key(logGroupName=physical_id, kmsKeyId=new["KmsKeyId"])
            else:
                logs.disassociate_kms_key(logGroupName=physical_id)
        if new.get("RetentionInDays"):
            logs.put_retention_policy(logGroupName=physical_id, retentionInDays=int(new["RetentionInDays"]))
        else:
            logs.delete_retention_policy(logGroupName=physical_id)
        arn = f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{physical_id}"
        if removed := removed_tag_keys(old, new):
            logs.untag_resource(resourceArn=arn, tagKeys=removed)
        if new.get("Tags") and new.get("Tags") != old.get("Tags"):
            logs.tag_resource(resourceArn=arn, tags={t["Key"]: t["Value"] for t in new["Tags"]})
        return physical_id

    def delete(self, physical_id, props, ctx):
        ctx.client("logs").delete_log_group(logGroupName=physical_id)

    def attributes(self, physical_id, props, ctx):
        return {"Arn": f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{physical_id}:*"}


PROVIDERS = [Alarm, Dashboard, LogGroup]
