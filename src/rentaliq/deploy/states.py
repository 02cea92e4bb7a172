"""Every CloudFormation stack status, what it means, and what each command may do with it.

The one table of stack states in the project: `up`/`deploy`, `diff`, `destroy` and `status` ask this module
whether they can act on a stack and, when they cannot, print its one line saying why and what to run.
It follows CloudFormation's documented rules (UpdateStack/CreateChangeSet/DeleteStack per status) and the
CDK CLI's behaviour: a stack whose creation failed (ROLLBACK_COMPLETE, ROLLBACK_FAILED, CREATE_FAILED) or
that never got past review (REVIEW_IN_PROGRESS) is deleted by the next deploy, which then creates it anew.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from rentaliq.contract import STABLE_STACK_STATUSES
from rentaliq.deploy.commands import command

Action = Literal["deploy", "diff", "destroy"]


class Kind(StrEnum):
    ABSENT = "absent"  # no stack (or DELETE_COMPLETE)
    STABLE = "stable"  # a finished operation; updatable and deletable
    IN_PROGRESS = "in-progress"  # an operation runs: this is the lock on AWS
    NEVER_CREATED = "never-created"  # creation failed or never started: delete, then create anew
    DELETE_FAILED = "delete-failed"  # only a delete can continue
    UPDATE_ROLLBACK_FAILED = "update-rollback-failed"  # needs continue-update-rollback


STABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"})
# A deploy that ends in one of these did what it was asked; UPDATE_ROLLBACK_COMPLETE is stable but a failure.
SUCCEEDED = STABLE_STACK_STATUSES  # the statuses `verify` also accepts: one list, in rentaliq.contract
NEVER_CREATED = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "REVIEW_IN_PROGRESS"})

MEANING = {
    "CREATE_COMPLETE": "created",
    "UPDATE_COMPLETE": "updated",
    "UPDATE_ROLLBACK_COMPLETE": "the last update failed and was rolled back; the previous version runs",
    "IMPORT_COMPLETE": "resources imported",
    "IMPORT_ROLLBACK_COMPLETE": "an import failed and was rolled back; the previous version runs",
    "ROLLBACK_COMPLETE": "the creation failed and was rolled back; nothing of it runs",
    "ROLLBACK_FAILED": "the creation failed and its rollback left resources behind",
    "CREATE_FAILED": "the creation failed (rollback disabled)",
    "REVIEW_IN_PROGRESS": "a change set was made but never executed; nothing runs",
    "DELETE_FAILED": "a delete failed; some resources remain",
    "UPDATE_ROLLBACK_FAILED": "an update failed and so did its rollback",
}


def kind(status: str | None) -> Kind:
    if status is None or status == "DELETE_COMPLETE":
        return Kind.ABSENT
    if status in STABLE:
        return Kind.STABLE
    if status in NEVER_CREATED:
        return Kind.NEVER_CREATED
    if status == "DELETE_FAILED":
        return Kind.DELETE_FAILED
    if status == "UPDATE_ROLLBACK_FAILED":
        return Kind.UPDATE_ROLLBACK_FAILED
    if status.endswith("_IN_PROGRESS"):
        return Kind.IN_PROGRESS
    # A status AWS adds later: treat it as stable and let CloudFormation's own answer speak.
    return Kind.STABLE


def meaning(status: str | None) -> str:
    if status is None:
        return "not deployed"
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        return "an operation is running"
    return MEANING.get(status, status.lower().replace("_", " "))


def clean_before_create(status: str | None) -> bool:
    """The CDK CLI's rule: a stack that was never created is deleted by the next deploy, then created anew."""
    return kind(status) is Kind.NEVER_CREATED


def in_progress_message(stack_name: str, status: str, env: str) -> str:
    return f"{stack_name} is {status}: another operation is running on it; wait for it to finish or watch it with `{command('status', env)}`"


def blocker(status: str | None, action: Action, stack_name: str, env: str, aws: str = "aws") -> str | None:
    """None when `action` can go ahead on a stack in `status`; else one line: why not, and what to run.

    `aws`: how to spell the aws CLI in a hint (`rentaliq aws` for the local cloud, so a pasted hint never reaches AWS).
    """
    k = kind(status)
    if k is Kind.IN_PROGRESS:
        return in_progress_message(stack_name, status or "", env)
    if k is Kind.UPDATE_ROLLBACK_FAILED and action != "destroy":
        return (
            f"{stack_name} is UPDATE_ROLLBACK_FAILED ({MEANING['UPDATE_ROLLBACK_FAILED']}); fix the resource named in "
            f"`{command('status', env)}`, then run `{aws} cloudformation continue-update-rollback --stack-name {stack_name}` "
            f"(or destroy it: `{command('destroy', env)}`)"
        )
    if k is Kind.DELETE_FAILED and action != "destroy":
        return (
            f"{stack_name} is DELETE_FAILED ({MEANING['DELETE_FAILED']}); CloudFormation cannot update it: finish the delete with `{command('destroy', env)}`"
        )
    return None


def deleted_by_next_up(stack_name: str, status: str) -> str:
    """The message `up` prints when it cleans a stack that was never created."""
    return f"{stack_name} is {status} ({meaning(status)}); deleting it before creating it anew"
