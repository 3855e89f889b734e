"""SQL as the detail shows it: parameters inlined and shortened, secrets masked, and its shape for spotting repeats."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from devserver.debug.tracebacks import MASK, SECRET, short_repr

MAX_SQL = 2000  # characters kept of one statement
# Placeholders of the DB-API paramstyles: qmark/format (positional), named/pyformat (by name).
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|\?|(?<![:\w]):(\w+)")
# What names the value a placeholder stands for: `password = ?`, `"token" IN (?`.
_NAMED_BY = re.compile(r"[\"`\[]?(\w+)[\"`\]]?\s*(?:=|<>|!=|<=?|>=?|\bLIKE|\bIN\s*\()\s*$", re.IGNORECASE)
_INSERT_COLUMNS = re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+\S+\s*\(([^)]*)\)\s*VALUES\s*\(", re.IGNORECASE)
# A literal written into the statement after a secret-looking name: `password = 'hunter2'`.
_SECRET_LITERAL = re.compile(rf"(\b\w*(?:{SECRET.pattern})\w*[\"`\]]?\s*=\s*)('(?:[^']|'')*'|\d+)", re.IGNORECASE)
_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_SPACE = re.compile(r"\s+")
_SHAPES: dict[str, str] = {}  # statement text -> shape: ORMs run the same text with other parameters
_MAX_SHAPES = 1024


def shown(sql: str, params: object) -> str:
    """``sql`` with its parameters inlined (each shortened, masked when its column looks secret), at most MAX_SQL."""
    text = _SECRET_LITERAL.sub(lambda m: m.group(1) + MASK, sql)
    if params:
        text = _inline(text, params)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= MAX_SQL else text[: MAX_SQL - 1] + "…"


def _inline(sql: str, params: object) -> str:
    by_name = params if isinstance(params, Mapping) else None
    positional = params if isinstance(params, Sequence) and not isinstance(params, (str, bytes)) else None
    if by_name is None and positional is None:
        return sql
    insert = _INSERT_COLUMNS.search(sql)
    columns = [c.strip().strip('"`[]') for c in insert.group(1).split(",")] if insert else []
    parts: list[str] = []
    last = index = 0
    for match in _PLACEHOLDER.finditer(sql):
        key = match.group(1) or match.group(2)
        if key is not None:
            if by_name is None or key not in by_name:
                continue
            value: object = by_name[key]
        else:
            if positional is None or index >= len(positional):
                continue
            value = positional[index]
            index += 1
        before = sql[last:match.start()]
        parts.append(before)
        parts.append(short_repr(_name_of(sql, match.start(), key, index - 1, columns, insert), value))
        last = match.end()
    parts.append(sql[last:])
    return "".join(parts)


def _name_of(sql: str, at: int, key: str | None, index: int, columns: list[str], insert: re.Match[str] | None) -> str:
    """What the value at ``at`` is called, for masking: its parameter name, column, or compared name."""
    if key is not None and SECRET.search(key):
        return key
    if insert is not None and at >= insert.end() and 0 <= index < len(columns):
        return columns[index]
    named = _NAMED_BY.search(sql, max(0, at - 80), at)
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
