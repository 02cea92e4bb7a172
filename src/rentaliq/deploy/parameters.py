"""Stack parameters the deployer supplies: the three generated API keys, never re-generated on update."""

from __future__ import annotations

import secrets

from rentaliq.contract import API_KEY_PARAMETERS


def api_key_parameters(stack_exists: bool) -> list[dict]:
    """New stack: fresh random keys. Existing stack: UsePreviousValue, so a deploy never rotates them."""
    if stack_exists:
        return [{"ParameterKey": name, "UsePreviousValue": True} for name in API_KEY_PARAMETERS.values()]
    return [{"ParameterKey": name, "ParameterValue": secrets.token_urlsafe(48)} for name in API_KEY_PARAMETERS.values()]
