"""Throwaway stacks for the deploy tests: hand-written templates deployed under a stack name of their own,
so a test can break, replace or delete what it likes without touching the real environments' stacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def renamed(spec: Any, stack_name: str) -> Any:
    """The spec (same values, same checks) with another stack name."""

    class Renamed(type(spec)):  # type: ignore[misc]
        @property
        def stack_name(self) -> str:
            return stack_name

    return Renamed.model_validate(spec.model_dump())


def template_file(path: Path, resources: dict[str, Any], parameters: dict[str, Any] | None = None) -> Path:
    """Write a template of ``resources`` (and ``parameters``) as JSON to ``path``; returns ``path``."""
    path.write_text(json.dumps({**({"Parameters": parameters} if parameters else {}), "Resources": resources}))
    return path


def tls_only_policy(*resources: Any) -> dict[str, Any]:
    """The bucket policy document every RentalIQ bucket has: deny any request not made over TLS."""
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": list(resources) if len(resources) > 1 else resources[0],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return {"Version": "2012-10-17", "Statement": [statement]}
