"""Off-hours stop and start of the database: two EventBridge Scheduler schedules and the role they run as.

The schedules call RDS through Scheduler's universal targets (``aws-sdk:rds:stopDBInstance`` and
``startDBInstance``), so no Lambda is deployed and nothing runs between the two fires. Their expressions come
from :class:`rentaliq.offhours.OffHours`, the same arithmetic that ``status``, the runtime SDK and the cost
read, so a deployed schedule and what the project says about it cannot disagree.

The role is the least privilege Scheduler needs: assumable by ``scheduler.amazonaws.com`` only on behalf of
this account (``aws:SourceAccount``, the confused-deputy guard AWS documents for Scheduler), allowed
``rds:StopDBInstance`` and ``rds:StartDBInstance`` on this environment's one instance. Its permissions are a
customer-managed policy rather than an inline one (HIPAA's IAMNoInlinePolicy). Schedules cannot carry tags
in CloudFormation; the role and the policy's role do.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from rentaliq import naming
from rentaliq.environments import EnvironmentSpec
from rentaliq.offhours import START_TARGET, STOP_TARGET, OffHours

SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
SCHEDULE_ACTIONS = ("rds:StopDBInstance", "rds:StartDBInstance")
# A stop or start that could not be delivered is retried for up to an hour (RDS may be busy with a backup or a
# modification), then dropped: an instance stopped or started hours late would surprise more than it saves.
RETRY_MAX_EVENT_AGE_S = 3600
RETRY_MAX_ATTEMPTS = 5


def scheduler_policy_name(env: str) -> str:
    """``rentaliq-lab-scheduler-policy``: the role's permissions, a managed policy of its own."""
    return naming.resource_name(env, "scheduler", "policy")


class OffHoursSchedule(Construct):
    """The stop schedule, the start schedule and their role; only built when ``spec.schedule.enabled``."""

    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, instance: rds.DatabaseInstance) -> None:
        super().__init__(scope, id)
        env = spec.name.value
        stack = Stack.of(self)
        self.offhours = OffHours.from_spec(spec.schedule)
        self.role = iam.Role(
            self,
            "Role",
            role_name=naming.scheduler_role(env),
            description=f"EventBridge Scheduler stops and starts {naming.db_instance_id(env)} off-hours, and nothing else",
            assumed_by=iam.ServicePrincipal(SCHEDULER_PRINCIPAL, conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=scheduler_policy_name(env),
            description=f"Stop and start {naming.db_instance_id(env)} (EventBridge Scheduler's off-hours schedules)",
            statements=[iam.PolicyStatement(sid="StopStartOneInstance", actions=list(SCHEDULE_ACTIONS), resources=[instance.instance_arn])],
            roles=[self.role],
        )
        target_input = stack.to_json_string({"DbInstanceIdentifier": instance.instance_identifier})
        self.stop = self._schedule(
            "Stop", naming.db_stop_schedule(env), self.offhours.stop, STOP_TARGET, target_input, f"Stop {naming.db_instance_id(env)} off-hours"
        )
        self.start = self._schedule(
            "Start", naming.db_start_schedule(env), self.offhours.start, START_TARGET, target_input, f"Start {naming.db_instance_id(env)} for working hours"
        )
        for schedule in (self.stop, self.start):
            schedule.node.add_dependency(self.policy)  # never fire before the role may act

    def _schedule(self, id: str, name: str, expression: str, target_arn: str, target_input: str, description: str) -> scheduler.CfnSchedule:
        return scheduler.CfnSchedule(
            self,
            id,
            name=name,
            description=description,
            group_name="default",
            schedule_expression=expression,
            schedule_expression_timezone=self.offhours.timezone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=target_arn,
                role_arn=self.role.role_arn,
                input=target_input,
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=RETRY_MAX_EVENT_AGE_S, maximum_retry_attempts=RETRY_MAX_ATTEMPTS
                ),
            ),
        )
