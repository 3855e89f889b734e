"""The recorder of one request: what the hooks saw while its app ran, bounded, carried by a context variable.

A WSGI call runs in a pool thread and an ASGI call in a task: each gets the
recorder of its own request through :data:`CURRENT` (a task copies the context
it was made in; a thread sets it around the call), so concurrent requests of
one worker never mix.  The hooks add raw facts only (statement, parameters,
timings, the app frame); formatting, masking and the search for repeats wait
for :meth:`Recorder.finish`, run once per request on the worker's loop.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from devserver.ipc.events import InsideRecord, OutboundRecord, QueryRecord, RepeatedQuery, TemplateRecord
from devserver.probes import profile, rounded_ms, route_of, statements

MAX_QUERIES = 200  # kept per request; the rest are counted in ``dropped`` (and still in the repeats)
MAX_CALLS = 100
MAX_TEMPLATES = 100
MAX_SHAPES = 200  # distinct statement shapes counted per request
# Statements of one shape run this many times by one request are flagged as an N+1.  A view runs a shape
# two or three times on purpose (a count and a page, a lookup per form); a loop over a list's items runs it
# once per item, ten or more for a page: five flags those and leaves the deliberate handful alone.
REPEATED_AT = 5

T = TypeVar("T")
A = TypeVar("A")

# A statement as a hook saw it, formatted in finish(): sql, params, ms, at (ms into the call), rows, source,
# database, error.  A plain tuple: the hot path builds one per statement, a NamedTuple's __new__ costs more.
_Query = tuple[str, object, float, float, int | None, str, str, str]


class _Shape:
    """How often a shape ran in one request, for how long, and from which app frames."""

    __slots__ = ("count", "ms", "sources")

    def __init__(self) -> None:
        self.count = 0
        self.ms = 0.0
        self.sources: dict[str, int] = {}


class Recorder:
    """What one request's app call did: queries, outbound calls and templates, each list bounded."""

    __slots__ = ("started", "ended", "open", "queries", "calls", "templates", "dropped", "shapes",
                 "profiler", "route")

    def __init__(self, route: str) -> None:
        self.started = time.perf_counter()
        self.ended = 0.0
        self.open = True
        self.queries: list[_Query] = []
        self.calls: list[OutboundRecord] = []
        self.templates: list[TemplateRecord] = []
        self.dropped = 0
        self.shapes: dict[str, _Shape] = {}
        self.profiler: profile.Running | None = None
        self.route = route

    def since(self, at: float) -> float:
        """Milliseconds from the app call's start to ``at`` (a perf_counter value)."""
        return (at - self.started) * 1000

    def query(self, sql: str, params: object, started: float, ms: float, rows: int | None, source: str,
              database: str, error: str = "") -> None:
        shape = statements.shape(sql)
        seen = self.shapes.get(shape)
        if seen is None and len(self.shapes) < MAX_SHAPES:
            seen = self.shapes[shape] = _Shape()
        if seen is not None:
            seen.count += 1
            seen.ms += ms
            sources = seen.sources
            sources[source] = sources.get(source, 0) + 1
        if len(self.queries) < MAX_QUERIES:
            self.queries.append((sql, params, ms, self.since(started), rows, source, database, error))
        else:
            self.dropped += 1

    def call(self, record: OutboundRecord) -> None:
        if len(self.calls) < MAX_CALLS:
            self.calls.append(record)
        else:
            self.dropped += 1

    def template(self, record: TemplateRecord) -> None:
        if len(self.templates) < MAX_TEMPLATES:
            self.templates.append(record)
        else:
            self.dropped += 1

    def stop(self) -> None:
        """The app call returned (WSGI: its body consumed): its time ends here, and the profile with it."""
        if not self.ended:
            self.ended = time.perf_counter()
        if self.profiler is not None:
            self.profiler.stop()

    def finish(self) -> InsideRecord:
        """The record for the request's event; the hooks add nothing more to this recorder."""
        self.stop()
        self.open = False
        queries = tuple(QueryRecord(statements.shown(sql, params), rounded_ms(ms), rounded_ms(at), rows, source,
                                    database, error)
                        for sql, params, ms, at, rows, source, database, error in self.queries)
        repeated = tuple(sorted((RepeatedQuery(shape, seen.count, rounded_ms(seen.ms),
                                               max(seen.sources, key=seen.sources.__getitem__))
                                 for shape, seen in self.shapes.items() if seen.count >= REPEATED_AT),
                                key=lambda r: -r.count))
        return InsideRecord(rounded_ms(self.since(self.ended)), queries, repeated, tuple(self.calls),
                            tuple(self.templates), self.profiler.record() if self.profiler else None, self.dropped)


class _Request(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def target(self) -> str: ...


class Exchange(Protocol):
    """What a recorder needs of a round trip (handlers/exchange.Exchange, a layer above): its request's route,
    and where the worker finds the recorder when it records the request."""

    recorder: Recorder | None

    @property
    def request(self) -> _Request: ...


CURRENT: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("devserver_recorder", default=None)
_on = False  # hooks installed (devserver.probes.hooks.install): recorders are made


def _nothing() -> None:
    pass


_before_call: Callable[[], None] = _nothing  # the hooks' catch-up with frameworks imported since (hooks.catch_up)


def switch_on(before_call: Callable[[], None]) -> None:
    global _on, _before_call
    _on, _before_call = True, before_call


def current() -> Recorder | None:
    """The recorder of the request the calling thread or task serves, if it is still recording."""
    recorder = CURRENT.get()
    return recorder if recorder is not None and recorder.open else None


def _begin(exchange: Exchange) -> Recorder:
    _before_call()
    request = exchange.request
    recorder = exchange.recorder = Recorder(route_of(request.method, request.target))
    recorder.profiler = profile.start_if_armed(recorder.route)
    return recorder


def recorded(exchange: Exchange, fn: Callable[[A], T]) -> Callable[[A], T]:
    """``fn`` (a WSGI call, run in a pool thread) recording into a recorder of ``exchange``'s (``fn`` when off)."""
    if not _on:
        return fn

    def call(arg: A) -> T:
        recorder = _begin(exchange)
        token = CURRENT.set(recorder)
        try:
            return fn(arg)
        finally:
            recorder.stop()
            CURRENT.reset(token)

    return call


def entered(exchange: Exchange) -> contextvars.Token[Recorder | None] | None:
    """Make ``exchange``'s recorder current while an ASGI call's task is created (it copies the context)."""
    return CURRENT.set(_begin(exchange)) if _on else None


def left(token: contextvars.Token[Recorder | None] | None) -> None:
    if token is not None:
        CURRENT.reset(token)
