"""One round trip's state, and the seam through which handlers answer it.

Handlers (static files, WSGI apps, the live-reload endpoints) answer through
a ``Responder``; the connection is one, and nothing else of it is visible to
them.  Keeping both here lets the handlers and the connection depend on this
module and never on each other.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING, BinaryIO, Protocol

from devserver.debug.capture import Capture
from devserver.debug.requestlogs import LineCollector
from devserver.http.framing import BodyWriter, Headers
from devserver.http.parser import Request
from devserver.ipc.events import InsideRecord
from devserver.ipc.reports import ErrorReport

if TYPE_CHECKING:
    from devserver.handlers.routes import Route
    from devserver.probes.recorder import Recorder

PREVIEW = 1024  # bytes of request body kept for the event log
SPOOL = 1024 * 1024  # request bodies above this go to a temporary file
STREAM_BOUND = 64 * 1024  # bytes of a streamed body waiting for the app before the connection stops reading


class ClientGone(ConnectionError):
    """The client went away while we were answering."""


class BodyStream(SpooledTemporaryFile[bytes]):
    """The spool of a body an app reads as it arrives (an ASGI app started at the request's head).

    What is written is spooled as any body is (the capture and limits read
    the exchange as before) and also queued for the app, which ``take``s it.
    Past :data:`STREAM_BOUND` queued bytes the connection stops reading
    (``pause``) until the app has taken them (``resume``): a client sending
    faster than the app reads fills no memory.
    """

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        super().__init__(max_size=SPOOL)
        self.parts: list[bytes] = []
        self.queued = 0
        self.ended = False  # the last byte of the body arrived
        self.failure: tuple[int, str] | None = None  # the stream broke (status, message): the server answers it
        self.broken: Callable[[int, str], None] = lambda status, message: None  # told at once (the app may not read)
        self.paused = False
        self.pause, self.resume = pause, resume
        self.arrived = asyncio.Event()  # set when parts, the end, a failure or the close come; cleared by take()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        written = super().write(data)
        self.parts.append(data)
        self.queued += len(data)
        self.arrived.set()
        if self.queued >= STREAM_BOUND and not self.paused:
            self.paused = True
            self.pause()
        return written

    def end(self) -> None:
        self.ended = True
        self.arrived.set()

    def fail(self, status: int, message: str) -> None:
        self.failure = (status, message)
        self.arrived.set()
        self.broken(status, message)

    def close(self) -> None:
        super().close()
        self.arrived.set()

    def take(self) -> bytes:
        """Every byte queued so far (reading starts again if it had stopped)."""
        data = b"".join(self.parts)
        self.parts.clear()
        self.queued = 0
        self.arrived.clear()
        if self.paused:
            self.paused = False
            self.resume()
        return data


class Exchange:
    """A request, its body and what was answered, for one round trip."""

    __slots__ = ("request", "body", "preview", "started", "status", "sent",
                 "traceback", "error", "close", "route", "body_size", "writer",
                 "capture", "report", "logs", "inside", "recorder")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.body: SpooledTemporaryFile[bytes] | io.BytesIO | None = None
        self.preview = b""
        self.body_size = 0
        self.started = time.perf_counter()
        self.status = 0
        self.sent = 0
        self.traceback: str | None = None
        self.error: str | None = None
        self.close = not request.keep_alive  # a reason to close after the answer (the cycle decides: http/cycle.py)
        self.route: Route | None = None  # what answers it, decided once (handlers/routes.py); None: not yet
        self.writer: BodyWriter | None = None  # the response's framing, once its head is out
        self.capture: Capture | None = None  # bodies recorded for the dashboard (devserver.debug.capture)
        self.report: ErrorReport | None = None  # an app's exception in full (devserver.debug.tracebacks)
        self.logs: LineCollector | None = None  # what the app printed or logged while serving it
        self.inside: InsideRecord | None = None  # its queries, outbound calls, templates (devserver.probes)
        self.recorder: Recorder | None = None  # what gathers them while the app runs (Config.record_inside)

    def add_body(self, data: bytes) -> None:
        if self.body is None:
            self.body = SpooledTemporaryFile(max_size=SPOOL)
        self.body.write(data)
        self.body_size += len(data)
        if self.capture is not None:
            self.capture.request.feed(data)
        if len(self.preview) < PREVIEW:
            self.preview += data[: PREVIEW - len(self.preview)]

    def input(self) -> BinaryIO:
        """The body, rewound, for the handler to read (empty if none)."""
        if self.body is None:
            return io.BytesIO(b"")
        self.body.seek(0)
        return self.body  # type: ignore[return-value]


class Responder(Protocol):
    """What a handler may do with the connection of the exchange it answers."""

    loop: asyncio.AbstractEventLoop
    client: str  # "host:port" of the peer
    closing: bool
    write_gate: threading.Event | None  # cleared while the transport's buffer is full (None: it never was)

    @property
    def eof(self) -> bool: ...  # the client half-closed: it sends nothing more (an ASGI app hears http.disconnect)

    @property
    def current(self) -> Exchange | None: ...  # the exchange being answered

    def begin(self, exchange: Exchange) -> None: ...
    def end(self) -> None: ...
    def send(self, status: int, headers: Headers, body: bytes = b"", *, close: bool = False) -> None: ...
    def send_error(self, status: int, message: str, detail: str | None = None, *, close: bool = False,
                   report: ErrorReport | None = None) -> None: ...
    async def send_file(self, status: int, headers: list[tuple[str, str]], file: BinaryIO, offset: int,
                        length: int) -> None: ...
    def start(self, status: int, headers: Headers, data: bytes = b"") -> None: ...
    def write(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...
    def thread_writer(self, post: Callable[..., object]) -> Callable[[bytes], None]: ...
