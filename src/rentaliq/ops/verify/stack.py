"""Stack area: the CloudFormation stack exists and is at rest, the database's DeletionPolicy, and the outputs.

The outputs are checked last, against what the other areas read from the live resources (:class:`Resources`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rentaliq import naming
from rentaliq.contract import OUTPUT_KEYS, SECRET_OUTPUTS, STABLE_STACK_STATUSES, database_deletion_policy, deletion_policy
from rentaliq.ops.verify.checks import STACK
from rentaliq.ops.verify.ec2 import Network
from rentaliq.ops.verify.rds import Instance
from rentaliq.ops.verify.reader import Audit


@dataclass(frozen=True)
class Resources:
    """What the other areas read from the live environment, for the outputs to be compared with."""

    instance: Instance | None
    network: Network
    secret_arns: Mapping[str, str]  # logical secret name -> ARN, for the secrets that could be read
    policy_arn: str | None
    topic_arn: str | None = None


def check(audit: Audit) -> Mapping[str, str | None] | None:
    """Stack checks; the stack's outputs, or None if there is no stack to read them from."""
    name, read, add = audit.spec.stack_name, audit.read, audit.record.add
    stacks = read.call(STACK, "stack exists", name, "cloudformation", "describe_stacks", StackName=name)["Stacks"]
    live = [s for s in stacks if s.get("StackStatus") != "DELETE_COMPLETE"]
    if not add(STACK, "stack exists", name, live[0]["StackName"] if live else None):
        return None
    stack = live[0]
    status = stack.get("StackStatus", "")
    add(STACK, "status", " or ".join(sorted(STABLE_STACK_STATUSES)), status, ok=status in STABLE_STACK_STATUSES)
    with read.section(STACK, "deletion policy"):
        # database.final_snapshot is a CloudFormation DeletionPolicy: only the stack's template holds it.
        check_name, expected = "database deletion policy (final snapshot)", database_deletion_policy(audit.db.final_snapshot)
        resources = read.paginate(STACK, check_name, expected, "cloudformation", "list_stack_resources", "StackResourceSummaries", StackName=name)
        logical = [
            r["LogicalResourceId"]
            for r in resources
            if r.get("ResourceType") == "AWS::RDS::DBInstance" and r.get("PhysicalResourceId") == naming.db_instance_id(audit.env)
        ]
        body = read.call(STACK, check_name, expected, "cloudformation", "get_template", StackName=name)["TemplateBody"]
        template = json.loads(body) if isinstance(body, str) else body
        actual = deletion_policy(template.get("Resources", {}).get(logical[0], {})) if logical else None
        add(STACK, check_name, expected, actual, detail="" if logical else "no DB instance in the stack")
    return MappingProxyType({o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])})


def _expected_outputs(audit: Audit, live: Resources) -> dict[str, str | None]:
    """What each stack output must be, from the spec and the live resources (outputs of unread resources left out)."""
    env = audit.env
    expected: dict[str, str | None] = {}
    expected["DbInstanceIdentifier"] = naming.db_instance_id(env)
    endpoint = live.instance.endpoint if live.instance else None
    if endpoint:
        expected["DbEndpoint"], expected["DbPort"] = endpoint.get("Address"), str(endpoint.get("Port"))
    bucket = naming.files_bucket(env)
    expected["FilesBucketName"], expected["FilesBucketArn"] = bucket, f"arn:{audit.partition}:s3:::{bucket}"
    logs = naming.access_logs_bucket() if audit.spec.storage.access_logs else None
    expected["AccessLogsBucketName"] = logs
    expected["AccessLogsBucketArn"] = f"arn:{audit.partition}:s3:::{logs}" if logs else None
    for logical, key in SECRET_OUTPUTS.items():
        if live.secret_arns.get(logical):
            expected[key] = live.secret_arns[logical]
    for key, name in (("RdsSecurityGroupId", naming.rds_security_group(env)), ("AppSecurityGroupId", naming.app_security_group(env))):
        group = live.network.groups.get(name)
        if group:
            expected[key] = group["GroupId"]
    if live.policy_arn:
        expected["ReadSecretsPolicyArn"] = live.policy_arn
    if live.network.vpc_id:
        expected["VpcId"] = live.network.vpc_id
    if live.topic_arn:
        expected["AlertsTopicArn"] = live.topic_arn
    return expected


def check_outputs(audit: Audit, outputs: Mapping[str, str | None], live: Resources) -> None:
    """Stack outputs against the live resources (run last, when the other areas have read them)."""
    expected = _expected_outputs(audit, live)
    for key in OUTPUT_KEYS:
        if key in expected:
            audit.record.add(STACK, f"output {key}", expected[key], outputs.get(key))
