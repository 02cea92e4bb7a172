"""Places where moto disagrees with AWS in ways our stacks meet; each fix says what AWS does."""

from __future__ import annotations

import functools
import json

from moto.core import parse as moto_parse
from moto.core import responses as moto_responses
from moto.core.exceptions import ServiceException
from moto.rds import models as rds_models
from moto.rds import utils as rds_utils
from moto.s3 import models as s3_models

from rentaliq.local import kms_fixes, rds_rules


def install() -> None:
    # AWS accepts a maintenance window that starts when the backup window ends (the spec's 03:00-04:00 and
    # sun:04:00-sun:05:00); moto counts touching windows as overlapping. Only a real overlap refuses.
    original_overlap = rds_utils.get_overlap_between_two_date_ranges

    def overlap_seconds(*ranges):
        return original_overlap(*ranges) - 1

    rds_utils.get_overlap_between_two_date_ranges = overlap_seconds

    # A target bucket with ACLs disabled (BucketOwnerEnforced) gets log delivery through its bucket policy,
    # which AWS evaluates at delivery time; CDK's templates (source bucket first, then the target's policy
    # naming it) rely on that. moto demands the policy before PutBucketLogging; relax it for that case.
    original_policy_check = s3_models.FakeBucket._log_permissions_enabled_policy

    def log_permissions_enabled_policy(target_bucket, target_prefix):
        rule = getattr(target_bucket, "ownership_rule", None) or {}
        ownership = rule.get("ObjectOwnership") if isinstance(rule, dict) else str(rule)
        return ownership == "BucketOwnerEnforced" or original_policy_check(target_bucket, target_prefix)

    s3_models.FakeBucket._log_permissions_enabled_policy = staticmethod(log_permissions_enabled_policy)

    # moto's RDS ignores Performance Insights; keep what the caller asked for and report it back.
    original_init = rds_models.DBInstance.__init__

    def init(self, backend, **kwargs):
        original_init(self, backend, **kwargs)
        self.enable_performance_insights = bool(kwargs.get("enable_performance_insights") or False)
        self.performance_insights_retention_period = kwargs.get("performance_insights_retention_period") or (7 if self.enable_performance_insights else None)

    rds_models.DBInstance.__init__ = init
    rds_models.DBInstance.performance_insights_enabled = property(lambda self: getattr(self, "enable_performance_insights", False))

    install_managed_policies()
    install_timestamp_validation()
    rds_rules.install()
    install_intelligent_tiering()
    install_dashboard_tags()
    kms_fixes.install()


AWS_MANAGED_POLICIES = ("AmazonRDSEnhancedMonitoringRole",)
"""The AWS-managed policies RentalIQ stacks attach; the local cloud server carries them (see ``carry``)."""

_carried: tuple[str, ...] = ()


def carry(*names: str) -> None:
    """Make these AWS-managed policies exist in IAM backends created from now on (the local cloud server).

    They exist in every AWS account, and our stacks attach them; without moto's
    ``iam.load_aws_managed_policies`` setting moto would have none, and with it all 1,582 of moto 5.2.5's copies.
    """
    global _carried
    _carried = tuple(dict.fromkeys((*_carried, *names)))


@functools.cache
def _managed_policy_documents() -> dict[str, dict]:
    """moto's 4.7 MB copy of the AWS-managed policies, parsed once per process and only when first needed."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def install_managed_policies() -> None:
    """moto's ``_init_aws_policies`` parses the whole policy file for every IAM backend (one per account);
    this one honours moto's setting (all policies when ``load_aws_managed_policies`` is on, as moto does),
    adds only the policies ``carry`` names otherwise, and parses the file at most once per process."""
    from moto import settings as moto_settings
    from moto.iam import models as iam_models

    def init_aws_policies(self):
        wanted = None if moto_settings.load_iam_aws_managed_policies() else _carried
        if wanted == ():
            return []
        data = _managed_policy_documents()
        names = data.keys() if wanted is None else [name for name in wanted if name in data]
        return [iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data[name]) for name in names]

    iam_models.IAMBackend._init_aws_policies = init_aws_policies


def install_intelligent_tiering() -> None:
    """moto answers S3 Intelligent-Tiering calls with 200 and stores nothing; keep the configurations.

    The configuration document is stored as sent and returned as is, which is all GET/LIST need.
    """
    import re

    from moto.s3 import responses as s3_responses
    from moto.s3.exceptions import S3ClientError

    class NoSuchConfiguration(S3ClientError):
        code = 404

        def __init__(self) -> None:
            super().__init__("NoSuchConfiguration", "The specified configuration does not exist.")

    def configs(bucket) -> dict[str, str]:
        if not hasattr(bucket, "rentaliq_intelligent_tiering"):
            bucket.rentaliq_intelligent_tiering = {}
        return bucket.rentaliq_intelligent_tiering

    def element(body: str) -> str:
        body = re.sub(r"^\s*<\?xml[^>]*\?>", "", body).strip()
        return re.sub(r"<IntelligentTieringConfiguration[^>]*>", "<IntelligentTieringConfiguration>", body, count=1)

    namespace = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    original_get, original_put, original_delete = (
        s3_responses.S3Response._bucket_response_get,
        s3_responses.S3Response._bucket_response_put,
        s3_responses.S3Response._bucket_response_delete,
    )

    def first(value):
        return value[0] if isinstance(value, list) else value

    def get(self, bucket_name, querystring):
        if "intelligent-tiering" not in querystring:
            return original_get(self, bucket_name, querystring)
        stored = configs(self.backend.get_bucket(bucket_name))
        if "id" in querystring:
            config_id = first(querystring["id"])
            if config_id not in stored:
                raise NoSuchConfiguration()
            return 200, {}, stored[config_id].replace("<IntelligentTieringConfiguration>", f"<IntelligentTieringConfiguration {namespace}>", 1)
        body = "".join(stored.values())
        return (
            200,
            {},
            (
                f"<ListBucketIntelligentTieringConfigurationsOutput {namespace}><IsTruncated>false</IsTruncated>"
                f"{body}</ListBucketIntelligentTieringConfigurationsOutput>"
            ),
        )

    def put(self, request, bucket_name, querystring):
        if "intelligent-tiering" not in querystring:
            return original_put(self, request, bucket_name, querystring)
        body = self.body.decode() if isinstance(self.body, bytes) else self.body
        configs(self.backend.get_bucket(bucket_name))[first(querystring["id"])] = element(body)
        return 200, {}, ""

    def delete(self, bucket_name, querystring):
        if "intelligent-tiering" not in querystring:
            return original_delete(self, bucket_name, querystring)
        if configs(self.backend.get_bucket(bucket_name)).pop(first(querystring["id"]), None) is None:
            raise NoSuchConfiguration()
        return 204, {}, ""

    s3_responses.S3Response._bucket_response_get = get
    s3_responses.S3Response._bucket_response_put = put
    s3_responses.S3Response._bucket_response_delete = delete


class InvalidTimestamp(ServiceException):
    """A malformed timestamp parameter: AWS answers 400 InvalidParameterValue, moto raised a ValueError (a 500)."""

    code = "InvalidParameterValue"


def install_timestamp_validation() -> None:
    """Every request parser (query, JSON, REST) that reads timestamps answers a malformed one with a 400.

    moto parses parameters before the action runs, outside the handler that turns a ServiceException into
    AWS's error response, so the dispatch answers that error itself, serialized as the action's would be.
    """
    for parser in vars(moto_parse).values():
        if isinstance(parser, type) and "_parse_timestamp" in vars(parser):
            parser._parse_timestamp = _validated(parser._parse_timestamp)
    original_dispatch = moto_responses.BaseResponse._dispatch

    @functools.wraps(original_dispatch)
    def dispatch(self, request, full_url=None, headers=None):
        try:
            self.setup_class(request, full_url, headers)
        except InvalidTimestamp as error:
            status, response_headers, body = self.serialized(moto_responses.ActionResult(error))
            response_headers["status"] = status
            return status, response_headers, body
        return self.call_action()

    moto_responses.BaseResponse._dispatch = dispatch


def _validated(original):
    @functools.wraps(original)
    def parse_timestamp(self, shape, *args, **kwargs):
        try:
            return original(self, shape, *args, **kwargs)
        except ValueError as error:
            raise InvalidTimestamp(f"Invalid timestamp for {shape.name}: {error}; use ISO 8601, e.g. 2026-11-30T01:02:03Z") from None

    return parse_timestamp


def install_dashboard_tags() -> None:
    """CloudWatch tags dashboards (CloudFormation's ``AWS::CloudWatch::Dashboard`` has ``Tags``); moto 5.2.5's
    TagResource knows only alarms, and DeleteDashboards leaves the tags behind."""
    from moto.cloudwatch import models as cw
    from moto.cloudwatch.exceptions import ResourceNotFoundException

    def tag_resource(self: cw.CloudWatchBackend, arn: str, tags: dict[str, str]) -> None:
        known = {alarm.alarm_arn for alarm in self.alarms.values()} | {d.arn for d in self.dashboards.values()}
        if arn not in known:
            raise ResourceNotFoundException
        self.tagger.tag_resource(arn, self.tagger.convert_dict_to_tags_input(tags))

    original_delete = cw.CloudWatchBackend.delete_dashboards

    def delete_dashboards(self: cw.CloudWatchBackend, dashboards: list[str]) -> str | None:
        arns = [self.dashboards[name].arn for name in dashboards if name in self.dashboards]
        error = original_delete(self, dashboards)
        if error is None:
            for arn in arns:
                self.tagger.delete_all_tags_for_resource(arn)
        return error

    cw.CloudWatchBackend.tag_resource = tag_resource  # type: ignore[method-assign]
    cw.CloudWatchBackend.delete_dashboards = delete_dashboards  # type: ignore[method-assign]
