"""A JavaScript compactor just good enough for the live-reload script.

The script must stay under 4 KiB as served, yet be readable in the
repository: comments, indentation and the spaces the syntax does not need go
at serve time.  No dependency, and no full tokenizer: the source keeps every
string, template, regex and comment on one line and never divides, so a
``/`` after an operator or an opening bracket starts a regex.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[\w$]")
_BEFORE_REGEX = frozenset("(,=:[!&|?{};")
_SAFE_NEWLINE = re.compile(r"(?<=[{(;,])\n|\n(?=})")  # newlines that never end a statement


def compact(source: str) -> str:
    """``source`` without comments, indentation and spaces the syntax does not need."""
    lines = [text for text in map(_compact_line, source.splitlines()) if text]
    return _SAFE_NEWLINE.sub("", "\n".join(lines)) + "\n"


def _compact_line(line: str) -> str:
    out: list[str] = []
    last = ""  # the last character kept
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "/" and line[i + 1:i + 2] == "/":
            break  # a comment to the end of the line
        if c in "\"'`" or (c == "/" and (not last or last in _BEFORE_REGEX)):
            j = _literal_end(line, i)
            out.append(line[i:j])
            last = line[j - 1]
            i = j
        elif c.isspace():
            while i < n and line[i].isspace():
                i += 1
            if last and i < n and _WORD.match(last) and _WORD.match(line[i]):
                out.append(" ")  # between two words the space is syntax
        else:
            out.append(c)
            last = c
            i += 1
    return "".join(out).strip()


def _literal_end(line: str, start: int) -> int:
    """The index just past the string, template or regex literal that begins at ``start``."""
    quote, j, in_class = line[start], start + 1, False
    while j < len(line):
        c = line[j]
        if c == "\\":
            j += 2
            continue
        if quote == "/" and c in "[]":
            in_class = c == "["
        elif c == quote and not in_class:
            break
        j += 1
    j += 1
    if quote == "/":
        while j < len(line) and line[j].isalpha():  # flags
            j += 1
    return j
