"""SQL as the detail shows it: parameters inlined and shortened, secrets masked, and its shape for spotting repeats."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from devserver.debug.tracebacks import MASK, SECRET, short_repr
from devserver.kit.frozen import record

MAX_SQL = 2000  # characters kept of one statement
# Placeholders of the DB-API paramstyles: qmark/format (positional), named/pyformat (by name).
# (The lookahead lets most positions fail at once: Python's re tries every branch at every position.)
_PLACEHOLDER = re.compile(r"(?=[%?:])(?:%\((\w+)\)s|%s|\?|(?<![:\w]):(\w+))")
# What names the value a placeholder stands for, at the end of the text before it: `password = `, `"token" IN (`.
_NAMED_BY = re.compile(r".*\b(\w+)[\"`\]]?\s*(?:=|<>|!=|<=?|>=?|\bLIKE|\bIN\s*\()\s*\Z", re.IGNORECASE | re.DOTALL)
_INSERT_COLUMNS = re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+\S+\s*\(([^)]*)\)\s*VALUES\s*\(", re.IGNORECASE)
# A literal written into the statement after a secret-looking name: `password = 'hunter2'`.
_SECRET_LITERAL = re.compile(rf"(\b\w*(?:{SECRET.pattern})\w*[\"`\]]?\s*=\s*)('(?:[^']|'')*'|\d+)", re.IGNORECASE)
_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_SPACE = re.compile(r"\s+")
_SHAPES: dict[str, str] = {}  # statement text -> shape: ORMs run the same text with other parameters
_MAX_SHAPES = 1024


@record
class _Slot:
    """A placeholder of a statement: which parameter goes there, and the name its value is masked by."""

    text: str  # the placeholder as written, kept where no parameter fits
    key: str | None  # by name; None: the next positional one
    index: int  # among the positional ones
    name: str
    masked: bool  # the name looks secret: decided once per statement text, not once per value

    def shown(self, value: object) -> str:
        if type(value) in _PLAIN or (type(value) is str and len(value) <= _SHORT):
            return MASK if self.masked else repr(value)
        return short_repr(self.name, value)  # reprlib: shortened, secrets masked as in tracebacks


@record
class _Template:
    """A statement cut at its placeholders, once per text: ORMs run the same text with other parameters."""

    chunks: tuple[str, ...]  # len(slots) + 1, whitespace collapsed, secret literals masked
    slots: tuple[_Slot, ...]
    bare: str  # the statement shown without parameters (its placeholders as written)


_TEMPLATES: dict[str, _Template] = {}
_PLAIN = (int, float, bool, type(None))  # shown as repr() shows them: reprlib would cost several times more
_SHORT = 40  # characters of a string shown whole


def shown(sql: str, params: object) -> str:
    """``sql`` with its parameters inlined (each shortened, masked when its column looks secret), at most MAX_SQL."""
    template = _TEMPLATES.get(sql) or _template(sql)
    if not template.slots or not params:
        return template.bare
    by_name: Mapping[str, object] | None = None
    positional: Sequence[object] = ()
    # The drivers' own types first: an ABC's isinstance() costs several Python calls.
    if isinstance(params, (tuple, list)):
        positional = params
    elif isinstance(params, (dict, Mapping)):
        by_name = params
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        positional = params
    chunks = template.chunks
    parts = [chunks[0]]
    for slot, chunk in zip(template.slots, chunks[1:]):
        if slot.key is not None:
            parts.append(slot.shown(by_name[slot.key]) if by_name and slot.key in by_name else slot.text)
        else:
            parts.append(slot.shown(positional[slot.index]) if slot.index < len(positional) else slot.text)
        parts.append(chunk)
    return _bounded("".join(parts))


def _bounded(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_SQL else text[: MAX_SQL - 1] + "…"


def _template(sql: str) -> _Template:
    secret = SECRET.search(sql) is not None  # most statements name nothing secret: no name is looked for then
    text = _SECRET_LITERAL.sub(lambda m: m.group(1) + MASK, sql) if secret else sql
    insert = _INSERT_COLUMNS.search(text) if secret else None
    columns = [c.strip().strip('"`[]') for c in insert.group(1).split(",")] if insert else []
    chunks, slots = [], []
    last = index = 0
    for match in _PLACEHOLDER.finditer(text):
        key = match.group(1) or match.group(2)
        position = index
        if key is None:
            index += 1
        name = _name_of(text, match.start(), key, position, columns, insert) if secret else (key or "")
        chunks.append(_SPACE.sub(" ", text[last:match.start()]))
        slots.append(_Slot(match.group(0), key, position, name, bool(name) and SECRET.search(name) is not None))
        last = match.end()
    chunks.append(_SPACE.sub(" ", text[last:]))
    if len(_TEMPLATES) >= _MAX_SHAPES:
        _TEMPLATES.clear()  # bounded: a new set of statements fills it again
    bare = [chunks[0]]
    for slot, chunk in zip(slots, chunks[1:]):
        bare += (slot.text, chunk)
    made = _TEMPLATES[sql] = _Template(tuple(chunks), tuple(slots), _bounded("".join(bare)))
    return made


def _name_of(sql: str, at: int, key: str | None, index: int, columns: list[str], insert: re.Match[str] | None) -> str:
    """What the value at ``at`` is called, for masking: its parameter name, column, or compared name."""
    if key is not None and SECRET.search(key):
        return key
    if insert is not None and at >= insert.end() and 0 <= index < len(columns):
        return columns[index]
    named = _NAMED_BY.match(sql[max(0, at - 80):at])
    return named.group(1) if named else (key or "")


def shape(sql: str) -> str:
    """The statement with its literals and placeholders as ``?`` and lists of them as ``(...)``: what repeats share."""
    known = _SHAPES.get(sql)
    if known is not None:
        return known
    text = _PLACEHOLDER.sub("?", sql)
    text = _LITERAL.sub("?", text)
    text = _LIST.sub("(...)", text)
    text = _SPACE.sub(" ", text).strip()[:MAX_SQL]
    if len(_SHAPES) >= _MAX_SHAPES:
        _SHAPES.clear()  # bounded: a new set of statements fills it again
    _SHAPES[sql] = text
    return text
