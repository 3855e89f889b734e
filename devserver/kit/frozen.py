"""Frozen slots records made cheaply: a class (:func:`record`) at a third of what dataclasses costs at
import, an object from its field values at a third of what its ``__init__`` costs, and those values, in
the order of its fields, from their names.

A frozen dataclass's ``__init__`` sets each field through a global
``object.__setattr__``.  For the objects made on every request (the request
event the supervisor builds) :func:`constructor_from_values` sets each
on a plain twin of its class, which it then becomes.  Its code is made from the class's
field names, as dataclasses makes ``__init__``: nothing from the values is
ever compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, cast, dataclass_transform

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


R = TypeVar("R")
_INSTALLED = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__getstate__", "__setstate__")


@dataclass_transform(frozen_default=True)
def record(cls: type[R]) -> type[R]:
    """``@dataclass(frozen=True, slots=True)`` at a third of its cost to build (about a millisecond a class).

    dataclasses compiles six methods per frozen class, one ``exec`` each; here
    dataclasses makes only the fields, the slots and ``__match_args__``, only
    ``__init__`` is compiled (from the field names, as dataclasses does), and
    the rest are the same few functions for every record, on the fields'
    values as one tuple.  What a frozen slots dataclass offers, a record
    offers alike: equality and hash by the fields' values, its repr, the
    refusal to change, pickling, ``fields``/``replace``/``asdict``.  Fields take
    a default or a ``default_factory``; any other field option, a
    ``__post_init__`` or a method of its own among those it installs is a
    TypeError: such a class stays a dataclass.
    """
    own = set(vars(cls))
    if "__post_init__" in own or own & set(_INSTALLED):
        raise TypeError(f"{cls.__qualname__}: a record's methods are its own to make (use @dataclass)")
    built = cast("type[DataclassInstance]", dataclass(init=False, repr=False, eq=False, slots=True)(cls))
    names = tuple(f.name for f in fields(built))
    scope: dict[str, object] = {"__record_set__": object.__setattr__, "__record_missing__": MISSING}
    params, lines = [], []
    for f in fields(built):
        if not (f.init and f.repr and f.compare and f.hash is None and not f.kw_only):
            raise TypeError(f"{cls.__qualname__}.{f.name}: a record's field takes a default or a default_factory only")
        value = f.name
        if f.default is not MISSING:
            scope[f"__record_default_{f.name}__"] = f.default
            params.append(f"{f.name}=__record_default_{f.name}__")
        elif f.default_factory is not MISSING:
            scope[f"__record_factory_{f.name}__"] = f.default_factory
            params.append(f"{f.name}=__record_missing__")
            value = f"__record_factory_{f.name}__() if {f.name} is __record_missing__ else {f.name}"
        else:
            params.append(f.name)
        lines.append(f"    __record_set__(self, {f.name!r}, {value})")
    exec(f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(lines) or "    pass"), scope)  # our field names
    for name, method in zip(_INSTALLED, (cast("Callable[..., Any]", scope["__init__"]), *_methods(built, names))):
        method.__qualname__ = f"{built.__qualname__}.{name}"
        setattr(built, name, method)
    return cast("type[R]", built)


def _methods(cls: type[Any], names: tuple[str, ...]) -> tuple[Callable[..., Any], ...]:
    """A record's methods but ``__init__``, on its fields' values as a tuple (``values``)."""
    values: Callable[[object], tuple[object, ...]]
    if len(names) > 1:
        values = attrgetter(*names)  # a tuple already
    else:
        getters = [attrgetter(name) for name in names]

        def values(obj: object) -> tuple[object, ...]:
            return tuple(get(obj) for get in getters)

    def __repr__(self: object) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(names, values(self)))
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self: object) -> int:
        return hash(values(self))

    def __setattr__(self: object, name: str, value: object) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: object, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    def __getstate__(self: object) -> list[object]:
        return list(values(self))

    def __setstate__(self: object, state: list[object]) -> None:
        for name, value in zip(names, state):
            object.__setattr__(self, name, value)

    return __repr__, __eq__, __hash__, __setattr__, __delattr__, __getstate__, __setstate__
