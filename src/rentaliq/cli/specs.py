"""The environment arguments turned into specs, for every command group: a bad name or override file is one line and exit 1."""

from __future__ import annotations

from rentaliq.cli.output import fail
from rentaliq.environments import EnvironmentSpec, SpecError, load_spec, load_specs


def spec_or_fail(env: str) -> EnvironmentSpec:
    """The spec of ``env``; an unknown environment or an invalid override ends the command with its one-line error."""
    try:
        return load_spec(env)
    except SpecError as error:
        fail(str(error))


def specs_or_fail(envs: list[str] | None = None) -> list[EnvironmentSpec]:
    """The specs of ``envs`` (all of them when None), failing like :func:`spec_or_fail`."""
    try:
        return load_specs(envs)
    except SpecError as error:
        fail(str(error))
