"""A spec built from data that failed validation, so the rules can still judge its valid fields.

Reporting every problem at once needs the rules to run even when pydantic rejected some value: a bad type
in ``database`` must not hide that the same section's storage exceeds its maximum. A partial spec holds
the validated value of every field pydantic accepted and an :class:`Unreadable` in place of every field it
rejected; a rule that touches an Unreadable is skipped, since that field already has its own problem.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Union, cast, get_args, get_origin

from pydantic import BaseModel, TypeAdapter

from rentaliq.spec.models import EnvironmentSpec

Loc = tuple[str | int, ...]


class UnreadableField(Exception):
    """A rule used a field whose value failed validation; the rule is skipped."""


class Unreadable:
    """Stands in for a rejected field: comparing, formatting or reading it raises UnreadableField."""

    __slots__ = ("loc",)

    def __init__(self, loc: Loc):
        object.__setattr__(self, "loc", loc)

    def _fail(self, *_: Any) -> NoReturn:
        raise UnreadableField(".".join(map(str, object.__getattribute__(self, "loc"))))

    __getattr__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _fail
    __bool__ = __iter__ = __len__ = __contains__ = __getitem__ = __hash__ = _fail
    __str__ = __repr__ = __format__ = __int__ = __float__ = __index__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __mod__ = __rmod__ = _fail


def partial_spec(data: Mapping[str, Any], invalid: Callable[[Loc], bool]) -> EnvironmentSpec:
    """The spec ``data`` describes, with an Unreadable for every field at which ``invalid(loc)`` is true.

    ``invalid`` is asked about leaf fields (and about a section whose value is not a table at all); the
    caller answers from pydantic's error locations. No validation runs here beyond turning accepted raw
    values into their field types (a TOML list into a tuple, "lab" into EnvName.LAB).
    """
    return _partial(EnvironmentSpec, data, invalid, ())  # type: ignore[return-value]  # _partial builds an instance of the model it is given


def _partial(model: type[BaseModel], data: Mapping[str, Any], invalid: Callable[[Loc], bool], loc: Loc) -> BaseModel:
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        here = (*loc, name)
        section = _model_in(field.annotation)
        if name in data and section is not None and isinstance(data[name], Mapping):
            values[name] = _partial(section, data[name], invalid, here)
        elif invalid(here) or (name not in data and field.is_required()):
            values[name] = Unreadable(here)
        elif name not in data:
            values[name] = field.get_default(call_default_factory=True)
        else:
            values[name] = TypeAdapter(cast(Any, field.annotation)).validate_python(data[name])  # only on the error path
    return model.model_construct(**values)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class a field holds (``X`` or ``X | None``), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)
    return None
