"""Where a spec's values come from, and the one path every spec is validated on.

An environment's spec is its built-in file (``rentaliq/spec/{env}.toml``, shipped in the package) with the
user's ``{config_dir}/{env}.toml`` merged over it: one format for both, and both validated the same way.
Validation reports every problem at once: pydantic's (types, bounds, unknown fields) and the rules'
(:mod:`rentaliq.spec.rules`), the rules running on whatever part of the spec pydantic accepted.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rentaliq.spec import rules
from rentaliq.spec.errors import SpecError
from rentaliq.spec.models import ENV_NAMES, EnvironmentSpec, EnvName
from rentaliq.spec.partial import Loc, partial_spec

CONFIG_DIR_VARIABLE = "RENTALIQ_CONFIG_DIR"

# pydantic's type errors, said the way a TOML file is written (strict mode: "30" is not an integer).
_TYPE_HINTS = {
    "int_type": "an integer (a TOML number, without quotes)",
    "int_from_float": "an integer (a TOML number, without quotes)",
    "float_type": "a number (a TOML number, without quotes)",
    "finite_number": "a finite number (not inf or nan)",
    "bool_type": "true or false (a TOML boolean, without quotes)",
    "string_type": "a string (in quotes)",
    "tuple_type": 'a list, e.g. ["a", "b"]',
    "list_type": 'a list, e.g. ["a", "b"]',
}
_TABLE_ERRORS = ("model_type", "model_attributes_type", "dict_type")


def check_env_name(name: str) -> EnvName:
    try:
        return EnvName(name.lower())
    except ValueError:
        raise SpecError([f"unknown environment {name!r}; allowed: {', '.join(ENV_NAMES)}"]) from None


def built_in_data(env: str) -> dict[str, Any]:
    """The built-in values of ``env`` as read from the package's TOML file (a fresh dict each call)."""
    data = tomllib.loads((resources.files(__package__) / f"{env}.toml").read_text())
    return {"name": env, **data}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _field(loc: Loc) -> str:
    """``('database', 'allowed_cidrs', 1)`` as ``database.allowed_cidrs[1]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _pydantic_problems(env: str, errors: list[ErrorDetails]) -> list[str]:
    problems = []
    for err in errors:
        field = _field(err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"{env}: unknown field {field!r}; see `rentaliq envs --json` for the fields a spec has")
        elif err["type"] == "missing":
            problems.append(f"{env}: {field} is missing; allowed: a value (the field is required)")
        elif err["type"] in _TABLE_ERRORS:
            problems.append(f"{env}: {field}={err['input']!r} is invalid; allowed: a table, e.g. [{field}]")
        else:
            allowed = _TYPE_HINTS.get(err["type"], err["msg"].lower())
            problems.append(f"{env}: {field}={err['input']!r} is invalid; allowed: {allowed}")
    return problems


def _validate(env: str, data: dict[str, Any]) -> EnvironmentSpec:
    """The spec ``data`` holds, or a SpecError with every problem pydantic and the rules find."""
    try:
        spec = EnvironmentSpec.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        bad = [err["loc"] for err in errors if err["type"] != "extra_forbidden"]
        partial = partial_spec(data, lambda here: any(loc[: len(here)] == here for loc in bad))
        problems = _pydantic_problems(env, errors) + rules.check(partial, env, skip=lambda rule: any(map(rule.reads, bad)))
        raise SpecError(problems) from None
    problems = rules.check(spec, env)
    if problems:
        raise SpecError(problems)
    return spec


def build_spec(name: str, overrides: dict[str, Any] | None = None) -> EnvironmentSpec:
    """The built-in spec for ``name`` with ``overrides`` applied; raises SpecError listing every problem."""
    env = check_env_name(name)
    data = _merge(built_in_data(env.value), overrides or {})
    if data.get("name", env.value) != env.value:
        raise SpecError([f"{env.value}: name={data['name']!r} is invalid; allowed: {env.value!r} (the file's environment)"])
    return _validate(env.value, data)


def config_dir() -> Path:
    """Where override files live: ``$RENTALIQ_CONFIG_DIR``, which must then be a directory, else ./config.

    A variable naming no directory is an error rather than "no overrides": silently deploying the defaults
    because of a typo in a path is the failure this guards against. Set but empty counts as unset.
    """
    value = os.environ.get(CONFIG_DIR_VARIABLE)
    if not value:
        return Path("config")
    path = Path(value)
    if not path.is_dir():
        allowed = "an existing directory holding {env}.toml files, or unset for ./config"
        raise SpecError([f"{CONFIG_DIR_VARIABLE}={value!r} is not a directory; allowed: {allowed}"])
    return path


def _override_dir(directory: Path | None) -> Path:
    """``directory`` if given (it must exist), else config_dir()."""
    if directory is None:
        return config_dir()
    if not directory.is_dir():
        raise SpecError([f"config directory {str(directory)!r} is not a directory; allowed: an existing directory holding {{env}}.toml files"])
    return directory


def load_overrides(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The user's overrides for ``name`` (``{directory}/{name}.toml``), or {} when there is no such file."""
    path = _override_dir(directory) / f"{name}.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SpecError([f"{name}: {path}: not valid TOML ({error})"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([f"{name}: {path}: cannot be read ({error})"]) from None


def load_spec(name: str, directory: Path | None = None) -> EnvironmentSpec:
    """The spec as deployed: built-in values plus ``{config_dir}/{env}.toml`` if present."""
    env = check_env_name(name)
    return build_spec(env.value, load_overrides(env.value, directory))


def load_specs(names: list[str] | None = None, directory: Path | None = None) -> list[EnvironmentSpec]:
    """Several specs, validating all of them before failing so one run shows every problem."""
    _override_dir(directory)  # a missing directory is one problem, not one per environment
    specs, problems = [], []
    for name in names or list(ENV_NAMES):
        try:
            specs.append(load_spec(name, directory))
        except SpecError as error:
            problems.extend(error.problems)
    if problems:
        raise SpecError(problems)
    return specs
