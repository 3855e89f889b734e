"""An event as a JSON object: the one shape the JSON log line, ``devserver requests --json`` and the MCP tools share."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devserver.ipc.events import Event

# Of what a request did inside (InsideRecord), the record has these even when empty; the rest when present.
ALWAYS_SHOWN = ("app_ms", "queries", "outbound")


def event_record(event: Event) -> dict[str, object]:
    """``event``'s fields and its type; the preview's bytes as text (invalid UTF-8 replaced); what the request did
    inside at the top (a script reads ``line["queries"]``, not ``line["inside"]["queries"]``).

    Field by field through :func:`plain`, not ``asdict()``, which deep-copies every value (a JSON log line
    of a hello request cost 500k instructions with it): json.dumps writes a list as it writes a tuple.
    """
    record: dict[str, object] = {"type": type(event).__name__}
    names, values, _ = _shape(type(event))
    for name, value in zip(names, values(event)):
        record[name] = value if type(value) in _SCALARS else plain(value)
    preview = record.get("body_preview")
    if isinstance(preview, bytes):
        record["body_preview"] = preview.decode("utf-8", "replace")
    inside = record.pop("inside", None)
    if isinstance(inside, dict):
        record.update((key, value) for key, value in inside.items() if value or key in ALWAYS_SHOWN)
    return record


# A record is a tree (frozen records of builtin values hold no cycle): the check for one, json.dumps's default,
# would cost a dict entry per object (18k instructions of a Flask page's line of 8 queries).
_ENCODE = json.JSONEncoder(check_circular=False).encode


def event_json(event: Event) -> str:
    """``event``'s record as one line of JSON (json escapes every control character: ESC is \\u001b)."""
    return _ENCODE(event_record(event))


_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})
# The field types whose values are always scalars: a record class of only these (a query, a call, a template)
# becomes its dict in one call, no value looked at.
_SCALAR_TYPES = frozenset({"str", "int", "float", "bool", "bytes", "str | None", "int | None", "float | None"})
# A record class's field names, one C call that reads all their values (a query's record is read once
# per JSON line for each of a request's statements: a getattr per field was most of the line's cost), and,
# for a class of scalars only, the function that makes its dict.
_Shape = tuple[tuple[str, ...], Callable[[object], tuple[object, ...]], Callable[[object], dict[str, object]] | None]
_SHAPES: dict[type, _Shape] = {}


def _shape(kind: type) -> _Shape:
    shape = _SHAPES.get(kind)
    if shape is None:
        names = tuple(f.name for f in fields(kind))
        read = operator.attrgetter(*names)
        values = read if len(names) > 1 else lambda record: (read(record),)
        flat = all(f.type in _SCALAR_TYPES for f in fields(kind))  # the annotations as written (postponed)
        shape = _SHAPES[kind] = (names, values, _dict_maker(names) if flat else None)
    return shape


def _dict_maker(names: tuple[str, ...]) -> Callable[[object], dict[str, object]]:
    """A function returning a record's fields as a dict literal, made once per class from its field names (as
    dataclasses makes ``__init__``): a literal costs half of ``dict(zip(names, values))``, which grows the dict
    key by key (8 queries' dicts: 63k instructions that way, 27k this one)."""
    items = ", ".join(f"{name!r}: record.{name}" for name in names)
    namespace: dict[str, Callable[[object], dict[str, object]]] = {}
    exec(f"def as_dict(record):\n    return {{{items}}}\n", namespace)  # the names of its fields, never input
    return namespace["as_dict"]


def plain(record: object) -> object:
    """A record of builtin values (an event and what it holds) as JSON takes it: dicts, lists, values.

    A tuple of values (headers, a frame's source lines) is kept as it is: json.dumps writes it as a list.
    The records' tuples hold one kind of item each (``tuple[X, ...]``), so the first item tells.
    """
    kind = type(record)
    if kind in _SCALARS:
        return record
    if kind is tuple:
        items: tuple[object, ...] = record  # type: ignore[assignment]
        if not items or type(items[0]) in _SCALARS or type(items[0]) is tuple:
            return items
        as_dict = _SHAPES.get(type(items[0]), (None, None, None))[2]
        if as_dict is not None:  # a list of queries, calls or templates: one call each
            return [as_dict(item) for item in items]
        return [plain(item) for item in items]
    shape = _SHAPES.get(kind)
    if shape is None:
        if not is_dataclass(record):
            return record
        shape = _shape(kind)
    names, values, as_dict = shape
    if as_dict is not None:
        return as_dict(record)
    return {name: value if type(value) in _SCALARS else plain(value) for name, value in zip(names, values(record))}
