"""Who made a request, as CloudTrail's ``userIdentity`` says it: from the access key that signed the request.

An access key of an assumed-role session is an ``AssumedRole`` identity (the session's ARN, the role as its
issuer, the session name as the user name); an IAM user's key is an ``IAMUser``; any other key (the local cloud's
default ``test`` credentials) is the account's ``Root``, which is what such calls stand for on the local cloud.
"""

from __future__ import annotations

import re
from typing import Any

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/")


def signature_scope(authorization: str) -> tuple[str, str, str] | None:
    """(access key id, region, signing service) from a SigV4 Authorization header."""
    match = _CREDENTIAL.search(authorization or "")
    return (match.group(1), match.group(2), match.group(3)) if match else None


def user_identity(access_key: str, account_id: str) -> tuple[dict[str, Any], str]:
    """(userIdentity, Username for LookupEvents)."""
    from moto.iam.models import get_account_id_from, iam_backends
    from moto.sts.models import sts_backends

    account = get_account_id_from(access_key) if access_key else account_id
    for partition_backends in (sts_backends.get(account) or {}).values():
        role = partition_backends.get_assumed_role_from_access_key(access_key)
        if role is not None:
            role_name = role.role_arn.rsplit("/", 1)[-1]
            identity = {
                "type": "AssumedRole",
                "principalId": f"{role.user_id}",
                "arn": role.arn,
                "accountId": role.account_id,
                "accessKeyId": access_key,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": role.user_id.split(":")[0],
                        "arn": role.role_arn,
                        "accountId": role.account_id,
                        "userName": role_name,
                    },
                },
            }
            return identity, role.session_name
    for iam in (iam_backends.get(account) or {}).values():
        user = iam.get_user_from_access_key_id(access_key)
        if user is not None:
            identity = {
                "type": "IAMUser",
                "principalId": user.id,
                "arn": user.arn,
                "accountId": user.account_id,
                "accessKeyId": access_key,
                "userName": user.name,
            }
            return identity, user.name
    identity = {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account, "accessKeyId": access_key}
    return identity, "root"
