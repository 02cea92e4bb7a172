"""The conformance audit: read a live environment back through the AWS APIs and compare it with its spec.

``verify(target, spec)`` returns one :class:`Check` per audited value. Expected values come from the spec,
from :mod:`rentaliq.naming` and from the constants the stacks are built from; actual values come only from
public AWS APIs through ``target.client``, so the same audit runs against the local cloud and a real account.

Statuses:

- ``pass``: the live value is what the spec says;
- ``fail``: it differs, the resource is missing, or it could not be read (the detail says why);
- ``not-checkable``: the endpoint cannot answer the API (it reports the operation as not implemented, or
  answers in a way no implementation of the API would); the detail gives the reason. Never a pass.

Secret values never appear in a check: checks that compare them say ``matches`` or ``differs``.
This module prints nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from botocore.parsers import ResponseParserError

from rentaliq import naming
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.contract import API_KEY_PARAMETERS, DB_PARAMETERS, GIB, OUTPUT_KEYS, READ_SECRET_ACTIONS, SECRET_OUTPUTS

Status = Literal["pass", "fail", "not-checkable"]
PASS: Status = "pass"
FAIL: Status = "fail"
NOT_CHECKABLE: Status = "not-checkable"

# Areas, in the order the audit runs them.
# What an API call can raise that is an answer about the call (as opposed to "no endpoint at all").
API_ERRORS = (ClientError, BotoCoreError, ResponseParserError)
# Answers that say nothing about the environment, only that the caller's credentials don't work: stop at once.
CREDENTIAL_ERRORS = ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
                     "AuthFailure", "SignatureDoesNotMatch", "InvalidAccessKeyId")

STACK, RDS, S3, SECRETS, IAM, EC2, CLOUDWATCH = "Stack", "RDS", "S3", "Secrets", "IAM", "EC2", "CloudWatch"
AREAS = (STACK, RDS, S3, SECRETS, IAM, EC2, CLOUDWATCH)

# DESIGN.md "Secrets": the JSON keys of each secret, kept compatible with existing RentalIQ services.
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "db/credentials": ("username", "password", "engine", "host", "port", "dbname", "dbInstanceIdentifier"),
    "db/connection-string": ("DATABASE_URL", "JDBC_URL"),
    "api/keys": tuple(API_KEY_PARAMETERS),
    "s3/config": ("bucket_name", "bucket_arn", "region"),
}
SECRET_VALUE_KEYS = {"db/credentials": ("password",), "db/connection-string": ("DATABASE_URL",), "api/keys": tuple(API_KEY_PARAMETERS)}

# Fixed by the spec itself (ARCHITECTURE.md), the same in every environment.
ENGINE = "postgres"
BACKUP_TAG = {"Backup": "true"}  # DESIGN.md: Backup=true on data stores
TAG_KEYS_WE_MANAGE = ("Project", "Environment", "ManagedBy", "Owner", "Application", "Critical", "CostCenter", "Backup")
ANYWHERE = "0.0.0.0/0"
APP_PUBLIC_PORTS = (443, 80)  # app SG: HTTPS and HTTP in from, and out to, the internet
SSE_S3 = "AES256"
TLS_QUERY = {"sslmode": "require"}
LOG_DELIVERY_PRINCIPAL = "logging.s3.amazonaws.com"
MONITORING_PRINCIPAL = "monitoring.rds.amazonaws.com"
ENHANCED_MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"
RDS_NAMESPACE, ALARM_DIMENSION = "AWS/RDS", "DBInstanceIdentifier"
SECRET_ARN_RESOURCE = "secretsmanager:{region}:{account}:secret:{prefix}*"
# An Id no configuration has: asking for it tells an endpoint that implements the API from one that doesn't.
PROBE_ID = "rentaliq-verify-probe"


@dataclass(frozen=True)
class AlarmSpec:
    what: str  # naming.alarm(env, what)
    metric: str
    statistic: str
    comparison: str
    threshold: Callable[[EnvironmentSpec], float]


# infra/monitoring.py: the spec's high-CPU alarm plus low free storage and high connections.
ALARMS = (
    AlarmSpec("high-cpu", "CPUUtilization", "Average", "GreaterThanThreshold", lambda s: s.monitoring.cpu_threshold_percent),
    AlarmSpec("low-free-storage", "FreeStorageSpace", "Minimum", "LessThanThreshold", lambda s: s.monitoring.free_storage_threshold_gib * GIB),
    AlarmSpec("high-connections", "DatabaseConnections", "Maximum", "GreaterThanThreshold", lambda s: s.monitoring.connections_threshold),
)


@dataclass(frozen=True)
class Check:
    area: str
    name: str
    expected: Any
    actual: Any
    status: Status
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary(checks: list[Check]) -> dict[str, int]:
    return {
        "passed": sum(c.status == PASS for c in checks),
        "failed": sum(c.status == FAIL for c in checks),
        "not_checkable": sum(c.status == NOT_CHECKABLE for c in checks),
    }


class VerifyError(RuntimeError):
    """The audit could not talk to the target at all (no endpoint, no credentials); nothing was checked."""


def verify(target: Target, spec: EnvironmentSpec) -> list[Check]:
    """Audit the live environment ``spec`` describes; one Check per value, in area order."""
    return _Audit(target, spec).run()


# --------------------------------------------------------------------------------------------- helpers


class _Recorded(Exception):
    """A read failed and its check is recorded; the checks that needed the value are skipped."""


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _tags(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list or []}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _policy_document(document: Any) -> dict[str, Any]:
    """IAM answers URL-encoded JSON; boto3 usually decodes it already."""
    if isinstance(document, str):
        return json.loads(unquote(document))
    return document or {}


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return _as_list(document.get("Statement"))


def _principals(statement: dict[str, Any], kind: str) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in _as_list(principal.get(kind))]
    return []


def _sg_rules(permissions: list[dict[str, Any]]) -> list[str]:
    """Each rule as ``proto port(s) <- peer``: ``tcp 443 0.0.0.0/0``, ``tcp 5432 sg-…``, ``all all 0.0.0.0/0``."""
    rules = set()
    for perm in permissions:
        proto = perm.get("IpProtocol")
        proto = "all" if proto in ("-1", -1) else str(proto)
        low, high = perm.get("FromPort"), perm.get("ToPort")
        ports = "all" if proto == "all" or low is None else str(low) if low == high else f"{low}-{high}"
        peers = [r["CidrIp"] for r in perm.get("IpRanges", [])]
        peers += [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])]
        peers += [g["GroupId"] for g in perm.get("UserIdGroupPairs", [])]
        peers += [p["PrefixListId"] for p in perm.get("PrefixListIds", [])]
        rules.update(f"{proto} {ports} {peer}" for peer in peers)
    return sorted(rules)


def _rule(port: int | None, peer: str) -> str:
    return f"all all {peer}" if port is None else f"tcp {port} {peer}"


# ----------------------------------------------------------------------------------------------- audit


class _Audit:
    def __init__(self, target: Target, spec: EnvironmentSpec) -> None:
        self.target, self.spec = target, spec
        self.env = spec.name.value
        self.db = spec.database
        self.partition = _partition(spec.region)
        self.checks: list[Check] = []
        self.instance: dict[str, Any] | None = None
        self.vpc_id: str | None = None
        self.secret_arns: dict[str, str] = {}
        self.policy_arn: str | None = None
        self._sgs: dict[str, dict[str, Any] | None] = {}
        self._vpcs: list[dict[str, Any]] = []
        self._outputs: dict[str, str | None] | None = None
        self._area = STACK

    def run(self) -> list[Check]:
        for area, read in ((STACK, self._stack), (RDS, self._rds), (S3, self._s3), (SECRETS, self._secrets), (IAM, self._iam),
                           (EC2, self._ec2), (CLOUDWATCH, self._cloudwatch), (STACK, self._check_outputs)):
            self._area = area
            with self._section(read.__name__.strip("_")):
                read()
        order = {area: i for i, area in enumerate(AREAS)}
        return sorted(self.checks, key=lambda c: order.get(c.area, len(order)))  # stable: order within an area kept

    # -------------------------------------------------------------------------------------- recording

    def add(self, area: str, name: str, expected: Any, actual: Any, ok: bool | None = None, detail: str = "") -> bool:
        passed = (expected == actual) if ok is None else ok
        self.checks.append(Check(area, name, expected, actual, PASS if passed else FAIL, detail))
        return passed

    def not_checkable(self, area: str, name: str, expected: Any, reason: str) -> None:
        self.checks.append(Check(area, name, expected, None, NOT_CHECKABLE, reason))

    def tags(self, area: str, name: str, expected: dict[str, str], tag_list: list[dict[str, str]] | None) -> None:
        """Every expected tag with its value, and none of the tags we manage beyond those."""
        actual = _tags(tag_list)
        shown = {k: v for k, v in actual.items() if k in expected or k in TAG_KEYS_WE_MANAGE}
        wrong = sorted(k for k in expected if actual.get(k) != expected[k])
        extra = sorted(k for k in shown if k not in expected)
        detail = "; ".join(part for part in (f"missing or different: {', '.join(wrong)}" if wrong else "",
                                             f"unexpected: {', '.join(extra)}" if extra else "") if part)
        self.add(area, f"{name} tags", dict(sorted(expected.items())), dict(sorted(shown.items())), ok=not wrong and not extra, detail=detail)

    @contextmanager
    def _section(self, label: str) -> Iterator[None]:
        """Run one group of checks; a failed read skips the rest of the group, never the audit."""
        try:
            yield
        except _Recorded:
            pass
        except VerifyError:
            raise
        except (EndpointConnectionError, NoCredentialsError) as error:
            raise VerifyError(f"cannot reach {self.target.name} ({self.target.endpoint_url or self.spec.region}): {error}") from None
        except Exception as error:  # noqa: BLE001 - an answer we did not expect is a failed check, not a crash
            # Secret areas hold values that an exception message could quote: name the type only there.
            message = "" if self._area == SECRETS else f": {' '.join(str(error).split())[:200]}"
            self.add(self._area, f"{label} (audit error)", "a readable answer", None, ok=False, detail=f"{type(error).__name__}{message}")

    def _unsupported(self, operation: str, error: Exception) -> str | None:
        """The reason the endpoint cannot answer ``operation``, or None if the error is a real answer."""
        if isinstance(error, ClientError):
            err = error.response.get("Error", {})
            code, message = str(err.get("Code", "")), str(err.get("Message", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if (code in ("NotImplemented", "NotImplementedException", "NotImplementedError", "UnsupportedOperation", "InvalidAction")
                    or status == 501 or "not implemented" in message.lower() or "not yet implemented" in message.lower()):
                return f"{operation}: the endpoint does not implement it ({code or status}: {message})".strip()
            if self.target.is_local and (status == 500 or code in ("500", "InternalError", "InternalFailure")):
                return f"{operation}: the local cloud answers HTTP 500 (not implemented there)"
        if isinstance(error, ResponseParserError) and self.target.is_local:
            return f"{operation}: the local cloud answers with an error page instead of an API response (not implemented there)"
        return None

    def call(self, area: str, name: str, expected: Any, service: str, operation: str, **params: Any) -> Any:
        """Call one API; on an error record ``name`` as fail (or not-checkable) and raise _Recorded."""
        try:
            response = getattr(self.target.client(service), operation)(**params)
        except (EndpointConnectionError, NoCredentialsError):
            raise
        except API_ERRORS as error:
            if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in CREDENTIAL_ERRORS:
                raise VerifyError(f"{operation}: {error.response['Error']['Code']}: the credentials for {self.target.name} were refused") from None
            reason = self._unsupported(operation, error)
            if reason:
                self.not_checkable(area, name, expected, reason)
            else:
                code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else type(error).__name__
                message = error.response.get("Error", {}).get("Message", "") if isinstance(error, ClientError) else str(error)
                self.add(area, name, expected, None, ok=False, detail=f"{operation}: {code}: {message}".rstrip(": "))
            raise _Recorded from None
        response.pop("ResponseMetadata", None)
        return response

    def paginate(self, area: str, name: str, expected: Any, service: str, operation: str, key: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        client = self.target.client(service)
        if not client.can_paginate(operation):
            return _as_list(self.call(area, name, expected, service, operation, **params).get(key))
        try:
            for page in client.get_paginator(operation).paginate(**params):
                items.extend(page.get(key, []))
        except (EndpointConnectionError, NoCredentialsError):
            raise
        except API_ERRORS:
            # Replay as a single call so the error is classified and recorded the same way.
            return _as_list(self.call(area, name, expected, service, operation, **params).get(key))
        return items

    def security_group(self, name: str) -> dict[str, Any] | None:
        if name not in self._sgs:
            filters = [{"Name": "group-name", "Values": [name]}]
            if self.vpc_id:
                filters.append({"Name": "vpc-id", "Values": [self.vpc_id]})
            groups = self.paginate(EC2, f"{name} exists", name, "ec2", "describe_security_groups", "SecurityGroups", Filters=filters)
            self._sgs[name] = groups[0] if len(groups) == 1 else None
        return self._sgs[name]

    # ------------------------------------------------------------------------------------------- RDS

    def _rds(self) -> None:
        db, env = self.db, self.env
        db_id = naming.db_instance_id(env)
        found = self.call(RDS, "instance exists", db_id, "rds", "describe_db_instances", DBInstanceIdentifier=db_id)["DBInstances"]
        if not self.add(RDS, "instance exists", db_id, found[0]["DBInstanceIdentifier"] if found else None):
            return
        inst = self.instance = found[0]
        add = self.add
        add(RDS, "instance class", db.instance_class, inst.get("DBInstanceClass"))
        add(RDS, "allocated storage (GiB)", db.allocated_storage_gib, inst.get("AllocatedStorage"))
        add(RDS, "max allocated storage (GiB)", db.max_allocated_storage_gib, inst.get("MaxAllocatedStorage"))
        add(RDS, "storage type", db.storage_type, inst.get("StorageType"))
        add(RDS, "Multi-AZ", db.multi_az, inst.get("MultiAZ"))
        add(RDS, "backup retention (days)", db.backup_retention_days, inst.get("BackupRetentionPeriod"))
        add(RDS, "backup window (UTC)", db.backup_window, inst.get("PreferredBackupWindow"))
        maintenance = inst.get("PreferredMaintenanceWindow")
        add(RDS, "maintenance window (UTC)", db.maintenance_window, maintenance,
            ok=isinstance(maintenance, str) and maintenance.lower() == db.maintenance_window.lower())
        add(RDS, "engine", ENGINE, inst.get("Engine"))
        version = str(inst.get("EngineVersion", ""))
        add(RDS, "engine version", db.engine_version, version or None,
            ok=version == db.engine_version or version.startswith(db.engine_version + "."),
            detail="" if "." in db.engine_version else f"any {db.engine_version}.x")
        add(RDS, "Performance Insights", db.performance_insights, bool(inst.get("PerformanceInsightsEnabled")))
        if db.performance_insights:
            add(RDS, "Performance Insights retention (days)", db.performance_insights_retention_days, inst.get("PerformanceInsightsRetentionPeriod"))
        add(RDS, "enhanced monitoring interval (s)", db.enhanced_monitoring_interval_s, inst.get("MonitoringInterval", 0))
        if db.enhanced_monitoring_interval_s:  # with monitoring off, a role ARN RDS still reports is harmless
            role_arn = inst.get("MonitoringRoleArn")
            add(RDS, "enhanced monitoring role", naming.rds_monitoring_role(), role_arn.rsplit("/", 1)[-1] if role_arn else None)
        add(RDS, "deletion protection", db.deletion_protection, inst.get("DeletionProtection"))
        add(RDS, "storage encrypted", True, inst.get("StorageEncrypted"))
        add(RDS, "publicly accessible", False, inst.get("PubliclyAccessible"))
        add(RDS, "copy tags to snapshots", True, inst.get("CopyTagsToSnapshot"))
        add(RDS, "auto minor version upgrade", db.auto_minor_version_upgrade, inst.get("AutoMinorVersionUpgrade"))
        add(RDS, "CloudWatch log exports", sorted(db.cloudwatch_log_exports), sorted(inst.get("EnabledCloudwatchLogsExports") or []))
        # RDS reports DbInstancePort 0 for instances outside a cluster; the endpoint's port is the listener then.
        port, source = inst.get("DbInstancePort"), "DbInstancePort"
        if not port:
            port, source = (inst.get("Endpoint") or {}).get("Port"), "Endpoint.Port"
        add(RDS, "port", db.port, port, detail=f"from {source}")
        add(RDS, "master username", db.master_username, inst.get("MasterUsername"))
        add(RDS, "database name", db.database_name, inst.get("DBName"))
        add(RDS, "subnet group", naming.subnet_group(env), (inst.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"))
        subnets = (inst.get("DBSubnetGroup") or {}).get("Subnets") or []
        azs = sorted({s["SubnetAvailabilityZone"]["Name"] for s in subnets if s.get("SubnetAvailabilityZone")})
        add(RDS, "subnet group AZs", "at least 2", len(azs), ok=len(azs) >= 2, detail=", ".join(azs))
        if self.spec.network.existing is not None:
            add(RDS, "subnet group subnets", sorted(self.spec.network.existing.db_subnet_ids), sorted(s["SubnetIdentifier"] for s in subnets))
        self.tags(RDS, "instance", {**self.spec.resource_tags(), **BACKUP_TAG}, inst.get("TagList"))
        with self._section("rds security groups"):
            self._rds_security_groups(inst)
        with self._section("rds parameters"):
            self._rds_parameters(inst)

    def _rds_security_groups(self, inst: dict[str, Any]) -> None:
        self._find_vpc_id()
        name = naming.rds_security_group(self.env)
        group = self.security_group(name)
        attached = sorted(g["VpcSecurityGroupId"] for g in inst.get("VpcSecurityGroups", []) if g.get("Status", "active") == "active")
        expected = [group["GroupId"]] if group else [name]
        self.add(RDS, "security groups", expected, attached, ok=group is not None and attached == expected,
                 detail=f"{name}" + ("" if group else " not found"))

    def _rds_parameters(self, inst: dict[str, Any]) -> None:
        name = naming.parameter_group(self.env)
        groups = [g["DBParameterGroupName"] for g in inst.get("DBParameterGroups", [])]
        if not self.add(RDS, "parameter group", [name], groups):
            return
        params = self.paginate(RDS, "parameters readable", name, "rds", "describe_db_parameters", "Parameters", DBParameterGroupName=name)
        values = {p["ParameterName"]: p.get("ParameterValue") for p in params}
        for param, wanted in DB_PARAMETERS.items():
            actual = values.get(param)
            if param == "shared_preload_libraries":
                loaded = [lib.strip() for lib in (actual or "").split(",") if lib.strip()]
                needed = [lib.strip() for lib in wanted.split(",")]
                self.add(RDS, f"parameter {param}", f"includes {wanted}", actual, ok=all(lib in loaded for lib in needed))
            else:
                self.add(RDS, f"parameter {param}", wanted, actual)

    # ----------------------------------------------------------------------------------------- stack

    def _stack(self) -> None:
        name = self.spec.stack_name
        stacks = self.call(STACK, "stack exists", name, "cloudformation", "describe_stacks", StackName=name)["Stacks"]
        live = [s for s in stacks if s.get("StackStatus") != "DELETE_COMPLETE"]
        if not self.add(STACK, "stack exists", name, live[0]["StackName"] if live else None):
            return
        stack = live[0]
        status = stack.get("StackStatus", "")
        self.add(STACK, "status", "CREATE_COMPLETE or UPDATE_COMPLETE", status,
                 ok=status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"))
        with self._section("deletion policy"):
            # database.final_snapshot is a CloudFormation DeletionPolicy: only the stack's template holds it.
            check, expected = "database deletion policy (final snapshot)", "Snapshot" if self.db.final_snapshot else "Delete"
            resources = self.paginate(STACK, check, expected, "cloudformation", "list_stack_resources", "StackResourceSummaries", StackName=name)
            logical = [r["LogicalResourceId"] for r in resources
                       if r.get("ResourceType") == "AWS::RDS::DBInstance" and r.get("PhysicalResourceId") == naming.db_instance_id(self.env)]
            body = self.call(STACK, check, expected, "cloudformation", "get_template", StackName=name)["TemplateBody"]
            template = json.loads(body) if isinstance(body, str) else body
            actual = template.get("Resources", {}).get(logical[0], {}).get("DeletionPolicy", "Delete") if logical else None
            self.add(STACK, check, expected, actual, detail="" if logical else "no DB instance in the stack")
        self._outputs = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])}

    def _live_outputs(self) -> dict[str, str | None]:
        """What each stack output must be, from the live resources the other areas read (unknown ones left out)."""
        env, live = self.env, {}
        live["DbInstanceIdentifier"] = naming.db_instance_id(env)
        endpoint = (self.instance or {}).get("Endpoint")
        if endpoint:
            live["DbEndpoint"], live["DbPort"] = endpoint.get("Address"), str(endpoint.get("Port"))
        bucket = naming.files_bucket(env)
        live["FilesBucketName"], live["FilesBucketArn"] = bucket, f"arn:{self.partition}:s3:::{bucket}"
        logs = naming.access_logs_bucket() if self.spec.storage.access_logs else None
        live["AccessLogsBucketName"] = logs
        live["AccessLogsBucketArn"] = f"arn:{self.partition}:s3:::{logs}" if logs else None
        for logical, key in SECRET_OUTPUTS.items():
            if self.secret_arns.get(logical):
                live[key] = self.secret_arns[logical]
        for key, name in (("RdsSecurityGroupId", naming.rds_security_group(env)), ("AppSecurityGroupId", naming.app_security_group(env))):
            if self._sgs.get(name):
                live[key] = self._sgs[name]["GroupId"]
        if self.policy_arn:
            live["ReadSecretsPolicyArn"] = self.policy_arn
        if self.vpc_id:
            live["VpcId"] = self.vpc_id
        return live

    def _check_outputs(self) -> None:
        """Stack outputs against the live resources (runs last, when the other areas have read them)."""
        if self._outputs is None:
            return
        live = self._live_outputs()
        for key in OUTPUT_KEYS:
            if key in live:
                self.add(STACK, f"output {key}", live[key], self._outputs.get(key))

    # -------------------------------------------------------------------------------------------- S3

    def _s3(self) -> None:
        storage, env = self.spec.storage, self.env
        bucket = naming.files_bucket(env)
        self.bucket_common(bucket, {**self.spec.resource_tags(), **BACKUP_TAG})
        with self._section("versioning"):
            status = self.call(S3, f"{bucket} versioning", "Enabled", "s3", "get_bucket_versioning", Bucket=bucket).get("Status")
            if storage.versioning:
                self.add(S3, f"{bucket} versioning", "Enabled", status)
            else:
                self.add(S3, f"{bucket} versioning", "off", status or "off", ok=status in (None, "Suspended"))
        with self._section("lifecycle"):
            self._lifecycle(bucket)
        with self._section("intelligent tiering"):
            self._intelligent_tiering(bucket)
        with self._section("logging"):
            logs = naming.access_logs_bucket() if storage.access_logs else None
            enabled = self.call(S3, f"{bucket} access logging", logs, "s3", "get_bucket_logging", Bucket=bucket).get("LoggingEnabled")
            target_bucket = enabled.get("TargetBucket") if enabled else None
            self.add(S3, f"{bucket} access logging target", logs, target_bucket,
                     detail=f"prefix {enabled.get('TargetPrefix', '')!r}" if enabled else "")
        if storage.access_logs:
            logs = naming.access_logs_bucket()
            with self._section("access logs bucket"):
                self.bucket_common(logs, self.spec.resource_tags())
                self._log_delivery_policy(logs, bucket)

    def bucket_common(self, bucket: str, tags: dict[str, str]) -> None:
        self.call(S3, f"{bucket} exists", bucket, "s3", "head_bucket", Bucket=bucket)
        self.add(S3, f"{bucket} exists", bucket, bucket)
        with self._section("location"):
            location = self.call(S3, f"{bucket} region", self.spec.region, "s3", "get_bucket_location", Bucket=bucket).get("LocationConstraint")
            self.add(S3, f"{bucket} region", self.spec.region, location or "us-east-1")  # S3 reports us-east-1 as no constraint
        with self._section("encryption"):
            rules = self.call(S3, f"{bucket} default encryption", SSE_S3, "s3", "get_bucket_encryption", Bucket=bucket)
            algorithms = sorted({r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
                                 for r in rules.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])} - {None})
            self.add(S3, f"{bucket} default encryption", SSE_S3, ", ".join(algorithms) or None)
        with self._section("public access block"):
            block = self.call(S3, f"{bucket} public access block", "all four on", "s3", "get_public_access_block", Bucket=bucket)
            config = block.get("PublicAccessBlockConfiguration", {})
            flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            off = [f for f in flags if config.get(f) is not True]
            self.add(S3, f"{bucket} public access block", "all four on", "all four on" if not off else f"off: {', '.join(off)}", ok=not off)
        with self._section("policy"):
            self._tls_policy(bucket)
        with self._section("tags"):
            tag_set = self.call(S3, f"{bucket} tags", tags, "s3", "get_bucket_tagging", Bucket=bucket).get("TagSet")
            self.tags(S3, bucket, tags, tag_set)

    def _bucket_policy(self, bucket: str, name: str, expected: str) -> list[dict[str, Any]]:
        policy = self.call(S3, name, expected, "s3", "get_bucket_policy", Bucket=bucket).get("Policy") or "{}"
        return _statements(json.loads(policy))

    def _tls_policy(self, bucket: str) -> None:
        name, expected = f"{bucket} policy denies non-TLS", "Deny s3:* when aws:SecureTransport is false"
        arn = f"arn:{self.partition}:s3:::{bucket}"
        found = False
        for st in self._bucket_policy(bucket, name, expected):
            condition = (st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
            if (st.get("Effect") == "Deny" and str(condition).lower() == "false"
                    and "s3:*" in _as_list(st.get("Action")) and "*" in _principals(st, "AWS")
                    and {arn, f"{arn}/*"} <= set(_as_list(st.get("Resource")))):
                found = True
        self.add(S3, name, expected, expected if found else "no such statement", ok=found)

    def _log_delivery_policy(self, logs: str, source: str) -> None:
        name = f"{logs} policy allows log delivery"
        expected = f"Allow {LOG_DELIVERY_PRINCIPAL} s3:PutObject"
        found = False
        for st in self._bucket_policy(logs, name, expected):
            if (st.get("Effect") == "Allow" and LOG_DELIVERY_PRINCIPAL in _principals(st, "Service")
                    and any(a in ("s3:PutObject", "s3:*") for a in _as_list(st.get("Action")))):
                found = True
        self.add(S3, name, expected, expected if found else "no such statement", ok=found, detail=f"for {source}")

    def _lifecycle(self, bucket: str) -> None:
        life = self.spec.storage.lifecycle
        rules = self.call(S3, f"{bucket} lifecycle", "rules", "s3", "get_bucket_lifecycle_configuration", Bucket=bucket).get("Rules", [])

        def applies_to_all(rule: dict[str, Any]) -> bool:
            filt = rule.get("Filter") or {}
            return rule.get("Status") == "Enabled" and not (rule.get("Prefix") or filt.get("Prefix") or filt.get("Tag") or filt.get("And"))

        def days(values: set[int]) -> int | list[int] | None:
            return next(iter(values)) if len(values) == 1 else (sorted(values) or None)

        whole = [r for r in rules if applies_to_all(r)]
        transitions = sorted((t.get("Days"), t.get("StorageClass")) for r in whole for t in r.get("Transitions", []))
        expected = [(life.infrequent_access_after_days, "STANDARD_IA")]
        if life.intelligent_tiering_after_days is not None:
            expected.append((life.intelligent_tiering_after_days, "INTELLIGENT_TIERING"))
        expected.append((life.glacier_after_days, "GLACIER"))
        show = lambda pairs: [f"{cls} after {n} d" for n, cls in pairs]  # noqa: E731
        self.add(S3, f"{bucket} lifecycle transitions", show(sorted(expected)), show(transitions))
        current = {r["Expiration"]["Days"] for r in whole if (r.get("Expiration") or {}).get("Days")}
        self.add(S3, f"{bucket} lifecycle expiry of current objects (days)", life.expire_current_after_days, days(current))
        noncurrent = {r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in whole
                      if (r.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")}
        self.add(S3, f"{bucket} lifecycle expiry of old versions (days)", life.expire_noncurrent_after_days, days(noncurrent))
        aborts = {r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in whole if r.get("AbortIncompleteMultipartUpload")}
        self.add(S3, f"{bucket} lifecycle abort incomplete uploads (days)", life.abort_incomplete_multipart_after_days, days(aborts))

    def _intelligent_tiering(self, bucket: str) -> None:
        storage = self.spec.storage
        name = f"{bucket} intelligent-tiering archive tiers"
        expected = ({"ARCHIVE_ACCESS": storage.archive_access_after_days, "DEEP_ARCHIVE_ACCESS": storage.deep_archive_access_after_days}
                    if storage.intelligent_tiering else None)
        configs = self.call(S3, name, expected, "s3", "list_bucket_intelligent_tiering_configurations", Bucket=bucket).get(
            "IntelligentTieringConfigurationList") or []
        if not configs:
            # An empty list is a real answer only from an endpoint that implements the API: it then refuses an
            # Id that doesn't exist. An endpoint that accepts such an Id without returning a configuration
            # has no intelligent-tiering support, whatever it said to the list call.
            try:
                probe = self.target.client("s3").get_bucket_intelligent_tiering_configuration(Bucket=bucket, Id=PROBE_ID)
            except (EndpointConnectionError, NoCredentialsError):
                raise
            except API_ERRORS as error:
                code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
                if code != "NoSuchConfiguration":  # the answer of an endpoint that implements the API
                    reason = self._unsupported("GetBucketIntelligentTieringConfiguration", error)
                    if reason:
                        self.not_checkable(S3, name, expected, reason)
                    else:
                        self.add(S3, name, expected, None, ok=False, detail=f"GetBucketIntelligentTieringConfiguration: {code or type(error).__name__}")
                    return
            else:
                if not (probe.get("IntelligentTieringConfiguration") or {}).get("Id"):
                    self.not_checkable(S3, name, expected, "the endpoint accepts intelligent-tiering configurations but never returns "
                                       "them (GetBucketIntelligentTieringConfiguration answers an unknown Id with an empty document)")
                    return
        enabled = [c for c in configs if c.get("Status") == "Enabled" and not c.get("Filter")]
        tiers = {t["AccessTier"]: t["Days"] for c in enabled for t in c.get("Tierings", [])} or None
        self.add(S3, name, expected, tiers, detail=", ".join(c.get("Id", "") for c in configs))

    # --------------------------------------------------------------------------------------- secrets

    def _secrets(self) -> None:
        values: dict[str, dict[str, Any]] = {}
        for logical in naming.SECRET_NAMES:
            with self._section(logical):
                values[logical] = self._secret(logical)
        with self._section("credentials"):
            self._credentials(values.get("db/credentials"))
        with self._section("connection string"):
            self._connection_string(values.get("db/connection-string"), values.get("db/credentials"))
        with self._section("api keys"):
            keys = values.get("api/keys")
            if keys is not None:
                empty = sorted(k for k in SECRET_KEYS["api/keys"] if k in keys and not (isinstance(keys[k], str) and keys[k]))
                self.add(SECRETS, f"{naming.secret_path(self.env, 'api/keys')} values set", "all set",
                         "all set" if not empty else f"empty: {', '.join(empty)}", ok=not empty)
        with self._section("s3 config"):
            self._s3_config(values.get("s3/config"))

    def _secret(self, logical: str) -> dict[str, Any]:
        path = naming.secret_path(self.env, logical)
        desc = self.call(SECRETS, f"{path} exists", path, "secretsmanager", "describe_secret", SecretId=path)
        deleted = desc.get("DeletedDate")
        self.add(SECRETS, f"{path} exists", path, desc.get("Name"), ok=desc.get("Name") == path and not deleted,
                 detail=f"scheduled for deletion on {deleted}" if deleted else "")
        self.secret_arns[logical] = desc.get("ARN")
        self.tags(SECRETS, path, self.spec.resource_tags(), desc.get("Tags"))
        raw = self.call(SECRETS, f"{path} keys", sorted(SECRET_KEYS[logical]), "secretsmanager", "get_secret_value", SecretId=path).get("SecretString")
        try:
            value = json.loads(raw or "")
        except ValueError:
            value = None  # the error message would quote the value: never show it
        if not isinstance(value, dict):
            self.add(SECRETS, f"{path} keys", sorted(SECRET_KEYS[logical]), None, ok=False, detail="the secret is not a JSON object")
            raise _Recorded
        self.add(SECRETS, f"{path} keys", sorted(SECRET_KEYS[logical]), sorted(value))
        return value

    def _credentials(self, creds: dict[str, Any] | None) -> None:
        if creds is None:
            return
        path, db = naming.secret_path(self.env, "db/credentials"), self.db
        endpoint = (self.instance or {}).get("Endpoint") or {}
        if self.instance is not None:
            self.add(SECRETS, f"{path} host", endpoint.get("Address"), creds.get("host"), detail="the instance's endpoint address")
            self.add(SECRETS, f"{path} port", endpoint.get("Port"), creds.get("port"), detail="the instance's endpoint port")
        port = creds.get("port")
        self.add(SECRETS, f"{path} port is a number", "number", type(port).__name__ if port is not None else None,
                 ok=isinstance(port, int) and not isinstance(port, bool))
        self.add(SECRETS, f"{path} dbInstanceIdentifier", naming.db_instance_id(self.env), creds.get("dbInstanceIdentifier"))
        self.add(SECRETS, f"{path} engine", ENGINE, creds.get("engine"))
        self.add(SECRETS, f"{path} username", db.master_username, creds.get("username"))
        self.add(SECRETS, f"{path} dbname", db.database_name, creds.get("dbname"))

    def _connection_string(self, conn: dict[str, Any] | None, creds: dict[str, Any] | None) -> None:
        if conn is None:
            return
        path, db = naming.secret_path(self.env, "db/connection-string"), self.db
        endpoint = (self.instance or {}).get("Endpoint") or {}
        where = f"{endpoint.get('Address')}:{endpoint.get('Port')}" if endpoint else None
        for key, scheme in (("DATABASE_URL", "postgresql"), ("JDBC_URL", "jdbc:postgresql")):
            url = conn.get(key)
            if not isinstance(url, str):
                continue
            try:
                parts = urlsplit(url.removeprefix("jdbc:"))
                host, port = parts.hostname, parts.port
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            except ValueError:
                self.add(SECRETS, f"{path} {key} parses", "a URL", "does not parse", ok=False)  # never show the URL: it holds the password
                continue
            actual_scheme = ("jdbc:" if url.startswith("jdbc:") else "") + parts.scheme
            self.add(SECRETS, f"{path} {key} scheme", scheme, actual_scheme,
                     ok=actual_scheme in (scheme, scheme.replace("postgresql", "postgres")))
            if where:
                self.add(SECRETS, f"{path} {key} host:port", where, f"{host}:{port}")
            self.add(SECRETS, f"{path} {key} database", db.database_name, unquote(parts.path.lstrip("/")) or None)
            self.add(SECRETS, f"{path} {key} sslmode", TLS_QUERY["sslmode"], query.get("sslmode"))
            if key == "DATABASE_URL":
                self.add(SECRETS, f"{path} {key} user", db.master_username, unquote(parts.username) if parts.username else None)
                if creds is not None:
                    same = parts.password is not None and unquote(parts.password) == creds.get("password")
                    self.add(SECRETS, f"{path} {key} password", "matches db/credentials", "matches" if same else "differs", ok=same,
                             detail="percent-decoded")
            else:
                self.add(SECRETS, f"{path} {key} holds no credentials", "no credentials",
                         "no credentials" if not (parts.username or parts.password or "password" in query or "user" in query) else "credentials",
                         ok=not (parts.username or parts.password or "password" in query or "user" in query))

    def _s3_config(self, config: dict[str, Any] | None) -> None:
        if config is None:
            return
        path, bucket = naming.secret_path(self.env, "s3/config"), naming.files_bucket(self.env)
        self.add(SECRETS, f"{path} bucket_name", bucket, config.get("bucket_name"))
        self.add(SECRETS, f"{path} bucket_arn", f"arn:{self.partition}:s3:::{bucket}", config.get("bucket_arn"))
        self.add(SECRETS, f"{path} region", self.spec.region, config.get("region"))

    # ------------------------------------------------------------------------------------------- IAM

    def _iam(self) -> None:
        with self._section("read secrets policy"):
            self._read_secrets_policy()
        if self.db.enhanced_monitoring_interval_s:
            with self._section("monitoring role"):
                self._monitoring_role()

    def _read_secrets_policy(self) -> None:
        name = naming.read_secrets_policy(self.env)
        policies = self.paginate(IAM, f"{name} exists", name, "iam", "list_policies", "Policies", Scope="Local")
        match = [p for p in policies if p.get("PolicyName") == name]
        if not self.add(IAM, f"{name} exists", name, match[0]["PolicyName"] if match else None):
            return
        policy = match[0]
        self.policy_arn = policy["Arn"]
        account = policy["Arn"].split(":")[4]
        version = self.call(IAM, f"{name} document", "readable", "iam", "get_policy_version",
                            PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])["PolicyVersion"]
        statements = _statements(_policy_document(version.get("Document")))
        allow = [s for s in statements if s.get("Effect") == "Allow"]
        actions = sorted({a for s in allow for a in _as_list(s.get("Action"))})
        resources = sorted({r for s in allow for r in _as_list(s.get("Resource"))})
        odd = [s for s in statements if s.get("Effect") != "Allow" or "NotAction" in s or "NotResource" in s or "Condition" in s]
        self.add(IAM, f"{name} actions", sorted(READ_SECRET_ACTIONS), actions,
                 detail=f"{len(odd)} statement(s) with Deny, NotAction, NotResource or Condition" if odd else "")
        resource = f"arn:{self.partition}:" + SECRET_ARN_RESOURCE.format(region=self.spec.region, account=account, prefix=naming.secrets_prefix(self.env))
        self.add(IAM, f"{name} resources", [resource], resources)

    def _monitoring_role(self) -> None:
        name = naming.rds_monitoring_role()
        role = self.call(IAM, f"{name} exists", name, "iam", "get_role", RoleName=name)["Role"]
        self.add(IAM, f"{name} exists", name, role.get("RoleName"))
        trust = _statements(_policy_document(role.get("AssumeRolePolicyDocument")))
        services = sorted({p for s in trust if s.get("Effect") == "Allow" and "sts:AssumeRole" in _as_list(s.get("Action"))
                           for p in _principals(s, "Service")})
        self.add(IAM, f"{name} trusted by", [MONITORING_PRINCIPAL], services)
        attached = self.paginate(IAM, f"{name} managed policies", None, "iam", "list_attached_role_policies", "AttachedPolicies", RoleName=name)
        arns = sorted(p["PolicyArn"] for p in attached)
        wanted = f"arn:{self.partition}:iam::aws:policy/{ENHANCED_MONITORING_POLICY}"
        self.add(IAM, f"{name} managed policies", [wanted], arns, ok=wanted in arns)
        self.tags(IAM, name, self.spec.resource_tags(), role.get("Tags"))
        if self.instance is not None:
            self.add(IAM, f"{name} used by the instance", role.get("Arn"), self.instance.get("MonitoringRoleArn"))

    # ------------------------------------------------------------------------------------------- EC2

    def _find_vpc_id(self) -> str | None:
        if self.vpc_id is None:
            existing = self.spec.network.existing
            if existing is not None:
                self.vpc_id = existing.vpc_id
            else:
                vpcs = self.paginate(EC2, f"{naming.vpc(self.env)} exists", naming.vpc(self.env), "ec2", "describe_vpcs", "Vpcs",
                                     Filters=[{"Name": "tag:Name", "Values": [naming.vpc(self.env)]}])
                self._vpcs = vpcs
                self.vpc_id = vpcs[0]["VpcId"] if len(vpcs) == 1 else None
        return self.vpc_id

    def _ec2(self) -> None:
        with self._section("vpc"):
            self._vpc()
        with self._section("security groups"):
            self._security_groups()

    def _vpc(self) -> None:
        net, env = self.spec.network, self.env
        name = naming.vpc(env)
        self._find_vpc_id()
        if net.existing is not None:
            vpcs = self.call(EC2, f"{net.existing.vpc_id} exists", net.existing.vpc_id, "ec2", "describe_vpcs", VpcIds=[net.existing.vpc_id])["Vpcs"]
            self.add(EC2, f"{net.existing.vpc_id} exists", net.existing.vpc_id, vpcs[0]["VpcId"] if vpcs else None)
            return
        vpcs = self._vpcs
        if not self.add(EC2, f"{name} exists", name, f"{len(vpcs)} VPC(s) named so" if len(vpcs) != 1 else name):
            return
        vpc = vpcs[0]
        self.add(EC2, f"{name} CIDR", net.vpc_cidr, vpc.get("CidrBlock"))
        self.tags(EC2, name, {**self.spec.resource_tags(), "Name": name}, vpc.get("Tags"))
        with self._section("subnets"):
            subnets = self.paginate(EC2, f"{name} availability zones", net.availability_zones, "ec2", "describe_subnets", "Subnets",
                                    Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}])
            azs = sorted({s["AvailabilityZone"] for s in subnets})
            self.add(EC2, f"{name} availability zones", net.availability_zones, len(azs), detail=", ".join(azs))
        with self._section("nat"):
            nats = self.paginate(EC2, f"{name} NAT gateways", net.nat_gateways, "ec2", "describe_nat_gateways", "NatGateways",
                                 Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}])
            live = [n for n in nats if n.get("State") in ("pending", "available")]
            self.add(EC2, f"{name} NAT gateways", net.nat_gateways, len(live))
        with self._section("endpoints"):
            endpoints = self.paginate(EC2, f"{name} S3 gateway endpoint", "present", "ec2", "describe_vpc_endpoints", "VpcEndpoints",
                                      Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}])
            s3_service = f"com.amazonaws.{self.spec.region}.s3"
            gateways = [e for e in endpoints if e.get("VpcEndpointType") == "Gateway" and e.get("ServiceName") == s3_service
                        and e.get("State", "available").lower() in ("available", "pending")]
            self.add(EC2, f"{name} S3 gateway endpoint", s3_service, gateways[0]["ServiceName"] if gateways else None)

    def _security_groups(self) -> None:
        env, port = self.env, self.db.port
        rds_name, app_name = naming.rds_security_group(env), naming.app_security_group(env)
        self._find_vpc_id()
        rds_sg, app_sg = self.security_group(rds_name), self.security_group(app_name)
        for name, group in ((rds_name, rds_sg), (app_name, app_sg)):
            detail = f"in {self.vpc_id}" if self.vpc_id else "VPC not found: looked up by name only"
            self.add(EC2, f"{name} exists", name, group.get("GroupName") if group else None, detail=detail)
            if group:
                self.tags(EC2, name, self.spec.resource_tags(), group.get("Tags"))
        rds_id = rds_sg["GroupId"] if rds_sg else rds_name
        app_id = app_sg["GroupId"] if app_sg else app_name
        if app_sg:
            self.add(EC2, f"{app_name} ingress", sorted(_rule(p, ANYWHERE) for p in APP_PUBLIC_PORTS), _sg_rules(app_sg.get("IpPermissions", [])))
            self.add(EC2, f"{app_name} egress", sorted([*(_rule(p, ANYWHERE) for p in APP_PUBLIC_PORTS), _rule(port, rds_id)]),
                     _sg_rules(app_sg.get("IpPermissionsEgress", [])), detail=f"{rds_id} is {rds_name}")
        if rds_sg:
            self.add(EC2, f"{rds_name} ingress", sorted([_rule(port, app_id), *(_rule(port, c) for c in self.db.allowed_cidrs)]),
                     _sg_rules(rds_sg.get("IpPermissions", [])), detail=f"{app_id} is {app_name}")
            self.add(EC2, f"{rds_name} egress", [_rule(None, ANYWHERE)], _sg_rules(rds_sg.get("IpPermissionsEgress", [])))

    # ------------------------------------------------------------------------------------ CloudWatch

    def _cloudwatch(self) -> None:
        env, mon = self.env, self.spec.monitoring
        names = [naming.alarm(env, a.what) for a in ALARMS]
        alarms = self.paginate(CLOUDWATCH, "alarms readable", names, "cloudwatch", "describe_alarms", "MetricAlarms", AlarmNames=names)
        by_name = {a["AlarmName"]: a for a in alarms}
        db_id = naming.db_instance_id(env)
        for spec_alarm, name in zip(ALARMS, names):
            alarm = by_name.get(name)
            if not mon.alarms:
                self.add(CLOUDWATCH, f"{name} absent", None, name if alarm else None, detail="monitoring.alarms is off")
                continue
            if not self.add(CLOUDWATCH, f"{name} exists", name, alarm["AlarmName"] if alarm else None):
                continue
            self.add(CLOUDWATCH, f"{name} metric", f"{RDS_NAMESPACE} {spec_alarm.metric}", f"{alarm.get('Namespace')} {alarm.get('MetricName')}")
            self.add(CLOUDWATCH, f"{name} statistic", spec_alarm.statistic, alarm.get("Statistic"))
            self.add(CLOUDWATCH, f"{name} period (s)", mon.cpu_period_s, alarm.get("Period"))
            threshold = spec_alarm.threshold(self.spec)
            self.add(CLOUDWATCH, f"{name} threshold", threshold, alarm.get("Threshold"),
                     ok=alarm.get("Threshold") is not None and abs(float(alarm["Threshold"]) - float(threshold)) < 1e-6)
            self.add(CLOUDWATCH, f"{name} comparison", spec_alarm.comparison, alarm.get("ComparisonOperator"))
            self.add(CLOUDWATCH, f"{name} evaluation periods", 1, alarm.get("EvaluationPeriods"))
            dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
            self.add(CLOUDWATCH, f"{name} dimension", {ALARM_DIMENSION: db_id}, dims)
