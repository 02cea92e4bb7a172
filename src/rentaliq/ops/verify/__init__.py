"""The conformance audit: read a live environment back through the AWS APIs and compare it with its spec.

``verify(target, spec)`` returns one :class:`Check` per audited value. Expected values come from the spec,
from :mod:`rentaliq.naming` and from :mod:`rentaliq.contract`, the definitions the stacks are built from;
actual values come only from public AWS APIs through ``target.client``, so the same audit runs against
the local cloud and a real account.

Statuses:

- ``pass``: the live value is what the spec says;
- ``fail``: it differs, the resource is missing, or it could not be read (an HTTP 500 or an answer that
  does not parse included; the detail says why);
- ``deviation``: it differs on purpose, by an operator's recorded action (a restore's cutover of the DB
  secrets); the detail says which and how to undo it. Counted apart; the secrets are then checked against
  the instance they were cut over to.
- ``not-checkable``: the check needs an operation the local cloud declares unimplemented
  (contract.LOCAL_UNIMPLEMENTED_OPERATIONS); the detail names it. Never a pass, and never anything else.

Modules: ``reader`` (every API call), ``documents`` (policies, rules, tags), ``checks`` (results), and one
module per area (``stack``, ``rds``, ``s3``, ``secrets``, ``iam``, ``ec2``, ``cloudwatch``, ``alerts``, ``budget``, ``schedule``,
``audit``, ``keys``), each given the live state it needs read once, as a frozen dataclass. Secret values never appear in a check: checks that
compare them say ``matches`` or ``differs``. This package prints nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

from rentaliq.contract import LOCAL_UNIMPLEMENTED_OPERATIONS
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.verify import alerts, budget, cloudwatch, ec2, iam, keys, nat, rds, s3, schedule, secrets, stack
from rentaliq.ops.verify import audit as audit_trail
from rentaliq.ops.verify.checks import (
    ALERTS,
    AREAS,
    AUDIT,
    BUDGET,
    CLOUDWATCH,
    DEVIATION,
    EC2,
    FAIL,
    IAM,
    KMS,
    NOT_CHECKABLE,
    PASS,
    RDS,
    S3,
    SCHEDULER,
    SECRETS,
    STACK,
    Check,
    Recorder,
    Status,
    VerifyError,
    summary,
)
from rentaliq.ops.verify.reader import Audit, Reader

__all__ = ["AREAS", "DEVIATION", "FAIL", "NOT_CHECKABLE", "PASS", "Check", "Status", "VerifyError", "summary", "verify"]


def verify(target: Target, spec: EnvironmentSpec, *, unimplemented: Collection[str] = LOCAL_UNIMPLEMENTED_OPERATIONS) -> list[Check]:
    """Audit the live environment ``spec`` describes; one Check per value, in area order.

    ``unimplemented``: the local cloud's unimplemented operations ("service:Operation"); the default is the contract's list.
    """
    audit = Audit(spec, Reader(target, Recorder(), unimplemented))
    section = audit.read.section
    outputs: Mapping[str, str | None] | None = None
    with section(STACK, "stack"):
        outputs = stack.check(audit)
    network = ec2.read_network(audit)
    instance = None
    with section(RDS, "rds"):
        instance = rds.check(audit, network)
    with section(S3, "s3"):
        s3.check(audit)
    secret_arns: Mapping[str, str] = MappingProxyType({})
    with section(SECRETS, "secrets"):
        secret_arns = secrets.check(audit, instance)
    policy_arn = None
    with section(IAM, "iam"):
        policy_arn = iam.check(audit, instance)
    with section(EC2, "ec2"):
        ec2.check(audit, network)
    topic_arn = None
    with section(ALERTS, "alerts"):
        topic_arn = alerts.check(audit)
    with section(CLOUDWATCH, "cloudwatch"):
        cloudwatch.check(audit, topic_arn)
    with section(CLOUDWATCH, "nat alarms"):
        nat.check_alarms(audit, topic_arn)
    with section(BUDGET, "budget"):
        budget.check(audit)
    with section(SCHEDULER, "scheduler"):
        schedule.check(audit)
    with section(AUDIT, "audit trail"):
        audit_trail.check(audit)
    with section(KMS, "kms"):
        keys.check(audit)
    if outputs is not None:
        with section(STACK, "check_outputs"):
            stack.check_outputs(audit, outputs, stack.Resources(instance, network, secret_arns, policy_arn, topic_arn))
    return audit.record.in_area_order()
