"""Stack parameters the deployer supplies: the three generated API keys, never re-generated on update."""

from __future__ import annotations

import secrets
from typing import Any

from rentaliq.contract import API_KEY_PARAMETERS


def api_key_parameters(stack_exists: bool, existing: set[str] | None = None, known: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """New stack: fresh random keys. Existing stack: UsePreviousValue, so a deploy never rotates them.

    `existing` (the stack's parameter keys) matters after an IMPORT: that stack has no API key parameters yet.
    `known` (parameter -> value) are keys to keep, read back from a restored secret; any other is generated once.
    """

    def fresh(name: str) -> dict[str, Any]:
        return {"ParameterKey": name, "ParameterValue": (known or {}).get(name) or secrets.token_urlsafe(48)}

    keys = API_KEY_PARAMETERS.values()
    if stack_exists:
        return [{"ParameterKey": name, "UsePreviousValue": True} if existing is None or name in existing else fresh(name) for name in keys]
    return [fresh(name) for name in keys]
