"""Events that cross the worker → supervisor boundary.

Every event is a small frozen dataclass of builtin-typed fields so that it
pickles cheaply over its worker's event pipe (a ``multiprocessing`` Pipe, one
per worker) and cannot be changed behind the receiver's back.  The dashboard and the console log consume only these.
Tracebacks travel as text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import field, fields
from typing import TYPE_CHECKING, TypeVar

from devserver.ipc.reports import ErrorReport
from devserver.kit.frozen import constructor_from_values, record
from devserver.kit.safetext import escape_controls

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

E = TypeVar("E", bound="DataclassInstance")


_REBUILDERS: dict[type, Callable[[type, tuple[object, ...]], object]] = {}


def _rebuilt(cls: type, values: tuple[object, ...]) -> object:
    """A record unpickled with its fields set as the receiver sets a RequestEvent's (kit/frozen), not by
    ``__init__``: a request's queries and calls are a record each, rebuilt by the supervisor per request."""
    return _REBUILDERS[cls](cls, values)


def _pickled_by_values(cls: type[E]) -> type[E]:
    """Pickle as (class, field values): a slots dataclass's own pickling walks ``fields()`` for every
    object, which cost the request path about 5 µs per event (pickled by the worker, unpickled by the supervisor)."""
    values = operator.attrgetter(*(f.name for f in fields(cls)))
    _REBUILDERS[cls] = constructor_from_values(cls)

    def __reduce__(self: E) -> tuple[Callable[..., object], tuple[object, ...]]:
        return _rebuilt, (cls, values(self))

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls

Headers = tuple[tuple[str, str], ...]


@_pickled_by_values
@record
class BodyRecord:
    """Where a worker kept (the first ``kept`` bytes of) a body of ``size`` bytes.

    The bytes live at ``offset`` in the spool file ``path`` (devserver.debug.capture),
    which the oldest records lose first when the store is full.
    """

    path: str
    offset: int
    kept: int
    size: int

    @property
    def truncated(self) -> bool:
        """True when the body was longer than what was kept."""
        return self.size > self.kept


@_pickled_by_values
@record
class WebSocketMessage:
    """One message of a WebSocket connection, as its detail lists it (the first bytes only)."""

    at: float  # seconds since the handshake
    direction: str  # "in" (from the client) or "out"
    size: int
    text: bool
    shown: str  # the first bytes: text as text (invalid UTF-8 replaced), binary as hex


@_pickled_by_values
@record
class WebSocketSummary:
    """A WebSocket connection once closed: its request's event carries it (status 101)."""

    messages_in: int
    messages_out: int
    close_code: int  # 1006: the TCP connection ended without a close frame
    close_reason: str = ""
    messages: tuple[WebSocketMessage, ...] = ()  # the first ones, bounded (devserver.worker.websocket)


@_pickled_by_values
@record
class QueryRecord:
    """One SQL statement a request ran (devserver.probes), as the detail and the JSON line show it."""

    sql: str  # the statement, parameters inlined and shortened, secrets masked as in tracebacks
    ms: float
    started_ms: float  # since the request's app call began
    rows: int | None = None  # None: the driver does not say
    source: str = ""  # the app frame that ran it, "catalog/views.py:40" ("": none of the app's)
    database: str = ""  # which hook saw it and on what: "django:default", "sqlalchemy:sqlite", "sqlite3"
    error: str = ""  # the exception's last line when the statement failed


@_pickled_by_values
@record
class RepeatedQuery:
    """Statements of one shape run again and again by one request: the N+1 the detail flags."""

    shape: str  # the statement with its literals replaced by ?
    count: int
    ms: float  # all of them together
    source: str = ""  # the app frame most of them came from


@_pickled_by_values
@record
class OutboundRecord:
    """One HTTP call a request made to another service."""

    method: str
    url: str  # credentials and secret query values masked
    status: int  # 0: no answer (error says why)
    ms: float
    started_ms: float
    bytes_received: int = 0
    client: str = ""  # "http.client" (urllib, requests), "httpx", "aiohttp"
    source: str = ""
    error: str = ""


@_pickled_by_values
@record
class TemplateRecord:
    """One template a request rendered."""

    name: str
    ms: float
    started_ms: float
    engine: str = ""  # "jinja2", "django"
    source: str = ""


@_pickled_by_values
@record
class ProfileNode:
    """One line of a profile's call tree, depth first: ``depth`` 0 is the root."""

    depth: int
    function: str
    location: str  # "catalog/views.py:40"
    ms: float  # time in this call and below
    self_ms: float = 0.0
    app: bool = True  # the user's code, not the library's or the interpreter's


@_pickled_by_values
@record
class ProfileRecord:
    """A sampling profile of one request, taken because its route was armed from the dashboard."""

    route: str  # what was armed: "GET /catalog" (devserver.probes.route_of)
    interval_ms: float
    samples: int
    nodes: tuple[ProfileNode, ...] = ()
    profiler: str = "pyinstrument"


@record
class InsideRecord:
    """What a request did inside the app (devserver.probes): recorded only when someone looks
    (Config.record_inside), each list bounded per request (``dropped`` counts what was left out)."""

    app_ms: float  # the app call itself, wall time; the rest of duration_ms is the server's
    queries: tuple[QueryRecord, ...] = ()
    repeated: tuple[RepeatedQuery, ...] = ()
    outbound: tuple[OutboundRecord, ...] = ()
    templates: tuple[TemplateRecord, ...] = ()
    profile: ProfileRecord | None = None
    dropped: int = 0

    @property
    def sql_ms(self) -> float:
        return sum(q.ms for q in self.queries)

    @property
    def outbound_ms(self) -> float:
        return sum(c.ms for c in self.outbound)

    @property
    def templates_ms(self) -> float:
        return sum(t.ms for t in self.templates)


# An InsideRecord travels as its lists' field values, tuples of scalars, and is rebuilt in one call: its
# queries, calls and templates are a record each, and one __reduce__ call per record (and one rebuild call
# when unpickled) cost more than pickling their values.
_INSIDE_LISTS = (QueryRecord, RepeatedQuery, OutboundRecord, TemplateRecord)  # the classes of its lists, in order
_inside_lists = operator.attrgetter("queries", "repeated", "outbound", "templates")
_LIST_VALUES = tuple(operator.attrgetter(*(f.name for f in fields(cls))) for cls in _INSIDE_LISTS)
_LIST_MAKERS = tuple(_REBUILDERS[cls] for cls in _INSIDE_LISTS)


def _inside_rebuilt(app_ms: float, lists: tuple[tuple[tuple[object, ...], ...], ...], profile: ProfileRecord | None,
                    dropped: int) -> InsideRecord:
    queries, repeated, outbound, templates = (tuple([make(cls, values) for values in items])
                                              for cls, make, items in zip(_INSIDE_LISTS, _LIST_MAKERS, lists))
    return InsideRecord(app_ms, queries, repeated, outbound, templates, profile, dropped)  # type: ignore[arg-type]


def _inside_reduce(self: InsideRecord) -> tuple[Callable[..., InsideRecord], tuple[object, ...]]:
    lists = tuple(tuple(map(values, items)) for values, items in zip(_LIST_VALUES, _inside_lists(self)))
    return _inside_rebuilt, (self.app_ms, lists, self.profile, self.dropped)


InsideRecord.__reduce__ = _inside_reduce  # type: ignore[assignment,method-assign]


@_pickled_by_values
@record
class RequestEvent:
    """One answered request (or a request rejected by the protocol layer)."""

    time: float
    worker_pid: int
    client: str
    method: str
    target: str
    http_version: str
    status: int
    bytes_sent: int
    duration_ms: float
    request_headers: Headers = ()
    response_headers: Headers = ()
    body_preview: bytes = b""
    traceback: str | None = None
    error: str | None = None  # protocol error text for 4xx/5xx sent by the server itself
    request_body: BodyRecord | None = None  # None: bodies are not being recorded (or there was none)
    response_body: BodyRecord | None = None
    error_report: ErrorReport | None = None  # an app's exception: frames, source, locals, request
    logs: tuple[str, ...] = ()  # lines the app printed or logged while serving this request
    request_id: str = ""  # names the request in the LogEvents of those lines
    # A request the server refused before it was parsed (method and target "-"): its first line as received,
    # up to 1 KiB, latin-1, unescaped (shown_request() escapes it).  "" when parsed, or when nothing came.
    request_line: str = ""
    websocket: WebSocketSummary | None = None  # set when the request became a WebSocket connection
    inside: InsideRecord | None = None  # queries, outbound calls, templates, profile (Config.record_inside)
    # Per line of ``logs``: (level, logger, "path:line" relative to the project, whole for a library's) of the
    # ``logging`` record that wrote it, ("", "", "") for print() output and wsgi.errors; () when none was logged.
    log_sources: tuple[tuple[str, str, str], ...] = ()

    def shown_request(self, limit: int = 0) -> tuple[str, str]:
        """Method and target as a log shows them, control characters escaped.

        A refused request has no method or target of its own: its raw first
        line stands in their place, quoted (as in the common log format) and,
        with ``limit``, shortened to that many characters with an ellipsis.
        """
        if not self.request_line:
            if self.target.isprintable() and self.method.isprintable():  # the usual request: nothing to escape
                return self.method, self.target
            return escape_controls(self.method, multiline=False), escape_controls(self.target, multiline=False)
        # Bytes past ASCII have no place in a request line (RFC 9112 §3): shown as \xNN like the controls.
        line = escape_controls(self.request_line.encode("latin-1").decode("ascii", "backslashreplace"), multiline=False)
        if limit and len(line) > limit:
            line = line[: limit - 1] + "…"
        return "-", f'"{line}"'


@_pickled_by_values
@record
class ReloadEvent:
    """Dynamic modules reloaded after a change on disk."""

    time: float
    paths: tuple[str, ...]
    modules: tuple[str, ...]
    duration_ms: float
    error: str | None = None
    worker_pid: int | None = None  # None: emitted by the supervisor's watcher


@_pickled_by_values
@record
class WorkerEvent:
    """A worker process changed state."""

    time: float
    pid: int
    state: str  # "started" | "exited" | "restarted" | "stopped"
    index: int = 0
    exitcode: int | None = None


@_pickled_by_values
@record
class WorkerStatus:
    """Periodic health report of one worker."""

    time: float
    pid: int
    requests: int
    connections: int
    rss_bytes: int


@_pickled_by_values
@record
class DroppedEvents:
    """Events a worker could not queue because the queue was full."""

    time: float
    worker_pid: int
    count: int


@_pickled_by_values
@record
class LogEvent:
    """A line an application wrote to ``wsgi.errors``, or a server notice."""

    time: float
    worker_pid: int
    text: str
    level: str = "info"
    request_id: str = ""  # the request being served when an app wrote the line, if any


@_pickled_by_values
@record
class ServerEvent:
    """Supervisor lifecycle: "listening", "stopping", "stopped"."""

    time: float
    state: str
    url: str = ""
    workers: int = 0
    details: tuple[str, ...] = field(default_factory=tuple)


@record
class ProjectUsage:
    """What a worker's project APP uses, newly seen since its last report (devserver.apps.project): the
    project watcher takes these out of the stream (devserver.supervisor.projectwatch), the sink never sees one."""

    time: float
    worker_pid: int
    module_files: tuple[str, ...] = ()
    third_party: tuple[str, ...] = ()
    opened: tuple[str, ...] = ()  # project files the app read
    templates: tuple[str, ...] = ()  # of those, the ones a template engine read (its cache is cleared in place)
    written: tuple[str, ...] = ()  # project files the app wrote: never triggers
    frameworks: tuple[str, ...] = ()  # loaded frameworks that matter to the reload strategy
    ready: bool = False  # the app is loaded (or failed to): the worker is taking requests
    stale: tuple[str, ...] = ()  # files found changed before a request, needing a warm restart: start it now
    marks: tuple[tuple[str, float], ...] = ()  # with ready: when each step of the worker's start ended (warm.py logs)


Event = RequestEvent | ReloadEvent | WorkerEvent | WorkerStatus | DroppedEvents | LogEvent | ServerEvent | ProjectUsage
# An event in transit as (class, field values in order), built by the receiver: a worker sends one
# RequestEvent per request, and building the frozen dataclass cost it as much as pickling it.  Both sides
# take the order from the class: the worker names each value (kit/frozen.values_by_name), the receiver
# sets each field (kit/frozen.constructor_from_values).
Wire = tuple[type[Event], tuple[object, ...]]


def received(batch: list[Event | Wire]) -> list[Event]:
    """A batch as a worker sent it, with the events that travelled as values built."""
    return [_BUILDERS.get(item[0], _by_init)(*item) if type(item) is tuple else item  # type: ignore[misc]
            for item in batch]


def _by_init(cls: type[E], values: tuple[object, ...]) -> E:
    return cls(*values)


_BUILDERS: dict[type, Callable[..., Event]] = {RequestEvent: constructor_from_values(RequestEvent)}  # one per request
