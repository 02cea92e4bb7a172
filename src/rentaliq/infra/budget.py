"""The environment's AWS Budget ``rentaliq-{env}-monthly``: the spec's monthly upper bound, watched by AWS itself.

``rentaliq cost`` says what the template *should* cost; the budget says what the account *does* spend on this
environment, and tells the alerts topic (and through it the spec's ``[alerts]`` subscribers) at 80 % of the limit
forecast and at 100 % spent, before the invoice does.

The budget counts only this environment's costs through the ``Environment`` tag every resource carries
(``user:Environment$lab``). AWS Budgets sees a tag only once it is **activated as a cost-allocation tag** in the
Billing console (Cost allocation tags), and only for costs incurred after that: until then the filter matches
nothing and the budget stays at $0. The README says so too.

Budgets publishes to the topic as ``budgets.amazonaws.com``: the topic's policy must allow it (with the
aws:SourceAccount/aws:SourceArn conditions AWS documents for Budgets), and since the topic is encrypted with a
customer-managed key, the key's policy must let Budgets use it (``kms:GenerateDataKey*``, ``kms:Decrypt``), or
the notifications are dropped without a word, exactly as CloudWatch's would be (see ``alerts.py``).
"""

from __future__ import annotations

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_iam as iam
from constructs import Construct

from rentaliq import naming
from rentaliq.contract import BUDGET_ALERTS, BUDGET_PRINCIPAL, BUDGET_TAG_KEY, budget_cost_filter, budget_source_arn
from rentaliq.environments import EnvironmentSpec
from rentaliq.infra.alerts import Alerts


class Budget(Construct):
    def __init__(self, scope: Construct, id: str, *, spec: EnvironmentSpec, alerts: Alerts) -> None:
        super().__init__(scope, id)
        env = spec.name.value
        topic = alerts.topic
        stack = topic.stack
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=naming.budget(env),
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=spec.cost.monthly_usd_high, unit="USD"),
                # Only this environment's costs; counts once `Environment` is an active cost-allocation tag (see above).
                cost_filters=budget_cost_filter(spec.resource_tags()[BUDGET_TAG_KEY]),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=alert.notification_type,
                        comparison_operator=alert.comparison,
                        threshold=alert.threshold,
                        threshold_type=alert.threshold_type,
                    ),
                    subscribers=[budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn)],
                )
                for alert in BUDGET_ALERTS
            ],
        )
        # Budgets checks it may publish when the budget is created: the policy and key grant must exist first.
        topic_policy = topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetsPublish",
                principals=[iam.ServicePrincipal(BUDGET_PRINCIPAL)],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": budget_source_arn(stack.partition, stack.account)},
                },
            )
        )
        # A statement of its own (a Sid keeps CDK from merging it into CloudWatch's): the two grants are audited apart.
        alerts.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetsUseKey",
                principals=[iam.ServicePrincipal(BUDGET_PRINCIPAL)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        if topic_policy.policy_dependable is not None:
            self.budget.node.add_dependency(topic_policy.policy_dependable)
        self.budget.node.add_dependency(alerts.key)
