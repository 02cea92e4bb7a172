"""The names CloudFormation gives resources whose template names none: ``{stack}-{logicalId}-{suffix}``.

AWS documents the pattern but not how it shortens a name that would be too long for the service. Names real
CloudFormation produced (a 26-character stack; S3 at 63, IAM at 64, a log group at 512) follow one rule: 13
characters go to the random suffix and its hyphen, and what is left, less one more hyphen, is shared between the
stack name and the logical id, the stack name taking the odd character, and either taking what the other does not
need. So the logical id is never dropped, whatever the stack name's length:

    chineseboostanalyticsstac-rainlyticslogsbucket8df4-hdst4ohfvdif        (S3, 25 + 24)
    ChineseboostAnalyticsStac-RainlyticsSummariesJobFun-UjecjFhpdr1d       (IAM role, 25 + 25)
"""

from __future__ import annotations

import secrets
import string

SUFFIX_LENGTH = 12
_ALPHABET = string.ascii_letters + string.digits


def random_suffix() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(SUFFIX_LENGTH))


def physical_name(stack_name: str, logical_id: str, max_length: int, *, lower: bool = False, suffix: str | None = None) -> str:
    """``stack-logicalid-suffix`` within ``max_length``, both name parts shortened as CloudFormation shortens them."""
    suffix = suffix if suffix is not None else random_suffix()
    room = max_length - len(suffix) - 2  # two hyphens
    stack_part, logical_part = stack_name, logical_id
    if len(stack_part) + len(logical_part) > room:
        stack_share, logical_share = (room + 1) // 2, room // 2
        if len(stack_part) < stack_share:
            logical_share = room - len(stack_part)
        elif len(logical_part) < logical_share:
            stack_share = room - len(logical_part)
        stack_part, logical_part = stack_part[:stack_share], logical_part[:logical_share]
    name = f"{stack_part}-{logical_part}-{suffix}"
    return name.lower() if lower else name
