"""Who signed a request, and the identity policies that apply to them.

- An access key of an IAM user: the user, with its inline and attached policies and its groups'.
- The key of an ``sts:AssumeRole`` session (with its session token): the role, as
  ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``, with the role's inline and attached policies.
- Any other key without a session token (the local cloud's ``test`` keys, which the CLI, the deploy engine and the
  local cloud's own CloudFormation providers use): the account's root user, the deploy identity. Root is not
  limited by identity policies, but explicit denies in bucket and key policies still apply to it, as on AWS.
- A session token that matches no session: rejected (``InvalidClientTokenId``), as AWS rejects an unknown token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import Policy, iam_backends
from moto.sts.models import sts_backends

from rentaliq.local.iam_enforcement.policy import Caller, document


class UnknownCredentials(Exception):
    """The request's session token matches no session this cloud issued."""


@dataclass(frozen=True)
class Identity:
    caller: Caller
    policies: list[dict[str, Any]] = field(default_factory=list)
    secret: str | None = field(default=None, repr=False)  # the signing secret, for the signature check (never logged)


def _policy_document(entry: Any) -> dict[str, Any]:
    if isinstance(entry, Policy):
        return document(next(v.document for v in entry.versions if v.is_default))
    if isinstance(entry, dict):
        return document(entry["policy_document"])
    if isinstance(entry, tuple):
        return document(entry[1])
    return document(entry)


def root(account: str = DEFAULT_ACCOUNT_ID, partition: str = "aws") -> Identity:
    arn = f"arn:{partition}:iam::{account}:root"
    return Identity(Caller(arn=arn, account=account, names=(arn, account), is_root=True))


def resolve(access_key_id: str, session_token: str | None, account: str = DEFAULT_ACCOUNT_ID, partition: str = "aws") -> Identity:
    iam = iam_backends[account][partition]
    if session_token:
        for session in sts_backends[account][partition].assumed_roles:
            if session.access_key_id == access_key_id:
                if session.session_token != session_token:
                    break
                role_name = session.role_arn.split("/")[-1]
                arn = f"arn:{partition}:sts::{account}:assumed-role/{role_name}/{session.session_name}"
                policies = [_policy_document(iam.get_role_policy(role_name, n)) for n in iam.list_role_policies(role_name)]
                policies += [_policy_document(p) for p in iam.list_attached_role_policies(role_name)[0]]
                return Identity(Caller(arn=arn, account=account, names=(arn, session.role_arn)), policies, session.secret_access_key)
        raise UnknownCredentials(access_key_id)
    for user in iam.list_users("/", None, None):
        keys = [k for k in user.access_keys if k.access_key_id == access_key_id]
        if keys:
            policies = [_policy_document(iam.get_user_policy(user.name, n)) for n in iam.list_user_policies(user.name)]
            policies += [_policy_document(p) for p in iam.list_attached_user_policies(user.name)[0]]
            for group in iam.get_groups_for_user(user.name):
                policies += [_policy_document(iam.get_group_policy(group.name, n)) for n in iam.list_group_policies(group.name)]
                policies += [_policy_document(p) for p in iam.list_attached_group_policies(group.name)[0]]
            return Identity(Caller(arn=user.arn, account=account, names=(user.arn,)), policies, keys[0].secret_access_key)
    return root(account, partition)
