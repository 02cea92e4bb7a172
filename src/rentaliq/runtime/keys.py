"""Object-key validation, before any request reaches S3.

S3 itself accepts almost any key, but keys made of user input are how path traversal and log
injection reach other systems: a key is often mirrored to a local path (``..``), shown in logs
(control characters) or joined with a prefix (a leading ``/`` gives ``prefix//key``).  Rejecting
these up front, with an error that lists every broken rule, is cheaper than cleaning up after.
"""

from __future__ import annotations

import re

from rentaliq.runtime.errors import InvalidObjectKey

__all__ = ["MAX_KEY_BYTES", "validate_key", "validate_prefix"]

MAX_KEY_BYTES = 1024
"""S3's limit, counted in UTF-8 bytes, not characters."""

# C0 controls, DEL and the C1 controls: none is printable and several rewrite terminals or logs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

RULE_EMPTY = "must not be empty"
RULE_TYPE = "must be a str"
RULE_TOO_LONG = f"must be at most {MAX_KEY_BYTES} bytes in UTF-8"
RULE_ENCODING = "must be valid Unicode (no lone surrogates)"
RULE_CONTROL = "must not contain control characters"
RULE_LEADING_SLASH = "must not start with '/'"
RULE_DOTDOT = "must not contain a '..' segment"


def _problems(key: object, *, allow_empty: bool) -> list[str]:
    if not isinstance(key, str):
        return [RULE_TYPE]
    if not key:
        return [] if allow_empty else [RULE_EMPTY]
    problems: list[str] = []
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        problems.append(RULE_ENCODING)
        size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        problems.append(f"{RULE_TOO_LONG} (is {size})")
    if _CONTROL.search(key):
        problems.append(RULE_CONTROL)
    if key.startswith("/"):
        problems.append(RULE_LEADING_SLASH)
    if ".." in key.split("/"):
        problems.append(RULE_DOTDOT)
    return problems


def validate_key(key: object) -> str:
    """Return ``key`` unchanged if it is a safe object key, else raise InvalidObjectKey listing every rule it breaks."""
    problems = _problems(key, allow_empty=False)
    if problems:
        raise InvalidObjectKey(key, problems)
    return key  # type: ignore[return-value]  # _problems checked the type


def validate_prefix(prefix: object) -> str:
    """Like validate_key, but the empty prefix (the whole bucket) is allowed."""
    problems = _problems(prefix, allow_empty=True)
    if problems:
        raise InvalidObjectKey(prefix, problems)
    return prefix  # type: ignore[return-value]  # _problems checked the type
