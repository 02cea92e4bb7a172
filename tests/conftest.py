"""Shared fixtures: one synthesis per test session, shared by every template test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rentaliq.environments import load_specs


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> dict[str, dict]:
    """All three templates, synthesized once with the four nag packs on (an unacknowledged finding fails here)."""
    from rentaliq.infra.app import synthesize

    outdir = tmp_path_factory.mktemp("cdk.out")
    return {r.spec.name.value: json.loads(Path(r.template_path).read_text()) for r in synthesize(load_specs(), outdir)}
