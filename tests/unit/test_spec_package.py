"""The spec package's shape (issue 8 section 3): built-in values as TOML in the package, in the same format
as a user's override file; every field documented; `rentaliq.environments` still importable."""

from __future__ import annotations

import shutil
import tomllib
from importlib import resources

import pytest
from pydantic import BaseModel

import rentaliq.environments as environments
import rentaliq.spec as spec_package
from rentaliq.spec import models
from rentaliq.spec.loader import load_spec

ENVS = ("lab", "qa", "prod")


@pytest.mark.parametrize("env", ENVS)
def test_a_built_in_file_is_a_valid_override_file(tmp_path, env):
    built_in = resources.files("rentaliq.spec") / f"{env}.toml"
    assert tomllib.loads(built_in.read_text())  # plain TOML, no Python
    (tmp_path / "none").mkdir()
    (tmp_path / "copy").mkdir()
    with resources.as_file(built_in) as path:
        shutil.copy(path, tmp_path / "copy" / f"{env}.toml")
    assert load_spec(env, tmp_path / "copy") == load_spec(env, tmp_path / "none")  # the same values, built in or overridden


def _models() -> list[type[BaseModel]]:
    return [m for m in vars(models).values() if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == models.__name__]


def test_every_field_is_documented_with_its_default():
    assert len(_models()) == 14  # with ScheduleSpec (issue 11): a new model must be documented too
    for model in _models():
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"
            assert ("Default:" in field.description) == (not field.is_required()), f"{model.__name__}.{name}: {field.description}"


def test_the_old_import_path_is_the_same_objects():
    for name in environments.__all__:
        assert getattr(environments, name) is getattr(spec_package, name)
    assert {"EnvironmentSpec", "SpecError", "build_spec", "load_spec", "load_specs", "ENV_NAMES", "INSTANCE_CLASSES"} <= set(environments.__all__)
