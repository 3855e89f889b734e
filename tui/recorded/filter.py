"""The request-log filter language (in the spirit of mitmproxy's filter expressions).

Terms:

* ``~m POST`` method; ``~s 5xx`` / ``~s 404`` / ``~s 400-499`` / ``~s >=400`` status;
  ``~c 404`` exact status code;
* ``~u REGEX`` target (raw or percent-decoded); ``~h REGEX`` any header line (``Name: value``),
  ``~hq``/``~hs`` request/response headers only; ``~b REGEX`` either body, ``~bq``/``~bs`` one
  of them; ``~t REGEX`` content type of either side;
* ``~d >100ms`` duration (``<``, ``<=``, ``>``, ``>=``, ``=``; units ``us``, ``ms``, ``s``);
* ``~w N`` worker: its slot number as the workers panel shows it, or its pid;
* ``~e`` failed: a traceback or a server-side error;
* ``5xx``, ``404``, ``POST``: unquoted shorthands for ``~s 5xx``, ``~c 404``, ``~m POST``;
* any other word, or anything in double quotes: text that must appear, case-insensitively,
  in the request line (method, target — raw or decoded —, version), the client address or the error.

Combine with ``!`` (not), ``&`` (and; juxtaposition also means and), ``|`` (or, lowest
precedence) and parentheses.  Regexes ignore case.

:func:`parse_filter` raises :class:`FilterError` (with the offending position) on a bad
expression; the filter bar shows it inline and keeps the last good filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

from devserver.ipc.events import RequestEvent
from tui.recorded.bodies import body_bytes

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})

_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)
_STATUS = re.compile(r"^[1-5]\d\d$")
_STATUS_RANGE = re.compile(r"^([1-5]\d\d)-([1-5]\d\d)$")
_COMPARISON = re.compile(r"^(<=|>=|<|>|=)?\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]*)$", re.IGNORECASE)
_DURATION_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": float.__lt__,
    "<=": float.__le__,
    ">": float.__gt__,
    ">=": float.__ge__,
    "=": float.__eq__,
    "": float.__eq__,
}


class FilterError(ValueError):
    """A malformed expression; ``position`` is the character offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at column {self.position + 1})"


def _no_slot(pid: int) -> int | None:
    return None


@dataclass(frozen=True, slots=True)
class Context:
    """What a match may need beyond the event: the worker slot of a pid (live, from the workers panel)."""

    slot_of: Callable[[int], int | None] = _no_slot


class Node(Protocol):
    """One node of a parsed expression."""

    def matches(self, event: RequestEvent, ctx: Context) -> bool: ...


# ------------------------------------------------------------------ nodes


@dataclass(frozen=True, slots=True)
class Everything:
    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Not:
    inner: Node

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return not self.inner.matches(event, ctx)


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Node, ...]

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return all(p.matches(event, ctx) for p in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Node, ...]

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return any(p.matches(event, ctx) for p in self.parts)


@dataclass(frozen=True, slots=True)
class Text:
    needle: str  # lower case

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        target = event.target.lower()
        return (
            self.needle in f"{event.method} {target} {event.http_version}".lower()
            or self.needle in unquote(target)
            or self.needle in event.client
            or self.needle in (event.error or "").lower()
            or self.needle in event.request_line.lower()  # a refused request's raw line
        )


@dataclass(frozen=True, slots=True)
class Method:
    method: str  # upper case

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return event.method.upper() == self.method


@dataclass(frozen=True, slots=True)
class StatusRange:
    low: int
    high: int

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return self.low <= event.status <= self.high


@dataclass(frozen=True, slots=True)
class Duration:
    op: str
    ms: float

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return _OPERATORS[self.op](float(event.duration_ms), self.ms)


@dataclass(frozen=True, slots=True)
class Worker:
    number: int

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return event.worker_pid == self.number or ctx.slot_of(event.worker_pid) == self.number


@dataclass(frozen=True, slots=True)
class Failed:
    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return bool(event.traceback or event.error)


def _target_texts(event: RequestEvent) -> Iterator[str]:
    yield event.target
    yield unquote(event.target)
    if event.request_line:
        yield event.request_line  # a refused request has no target of its own, only the line it sent


def _header_lines(which: str) -> Callable[[RequestEvent], Iterator[str]]:
    def lines(event: RequestEvent) -> Iterator[str]:
        if "q" in which:
            yield from (f"{n}: {v}" for n, v in event.request_headers)
        if "s" in which:
            yield from (f"{n}: {v}" for n, v in event.response_headers)

    return lines


def _content_types(event: RequestEvent) -> Iterator[str]:
    for name, value in (*event.request_headers, *event.response_headers):
        if name.lower() == "content-type":
            yield value


def _bodies(which: str) -> Callable[[RequestEvent], Iterator[str]]:
    def texts(event: RequestEvent) -> Iterator[str]:
        for side in which:
            data = body_bytes(event, "request" if side == "q" else "response")
            if data:
                yield data.decode("utf-8", "replace")

    return texts


@dataclass(frozen=True, slots=True)
class Search:
    """A regex searched in each text ``source`` yields (headers, target, bodies …)."""

    pattern: re.Pattern[str]
    source: Callable[[RequestEvent], Iterator[str]]

    def matches(self, event: RequestEvent, ctx: Context) -> bool:
        return any(self.pattern.search(text) for text in self.source(event))


# ---------------------------------------------------------- term builders


def _regex(arg: str, pos: int) -> re.Pattern[str]:
    try:
        return re.compile(arg, re.IGNORECASE)
    except re.error as exc:
        raise FilterError(f"bad regex {arg!r}: {exc.msg}", pos) from None


def _status(arg: str, pos: int) -> Node:
    if match := _STATUS_CLASS.match(arg):
        base = int(match.group(1)) * 100
        return StatusRange(base, base + 99)
    if _STATUS.match(arg):
        return StatusRange(int(arg), int(arg))
    if match := _STATUS_RANGE.match(arg):
        return StatusRange(int(match.group(1)), int(match.group(2)))
    if (match := _COMPARISON.match(arg)) and match.group(1) and not match.group(3) and "." not in arg:
        op, n = match.group(1), int(match.group(2))
        low, high = {"<": (0, n - 1), "<=": (0, n), ">": (n + 1, 999), ">=": (n, 999), "=": (n, n)}[op]
        return StatusRange(low, high)
    raise FilterError(f"~s wants 5xx, 404, 400-499 or >=400, not {arg!r}", pos)


def _code(arg: str, pos: int) -> Node:
    if not arg.isdigit() or len(arg) != 3:
        raise FilterError(f"~c wants a 3-digit status code, not {arg!r}", pos)
    return StatusRange(int(arg), int(arg))


def _method(arg: str, pos: int) -> Node:
    if not re.fullmatch(r"[A-Za-z]+", arg):
        raise FilterError(f"~m wants a method name, not {arg!r}", pos)
    return Method(arg.upper())


def _duration(arg: str, pos: int) -> Node:
    match = _COMPARISON.match(arg)
    unit = match.group(3).lower() if match else ""
    if match is None or unit not in _DURATION_UNITS:
        raise FilterError(f"~d wants a duration such as >100ms, <2s or >=500us, not {arg!r}", pos)
    return Duration(match.group(1) or "=", float(match.group(2)) * _DURATION_UNITS[unit])


def _worker(arg: str, pos: int) -> Node:
    if not arg.isdigit():
        raise FilterError(f"~w wants a worker number or pid, not {arg!r}", pos)
    return Worker(int(arg))


def _search(source: Callable[[RequestEvent], Iterator[str]]) -> Callable[[str, int], Node]:
    return lambda arg, pos: Search(_regex(arg, pos), source)


# ``~x``: (builder of the node from its argument, or None when it takes none; what it means).
OPERATORS: dict[str, tuple[Callable[[str, int], Node] | None, str]] = {
    "~m": (_method, "method"),
    "~s": (_status, "status: 5xx, 404, 400-499, >=400"),
    "~c": (_code, "exact status code"),
    "~u": (_search(_target_texts), "target matches regex"),
    "~h": (_search(_header_lines("qs")), "a request or response header matches regex"),
    "~hq": (_search(_header_lines("q")), "a request header matches regex"),
    "~hs": (_search(_header_lines("s")), "a response header matches regex"),
    "~b": (_search(_bodies("qs")), "request or response body matches regex"),
    "~bq": (_search(_bodies("q")), "request body matches regex"),
    "~bs": (_search(_bodies("s")), "response body matches regex"),
    "~t": (_search(_content_types), "content type matches regex"),
    "~d": (_duration, "duration: >100ms, <2s, >=500us"),
    "~w": (_worker, "worker slot or pid"),
    "~e": (None, "failed (traceback or server error)"),
}
_NO_ARG: dict[str, Node] = {"~e": Failed()}


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "op" (! & | ( )), "word", "quoted"
    text: str
    pos: int


_PUNCTUATION = "!&|()"


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into operators, words and quoted strings (``\\"`` escapes a quote)."""
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCTUATION:
            tokens.append(Token("op", ch, i))
            i += 1
        elif ch == '"':
            start, i, chars = i, i + 1, []
            while i < n and query[i] != '"':
                if query[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(query[i])
                i += 1
            if i >= n:
                raise FilterError("unclosed quote", start)
            tokens.append(Token("quoted", "".join(chars), start))
            i += 1
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] not in _PUNCTUATION and query[i] != '"':
                i += 1
            tokens.append(Token("word", query[start:i], start))
    return tokens


# ---------------------------------------------------------------- parser


class _Parser:
    """Recursive descent: or := and ('|' and)*; and := not ('&'? not)*; not := '!' not | atom."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_op(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text == text

    def parse(self) -> Node:
        if not self.tokens:
            return Everything()
        node = self.parse_or()
        if (token := self.peek()) is not None:
            raise FilterError(f"unexpected {token.text!r}", token.pos)
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.is_op("|"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def parse_and(self) -> Node:
        parts = [self.parse_not()]
        while self.peek() is not None and not self.is_op("|") and not self.is_op(")"):
            if self.is_op("&"):
                self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def parse_not(self) -> Node:
        if self.is_op("!"):
            self.take()
            return Not(self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> Node:
        token = self.peek()
        if token is None:
            raise FilterError("expression ends too soon", len(self.query))
        self.take()
        if token.kind == "quoted":
            return Text(token.text.lower())
        if token.kind == "op":
            if token.text == "(":
                node = self.parse_or()
                if not self.is_op(")"):
                    raise FilterError("missing ')'", token.pos)
                self.take()
                return node
            raise FilterError(f"unexpected {token.text!r}", token.pos)
        if token.text.startswith("~"):
            return self.operator(token)
        return shorthand(token.text)

    def operator(self, token: Token) -> Node:
        if token.text not in OPERATORS:
            raise FilterError(f"unknown operator {token.text!r} (see ? for the list)", token.pos)
        builder, _ = OPERATORS[token.text]
        if builder is None:
            return _NO_ARG[token.text]
        arg = self.peek()
        if arg is None or arg.kind == "op":
            raise FilterError(f"{token.text} needs an argument", token.pos)
        self.take()
        return builder(arg.text, arg.pos)


def shorthand(word: str) -> Node:
    """An unquoted word: status class, status code, method, or else text."""
    if match := _STATUS_CLASS.match(word):
        base = int(match.group(1)) * 100
        return StatusRange(base, base + 99)
    if _STATUS.match(word):
        return StatusRange(int(word), int(word))
    if word.upper() in METHODS:
        return Method(word.upper())
    return Text(word.lower())


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """A parsed query; the empty filter matches everything."""

    node: Node = field(default_factory=Everything)
    query: str = ""
    context: Context = field(default_factory=Context)

    @property
    def is_empty(self) -> bool:
        """True when the filter lets every request through."""
        return isinstance(self.node, Everything)

    def matches(self, event: RequestEvent) -> bool:
        """Whether ``event`` belongs in the filtered log."""
        return self.node.matches(event, self.context)

    def __str__(self) -> str:
        return self.query


def parse_filter(query: str, context: Context | None = None) -> RequestFilter:
    """Parse ``query`` (see the module docstring); raises :class:`FilterError`."""
    node = _Parser(query).parse()
    return RequestFilter(node=node, query=query.strip(), context=context or Context())
