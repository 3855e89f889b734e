"""The request-log filter language.

A query is whitespace-separated terms (double quotes group a phrase):

* ``5xx`` (``1xx`` … ``5xx``): status class;  ``404``: exact status;
* ``POST``, ``get`` …: an HTTP method (any case);
* anything else: text that must appear, case-insensitively, in the target,
  the client address or the error text.

Terms of one kind are alternatives (``4xx 5xx`` shows both), kinds combine
(``POST 5xx api`` shows failed POSTs whose target mentions "api").
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from devserver.events import RequestEvent

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})

_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)
_STATUS = re.compile(r"^[1-5]\d\d$")


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """A parsed query; the empty filter matches everything."""

    text: tuple[str, ...] = ()
    classes: frozenset[int] = frozenset()
    statuses: frozenset[int] = frozenset()
    methods: frozenset[str] = frozenset()
    query: str = ""

    @property
    def is_empty(self) -> bool:
        """True when the filter lets every request through."""
        return not (self.text or self.classes or self.statuses or self.methods)

    def matches(self, event: RequestEvent) -> bool:
        """Whether ``event`` belongs in the filtered log."""
        if self.methods and event.method.upper() not in self.methods:
            return False
        if (self.classes or self.statuses) and not (
            event.status // 100 in self.classes or event.status in self.statuses
        ):
            return False
        if self.text:
            haystack = f"{event.target}\n{event.client}\n{event.error or ''}".lower()
            return all(term in haystack for term in self.text)
        return True

    def __str__(self) -> str:
        return self.query


def parse_filter(query: str) -> RequestFilter:
    """Parse ``query`` (see the module docstring); never raises."""
    try:
        terms = shlex.split(query)
    except ValueError:  # an unbalanced quote while the user is still typing
        terms = query.split()
    text: list[str] = []
    classes: set[int] = set()
    statuses: set[int] = set()
    methods: set[str] = set()
    for term in terms:
        if match := _STATUS_CLASS.match(term):
            classes.add(int(match.group(1)))
        elif _STATUS.match(term):
            statuses.add(int(term))
        elif term.upper() in METHODS:
            methods.add(term.upper())
        elif term:
            text.append(term.lower())
    return RequestFilter(
        text=tuple(text),
        classes=frozenset(classes),
        statuses=frozenset(statuses),
        methods=frozenset(methods),
        query=query.strip(),
    )
