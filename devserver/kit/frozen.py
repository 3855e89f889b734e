"""Build a frozen slots dataclass from its field values, at a third of what its ``__init__`` costs,
and those values, in the order of its fields, from their names.

A frozen dataclass's ``__init__`` sets each field through a global
``object.__setattr__``.  For the objects made on every request (the request
event the supervisor builds) :func:`constructor_from_values` sets each
on a plain twin of its class, which it then becomes.  Its code is made from the class's
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
    """``make(cls, values)``: a ``cls`` with ``values`` as its fields, in order (no defaults, no checks).

    The fields are set on a plain twin of ``cls`` (the same slots, not frozen: a plain attribute store each,
    the interpreter's fastest), and the object then becomes a ``cls``: a third of the cost of calling each
    slot's setter, which itself is a third of ``__init__``'s.  A class the twin cannot stand in for (not
    slots of its own on ``object``) has each slot's setter called instead.
    """
    try:
        object.__new__(cls)
    except TypeError:  # a class compiled by mypyc (bench/compiled.py) is made only by its own constructor
        return lambda cls, values: cls(*values)
    names = [f.name for f in fields(cls)]
    lines = ["def make(cls, values):", f"    ({', '.join(names)},) = values"]
    scope: dict[str, object] = {"new": object.__new__}
    if cls.__bases__ == (object,) and tuple(cls.__dict__.get("__slots__", ())) == tuple(names):
        scope["twin"] = type(f"{cls.__name__}Fields", (), {"__slots__": tuple(names)})
        lines += ["    obj = new(twin)", *(f"    obj.{name} = {name}" for name in names), "    obj.__class__ = cls"]
    else:
        scope.update({f"set_{n}": getattr(cls, n).__set__ for n in names})
        lines += ["    obj = new(cls)", *(f"    set_{name}(obj, {name})" for name in names)]
    lines.append("    return obj")
    exec("\n".join(lines), scope)  # field names of our own class, compiled once at import
    return cast("Callable[[type[E], tuple[object, ...]], E]", scope["make"])


def values_by_name(cls: type, attributes: dict[str, str]) -> Callable[..., tuple[object, ...]]:
    """``values(source, **fields)``: a ``cls``'s field values in its order, each given by its name.

    ``attributes`` maps fields to the dotted attribute of ``source`` that holds
    them; every other field is a keyword-only argument.  Nothing depends on
    the order of the fields: a missing name is a TypeError at the call, a name
    that is no field a ValueError here.  What it returns is what :func:`constructor_from_values`
    takes.  (CPython builds a dict for a call with more than 15 keywords,
    which costs about five times a call with fewer: the attributes keep the
    keywords few.)
    """
    names = [f.name for f in fields(cls)]
    unknown = set(attributes) - set(names)
    paths = [part for path in attributes.values() for part in path.split(".")]
    if unknown or not all(part.isidentifier() for part in paths):
        raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}, or a path is not dotted names: {attributes}")
    keywords = [name for name in names if name not in attributes]
    items = [f"source.{attributes[name]}" if name in attributes else name for name in names]
    code = f"def values(source, *, {', '.join(keywords)}):\n    return ({', '.join(items)},)"
    scope: dict[str, object] = {}
    exec(code, scope)  # field names and attribute names of our own classes, compiled once at import
    return cast("Callable[..., tuple[object, ...]]", scope["values"])
