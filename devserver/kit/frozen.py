"""Build a frozen slots dataclass from its field values, at a third of what its ``__init__`` costs.

A frozen dataclass's ``__init__`` sets each field through a global
``object.__setattr__``.  For the objects made on every request (the request
event the supervisor builds, a response's framing) :func:`constructor_from_values` sets each
through its slot's own setter, bound once.  Its code is made from the class's
field names, as dataclasses makes ``__init__``: nothing from the values is
ever compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

E = TypeVar("E", bound="DataclassInstance")


def constructor_from_values(cls: type[E]) -> Callable[[type[E], tuple[object, ...]], E]:
    """``make(cls, values)``: a ``cls`` with ``values`` as its fields, in order (no defaults, no checks)."""
    names = [f.name for f in fields(cls)]
    lines = ["def make(cls, values):", f"    ({', '.join(names)},) = values", "    obj = new(cls)"]
    lines += [f"    set_{name}(obj, {name})" for name in names]
    lines.append("    return obj")
    scope: dict[str, object] = {"new": object.__new__, **{f"set_{n}": getattr(cls, n).__set__ for n in names}}
    exec("\n".join(lines), scope)  # field names of our own class, compiled once at import
    return cast("Callable[[type[E], tuple[object, ...]], E]", scope["make"])
