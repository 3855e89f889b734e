"""A worker process: an asyncio loop serving connections on the shared socket.

WSGI calls run in a thread pool so that a slow app, an open event stream or
an idle keep-alive connection never holds up another request.  Workers load
no UI library.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO, cast

from devserver.apps.dynamic import ImportFailed, NotFound, ServedApp
from devserver.apps.loader import app_key, modules_for
from devserver.debug import capture, failures, requestlogs
from devserver.debug.appoutput import escape_app_output
from devserver.handlers.appcall import AppHandlers, answered_failed_startup, app_handlers, serve_app
from devserver.handlers.asgi import ASGIApplication, ASGIServer
from devserver.handlers.asgi_websocket import wants_websocket
from devserver.handlers.exchange import ClientGone, Exchange, Responder
from devserver.handlers.lifespan import Lifespan, LifespanKeeper
from devserver.handlers.routes import ALLOW, INTERNAL, App, Internal, Refused, Router, Script, SendFile, ServerOptions, StaticResponse
from devserver.handlers.wsgi import WSGIServer
from devserver.http.framing import sent_headers
from devserver.http.hostcheck import HostPolicy
from devserver.http.parser import Limits
from devserver.ipc.channels import ControlReceiver, EventWriter, Generation, InflightMemory
from devserver.ipc.config import Config
from devserver.ipc.control import ArmProfile, ControlMessage, Evaluate, PageChanged, Reload, StopSeen
from devserver.ipc.events import Event, LogEvent, ReloadEvent, RequestEvent, WebSocketSummary, WorkerStatus
from devserver.kit.frozen import values_by_name
from devserver.kit.timers import Repeater
from devserver.probes import hooks, profile, source
from devserver.worker.accept import Acceptor
from devserver.worker.connection import Connection
from devserver.worker.eventqueue import MAX_BATCH, EventChannel, EventSink
from devserver.worker.handoff import Handoff
from devserver.worker.inflight import InflightTable
from devserver.worker.threadpool import ThreadPool

if TYPE_CHECKING:
    from devserver.worker.tlsgate import TLSGate
    from devserver.worker.websocket import WebSocket  # imports the websockets library: on the first upgrade only

FLUSH_EVERY = 0.05  # seconds between event batches
SWEEP_EVERY = 0.5  # seconds between timeout sweeps
STATUS_EVERY = 1.0
# Allocations between young-generation collections (CPython's default is 700).  Each request leaves a few
# reference cycles behind (asyncio's transport refers to itself), so collections come every few dozen
# requests, and each one walks every object of the connections in flight: a tenth as many collections
# cost ~3% fewer instructions per request with `Connection: close`; the garbage waits a little longer.
GC_YOUNG_THRESHOLD = 7000
SAVE_SETTLE = 0.1  # seconds: a module file younger than this may still be being written
SAVE_PATIENCE = 2.0  # seconds a request waits for a module that keeps being saved
# RequestEvent's values by field name, in the order of its fields whatever it is: the fields an Exchange
# holds are read from it, the others are given by keyword (record()).
EXCHANGE_FIELDS = {"method": "request.method", "target": "request.target", "http_version": "request.version",
                   "status": "status", "bytes_sent": "sent", "body_preview": "preview", "traceback": "traceback",
                   "error": "error", "error_report": "report", "request_line": "request.request_line",
                   "inside": "inside"}
_request_values = values_by_name(RequestEvent, EXCHANGE_FIELDS)
# WebSocket close codes (RFC 6455 §7.4.1, IANA registry): new code is served (reload, warm restart), or the server stops.
SERVICE_RESTART = (1012, "service restart")
GOING_AWAY = (1001, "server stopping")


class Worker:
    """State shared by the connections of one worker process."""

    def __init__(self, config: Config, sock: socket.socket, events: EventChannel, control: ControlReceiver,
                 generation: Generation | None, handoff: Handoff | None = None) -> None:
        self.config = config
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.pid = os.getpid()
        self.limits = Limits(config.max_request_line, config.max_header_bytes, config.max_header_count, config.max_body)
        self.pool = ThreadPool(self.loop, base=min(4, config.threads), maximum=config.threads)
        self.sink = EventSink(events, self.pid)
        self.control = control
        self.generation = generation
        self.applied_generation = generation.value if generation is not None else 0
        self.connections: set[Connection] = set()
        self.websockets: dict[WebSocket, object] = {}  # open WebSockets and the app each runs
        self.requests = 0
        self.draining = False
        self.retiring = False  # a warm restart replaces this worker (retire)
        # Where a retiring worker's idle connections go, and this one takes others'.  None under TLS: a
        # connection's TLS session lives in this process, and its socket alone would reach the next worker
        # as bytes it cannot read (a warm restart closes idle TLS connections; browsers open new ones).
        self.handoff = None if config.secure else handoff
        self.acceptor: Acceptor | None = None
        self.stopped = asyncio.Event()
        # Filled by extensions (live reload) before serving starts.
        self.internal: Callable[[Responder, Exchange], Awaitable[None]] | None = None
        self.html_transform: Callable[[bytes], bytes] | None = None
        self.static_html_transform: Callable[[bytes], bytes] | None = None  # files' pages, when unlike apps'
        self.page_listeners: list[Callable[[PageChanged], None]] = []
        self.shutdown_hooks: list[Callable[[], None]] = []
        self.on_message: dict[type, Callable[[Any], None]] = {Reload: self._on_reload, PageChanged: self._on_page_changed}
        self.inflight = InflightTable(None)  # what this worker serves, for the supervisor if it dies
        addr = sock.getsockname()
        self.server_address = (config.host, addr[1])
        self.asgi = ASGIServer(self.server_address, self.log_line, config.request_detail, config.scheme)
        self.lifespans = LifespanKeeper(config.lifespan, self.log_line)
        # Built in serve(), once the extensions (live reload) have set their transforms and endpoint.
        self.router: Router
        self.apps: AppHandlers
        # How each kind of route runs (handlers/routes.py): at once on the loop (False: it must wait)...
        self._now: dict[type, Callable[..., bool]] = {
            Refused: self._refuse, ServerOptions: self._server_options, StaticResponse: self._send_static,
            SendFile: self._start_file, Script: self._start_script, App: self._start_app}
        # ...or in the connection's task, where an import, a sendfile or a stream is waited for.
        self._later: dict[type, Callable[..., Awaitable[None]]] = {
            Internal: self._internal, SendFile: self._send_file, Script: self._import_script, App: self._import_app}
        # Periodic work, each asleep while it has nothing to do (timers.py).
        self.flusher = Repeater(self.loop, FLUSH_EVERY, self.flush_events, lambda: len(self.sink) > 0)
        self.sweeper = Repeater(self.loop, SWEEP_EVERY, self._sweep, lambda: bool(self.connections))
        self._reported = (-1, -1)
        self.reporter = Repeater(self.loop, STATUS_EVERY, self._status,
                                 lambda: self._reported != (self.requests, len(self.connections)))
        self.app_name, self.app_attr = app_key(config)
        self.hosts = HostPolicy.for_bind(config.host, config.allowed_hosts)
        self.dynamic = modules_for(config, self)  # last: a project APP is loaded now, before serving
        if hooks.install(config):  # after the APP's import: its frameworks are hooked now, later ones on their import
            self.on_message[ArmProfile] = profile.arm

    # routing ---------------------------------------------------------------
    def try_sync(self, conn: Connection, exchange: Exchange) -> bool:
        """Route the request, and answer it without a task when nothing must be waited for.

        True: answered, or started (an app already loaded runs in the pool
        with the connection held).  False: ``handle`` runs the route in a task.
        """
        route = exchange.route
        if route is None:  # a request with a body was routed at its head already (streams_body)
            route = exchange.route = self.router.route(exchange.request)
        now = self._now.get(type(route))
        return now is not None and now(conn, exchange, route)

    def streams_body(self, exchange: Exchange) -> bool:
        """Start the request at its head, its body handed to the app as it arrives (a request with a body).

        Only an ASGI app does (``http.request`` with ``more_body``), and only
        one loaded and fresh: one that must be imported first gets its body
        whole, as a WSGI app always does (it reads the spool).
        """
        request = exchange.request
        if request.upgrade:
            return False
        route = exchange.route = self.router.route(request)
        if isinstance(route, App):
            name, attribute = self.app_name, self.app_attr
        elif isinstance(route, Script):
            name, attribute = route.name, "application"
        else:
            return False
        return isinstance(self._loaded(name, attribute), ASGIApplication)

    async def handle(self, conn: Connection, exchange: Exchange) -> None:
        """Answer the request at the head of ``conn``'s queue, in the connection's task."""
        route = exchange.route
        if route is None:  # queued behind a request a task answers: try_sync never saw it
            route = exchange.route = self.router.route(exchange.request)
        later = self._later.get(type(route))
        if later is None:
            self._now[type(route)](conn, exchange, route)
            return
        conn.begin(exchange)
        self.inflight.begin(exchange, exchange.request.method, exchange.request.target)
        try:
            await later(conn, exchange, route)
        except ClientGone:
            exchange.close = True
            if conn.current is exchange:
                conn.end()
            raise

    # What runs each kind of route on the loop at once (False: it must wait, handle() runs it)...
    def _refuse(self, conn: Connection, exchange: Exchange, route: Refused) -> bool:
        conn.begin(exchange)
        conn.send_error(route.status, route.message)
        conn.end()
        return True

    def _server_options(self, conn: Connection, exchange: Exchange, route: ServerOptions) -> bool:
        conn.begin(exchange)
        conn.send(200, [("Allow", ALLOW)])
        conn.end()
        return True

    def _send_static(self, conn: Connection, exchange: Exchange, response: StaticResponse) -> bool:
        conn.begin(exchange)
        conn.send(response.status, response.headers, response.body)
        conn.end()
        return True

    def _start_file(self, conn: Connection, exchange: Exchange, route: SendFile) -> bool:
        response = route.response
        assert response.file is not None
        conn.begin(exchange)
        self.inflight.begin(exchange, exchange.request.method, exchange.request.target)
        conn.start_file(response.status, response.headers, response.file, response.offset, response.length)
        return True

    def _start_script(self, conn: Connection, exchange: Exchange, route: Script) -> bool:
        return self._start_loaded(conn, exchange, route.name, "application", route.script_name, route.path_info)

    def _start_app(self, conn: Connection, exchange: Exchange, route: App) -> bool:
        if exchange.request.upgrade and wants_websocket(exchange.request):
            return False  # an upgrade is served on the loop, in the connection's task (_import_and_start)
        return self._start_loaded(conn, exchange, self.app_name, self.app_attr, "", exchange.request.path)

    def _start_loaded(self, conn: Connection, exchange: Exchange, name: str, attribute: str, script_name: str,
                      path_info: str) -> bool:
        """Start a loaded app off the loop with no task (the connection is held until it answers).

        False when the app must be imported first: handle() does that, in the pool.
        """
        app = self._loaded(name, attribute)
        if app is None:
            return False
        conn.begin(exchange)
        self.inflight.begin(exchange, exchange.request.method, exchange.request.target)
        conn.hold()
        apps = self.apps
        (apps.handler if app is apps.app else apps.of(app)).start(conn, exchange, app, script_name, path_info,
                                                                  conn.release)
        return True

    def app_loaded(self) -> asyncio.Task[Lifespan] | None:
        """The APP was (re)built: start an ASGI app's lifespan now rather than at its first request."""
        loaded = self.dynamic.cached(self.app_name, self.app_attr) if self.app_name else None
        if not isinstance(loaded, ASGIApplication) or self.lifespans.ready(loaded) is not None:
            return None
        return self.loop.create_task(self.lifespans.switch(loaded))

    # ...and what runs it in the connection's task, begun (handle() answers the rest as try_sync does).
    async def _internal(self, conn: Connection, exchange: Exchange, route: Internal) -> None:
        assert self.internal is not None  # the router routes here only when an endpoint is installed
        await self.internal(conn, exchange)

    async def _send_file(self, conn: Connection, exchange: Exchange, route: SendFile) -> None:
        response = route.response
        assert response.file is not None
        await conn.send_file(response.status, response.headers, response.file, response.offset, response.length)
        conn.end()

    def _loaded(self, name: str, attribute: str) -> ServedApp | None:
        """The app if it is loaded and fresh, after the reloads announced so far; None if it must be imported."""
        self.catch_up()
        return self.dynamic.cached(name, attribute)

    async def _load(self, name: str, attribute: str = "application") -> ServedApp:
        """The app, after pending reloads; a module caught mid-save is tried once more.

        A loaded app is found on the loop; an import (first use, or after a
        reload) runs in the thread pool, so a slow import never holds up
        other requests.  An editor that truncates then writes leaves a moment
        when the file is empty or half written; importing it then fails
        although the save about to land is fine.  If the file changed in the
        last moment, wait for the save to settle and import again before
        answering an error.
        """
        app = self._loaded(name, attribute)
        if app is not None:
            return app
        deadline = time.monotonic() + SAVE_PATIENCE
        while True:
            try:
                return await self.pool.submit(self.dynamic.app, name, attribute)
            except (NotFound, ImportFailed):
                # Saves in quick succession can catch every attempt mid-write: keep trying while
                # the file keeps changing, within SAVE_PATIENCE.
                if not self.dynamic.changed_within(name, SAVE_SETTLE) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(SAVE_SETTLE)
            self.catch_up()
            self.dynamic.purge([name])

    async def _import_script(self, conn: Connection, exchange: Exchange, route: Script) -> None:
        await self._import_and_start(conn, exchange, route.name, "application", route.script_name, route.path_info,
                                     404, "")

    async def _import_app(self, conn: Connection, exchange: Exchange, route: App) -> None:
        await self._import_and_start(conn, exchange, self.app_name, self.app_attr, "", exchange.request.path,
                                     500, f"The app {self.config.app} cannot be served: ")

    async def _import_and_start(self, conn: Connection, exchange: Exchange, name: str, attribute: str, script_name: str,
                                path_info: str, missing_status: int, missing_prefix: str) -> None:
        """The app, imported in the pool if it must be, run for this request; its errors answered as pages."""
        try:
            app = await self._load(name, attribute)
        except NotFound as exc:
            conn.send_error(missing_status, missing_prefix + str(exc))
            conn.end()
            return
        except ImportFailed as exc:
            self._import_failed(conn, exchange, exc)
            return
        if wants_websocket(exchange.request) and isinstance(app, ASGIApplication):
            await self._websocket(conn, exchange, app)
            return
        await serve_app(self.apps.of(app), conn, exchange, app, script_name, path_info)

    async def _websocket(self, conn: Connection, exchange: Exchange, app: ASGIApplication) -> None:
        """An upgrade request to an ASGI app (the Host was checked): its connection, logged once it ends."""
        lifespan = self.lifespans.ready(app) or await self.lifespans.switch(app)  # a reloaded app's startup first
        if answered_failed_startup(conn, exchange, lifespan):
            return
        from devserver.worker.websocket import serve_upgrade  # the websockets library, on the first upgrade only

        summary = await serve_upgrade(conn, exchange, app, self.server_address, self.config.header_timeout,
                                      lambda socket: self.websockets.__setitem__(socket, app),
                                      lambda socket: self.websockets.pop(socket, None),
                                      secure=self.config.secure)
        if summary is not None:  # else answered over HTTP: recorded as that response ended
            self.record(conn, exchange, summary)

    def end_stale_streams(self) -> None:
        """The old code's open WebSockets (1012) and streamed ASGI responses end: clients reconnect to the new."""
        if self.websockets:
            self.close_websockets(*SERVICE_RESTART, stale=True)
        if self.asgi.streams:
            self.asgi.end_streams(self.dynamic.cached(self.app_name, self.app_attr) if self.app_name else None)

    def close_websockets(self, code: int, reason: str, stale: bool = False) -> None:
        """Close the open WebSockets (``stale``: only those whose app is no longer the current one)."""
        current = self.dynamic.cached(self.app_name, self.app_attr) if stale and self.app_name else None
        for websocket, app in list(self.websockets.items()):
            if not stale or app is not current:
                websocket.close(code, reason)

    def _import_failed(self, conn: Connection, exchange: Exchange, exc: ImportFailed) -> None:
        exchange.traceback = exc.traceback  # the dashboard's text: no report, whose frames the console would ask for
        self.sink.emit(ReloadEvent(time.time(), (), (exc.name,), 0.0, exc.traceback, self.pid))
        self.flusher.poke()
        conn.send_error(500, f"Module {exc.name!r} failed to import.", exc.traceback, report=exc.report)
        conn.end()

    # reloads ---------------------------------------------------------------
    def catch_up(self) -> None:
        """Apply every reload the supervisor has announced before this request runs.

        The supervisor bumps the shared generation after writing to our pipe,
        so a request that starts after a save was seen always runs new code,
        even if the pipe's message has not been read by the loop yet.
        """
        if self.generation is None:
            return
        while self.applied_generation < self.generation.value:
            self.on_control(self.control.recv())

    def on_control_ready(self) -> None:
        while self.control.poll():
            try:
                message = self.control.recv()
            except (EOFError, OSError):
                self.loop.remove_reader(self.control.fileno())
                self.begin_shutdown()
                return
            self.on_control(message)

    def on_control(self, message: ControlMessage) -> None:
        handler = self.on_message.get(type(message))
        if handler is not None:
            handler(message)
        if isinstance(message, Reload):  # whoever applied it (a project app takes Reload)
            self.end_stale_streams()

    def _on_reload(self, message: Reload) -> None:
        self.dynamic.purge(self.dynamic.loaded() if message.modules is None else message.modules)
        self.applied_generation = max(self.applied_generation, message.generation)

    def _on_page_changed(self, message: PageChanged) -> None:
        for listener in self.page_listeners:
            listener(message)

    # events ------------------------------------------------------------------
    def record(self, conn: Connection, exchange: Exchange, websocket: WebSocketSummary | None = None) -> None:
        """One RequestEvent per response; the server's own endpoints (live reload) are not counted."""
        self.inflight.end(exchange)
        request = exchange.request
        if exchange.route is INTERNAL:
            return
        self.requests += 1
        if exchange.recorder is not None:
            exchange.inside = exchange.recorder.finish()
        request_body, response_body = exchange.capture.finish() if exchange.capture is not None else (None, None)
        logs = exchange.logs
        detail = self.config.request_detail
        self.sink.emit_values(RequestEvent, _request_values(
            exchange, time=time.time(), worker_pid=self.pid, client=conn.client,
            duration_ms=(time.perf_counter() - exchange.started) * 1000,
            request_headers=tuple(request.headers) if detail else (),
            response_headers=sent_headers(exchange.writer) if detail else (),  # as on the wire
            request_body=request_body, response_body=response_body,
            log_sources=logs.snapshot_sources() if logs is not None else (),
            logs=logs.snapshot() if logs is not None else (), request_id=logs.id if logs is not None else "", websocket=websocket))
        if len(self.sink) >= 256:
            self.flush_events()
        self.flusher.poke()
        self.reporter.poke()

    def flush_events(self) -> None:
        capture.flush()  # recorded bodies reach the disk before the events that name them
        self.sink.flush()

    def log_line(self, text: str) -> None:
        """A line from wsgi.errors or the app's output (thread-safe)."""
        self.emit_threadsafe(LogEvent(time.time(), self.pid, text, "error", requestlogs.current_id()))
        requestlogs.note(text)

    def emit_threadsafe(self, event: Event) -> None:
        """An event from any thread (the sink's deque takes appends from any thread)."""
        self.sink.emit(event)
        self.flusher.poke_threadsafe()

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            conn.expire(now)

    def _status(self) -> None:
        self._reported = (self.requests, len(self.connections))
        self.sink.emit(WorkerStatus(time.time(), self.pid, self.requests, len(self.connections), _rss()))
        self.flusher.poke()

    def opened(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.sweeper.poke()
        self.reporter.poke()

    def closed(self, conn: Connection) -> None:
        self.connections.discard(conn)

    # lifecycle ---------------------------------------------------------------
    async def serve(self) -> None:
        self.router = Router(self.hosts, self.config.root, app=bool(self.app_name),
                             internal=self.internal is not None,
                             html_transform=self.static_html_transform or self.html_transform)
        self.apps = AppHandlers(app_handlers(WSGIServer(self.pool, self.server_address, self.config.workers > 1,
                                                        self.log_line, self.html_transform,
                                                        self.config.request_detail, self.config.scheme),
                                              self.asgi, self.lifespans))
        self.acceptor = Acceptor(self.loop, self.sock, lambda: Connection(self), self.config.backlog, self.handoff,
                                 self.tls_gate())
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        started = self.app_loaded()
        if started is not None:
            await started  # an ASGI app's startup, before the first request
        self.acceptor.start()
        if self.control is not None:
            self.loop.add_reader(self.control.fileno(), self.on_control_ready)
        self.loop.add_signal_handler(signal.SIGTERM, self.begin_shutdown)
        self.reporter.poke()  # the first status tells the dashboard this worker's figures
        await self.stopped.wait()
        await self.lifespans.close()
        self.flush_events()

    def retire(self) -> None:
        """A warm restart replaces this worker: accept no more, and read no more of the idle connections.

        Their next requests wait unread in the kernel, as new connections wait
        in the backlog, until the new workers accept; then begin_shutdown
        hands the connections over and those requests run the new code.  What
        is in flight is answered here, and its connection parked after it.
        """
        if self.retiring:
            return
        self.retiring = True
        if self.acceptor is not None:
            self.acceptor.stop()
        self.close_websockets(*SERVICE_RESTART)
        for conn in list(self.connections):
            if conn.idle():
                self.park(conn)

    def tls_gate(self) -> TLSGate | None:
        """With --https or --ssl-certfile: what serves each accepted connection over TLS (tls/, worker/tlsgate.py)."""
        if not self.config.secure:
            return None
        from devserver.tls.context import server_context
        from devserver.worker.tlsgate import TLSGate

        return TLSGate(self.loop, server_context(self.config.tls_certfile, self.config.tls_keyfile),
                       self.config.header_timeout, self.server_address[1], self.log_line, self.hosts.allows)

    def park(self, conn: Connection) -> bool:
        """Keep an idle connection of a retiring worker for the new workers (False: no channel to pass it on)."""
        if self.handoff is None:
            return False
        conn.park()
        if self.draining:
            self._let_go(conn)
        return True

    @property
    def handing_over(self) -> bool:
        """Draining for a warm restart, with a channel: idle connections go to the new workers, not closed."""
        return self.retiring and self.handoff is not None

    def _let_go(self, conn: Connection) -> None:
        """An idle connection of a draining worker: hand it over, or close it when the server stops.

        Closing one races the client's next request (it may be on its way: no
        answer, ``RemoteDisconnected``), which only a server that stops has to
        accept.  A connection the channel refuses is read again: its next
        request is answered here, with ``Connection: close``.
        """
        if not self.handing_over:
            conn.close()
        elif conn.flushed():  # else its last response is still being written: the next round
            assert self.handoff is not None
            if not conn.hand_over(self.handoff.give):
                conn.unpark()

    def begin_shutdown(self) -> None:
        """Stop accepting; finish in-flight requests (bounded); then stop."""
        if self.draining:
            return
        self.draining = True
        self.flush_events()  # what finished before the stop goes now, and StopSeen right behind it
        self.sink.mark(StopSeen())
        if self.acceptor is not None:
            self.acceptor.stop()
        for hook in self.shutdown_hooks:
            hook()
        self.close_websockets(*(SERVICE_RESTART if self.retiring else GOING_AWAY))
        for conn in list(self.connections):
            if conn.idle():
                self._let_go(conn)
            elif not self.handing_over:  # when handing over, its connection goes on after the response
                for exchange in (*conn.queue, conn.current, conn.receiving):
                    if exchange is not None:
                        exchange.close = True  # tell the client not to send more on this connection
        self.loop.create_task(self._wait_drained())

    async def _wait_drained(self) -> None:
        deadline = time.monotonic() + self.config.shutdown_timeout
        while (self.connections or self.websockets) and time.monotonic() < deadline:  # sockets: CLOSE_WAIT at most
            for conn in list(self.connections):
                if conn.idle():
                    self._let_go(conn)
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        self.stopped.set()


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class _OutputToEvents:
    """sys.stdout/stderr of a worker under the dashboard: each line becomes a LogEvent.

    A print() in an app would otherwise be drawn over the dashboard.  Lines
    go through the worker's event sink, so a full channel drops them counted,
    like any event, and never blocks the app.
    """

    def __init__(self, emit: Callable[[LogEvent], None], level: str) -> None:
        self._emit = emit
        self._level = level
        # print() writes the text and the newline in two calls: an unfinished line is kept per thread,
        # or two requests printing at once would splice their lines (and give them to the wrong request).
        self._local = threading.local()

    def write(self, text: str) -> int:
        lines = (getattr(self._local, "partial", "") + text).split("\n")
        self._local.partial = lines.pop()
        for line in lines:
            self._emit(LogEvent(time.time(), os.getpid(), line, self._level, requestlogs.current_id()))
            requestlogs.note(line)
        return len(text)

    def flush(self) -> None:
        """Write out this thread's unfinished line (a request's end flushes, so its last line is its own)."""
        partial = getattr(self._local, "partial", "")
        if partial:
            self._local.partial = ""
            self._emit(LogEvent(time.time(), os.getpid(), partial, self._level, requestlogs.current_id()))
            requestlogs.note(partial)

    def isatty(self) -> bool:
        return False


def _route_output_to_events(emit: Callable[[LogEvent], None]) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # output written below Python (C extensions) goes nowhere, not over the screen
    os.dup2(devnull, 2)
    os.close(devnull)
    streams = {id(sys.stdout): _OutputToEvents(emit, "info"), id(sys.stderr): _OutputToEvents(emit, "error")}
    sys.stdout = cast(TextIO, streams[id(sys.stdout)])  # a text stream, as io.TextIOBase is
    sys.stderr = cast(TextIO, streams[id(sys.stderr)])
    _repoint_log_handlers(streams)


def _repoint_log_handlers(streams: dict[int, _OutputToEvents]) -> None:
    """Log handlers made before the worker (an app imported warm: ``logging.basicConfig`` at its import) hold the
    old stderr, whose fd now goes to /dev/null: they write to its replacement instead, or their lines are lost."""
    loggers = [logging.root, *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    for handler in {h for lg in loggers for h in lg.handlers}:
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in streams:
            handler.setStream(cast(TextIO, streams[id(handler.stream)]))


def worker_main(config: Config, sock: socket.socket, event_pipe: EventWriter, control: ControlReceiver,
                generation: Generation, index: int, inflight: InflightMemory | None = None,
                handoff: Handoff | None = None) -> None:
    """Entry point of a worker process (spawned by the supervisor)."""
    events = EventChannel(event_pipe, max(1, config.queue_size // MAX_BATCH))
    # Ctrl-C reaches the whole process group; only the supervisor decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def main() -> None:
        worker = Worker(config, sock, events, control, generation, handoff)
        worker.inflight = InflightTable(inflight)
        if config.tui:  # the dashboard's console (x) runs code in the frames of this worker's last failures
            worker.on_message[Evaluate] = failures.serve(events.put_nowait)
        if config.tui or config.log_format == "json":  # print() must not break the screen nor the JSON stream
            _route_output_to_events(worker.emit_threadsafe)
            requestlogs.follow_logging(source.relative)  # a logged line's detail names where it was logged
        else:  # the plain console: what apps print reaches the terminal escaped
            escape_app_output()
        if config.livereload:
            from devserver.handlers.livereload import install

            install(worker)
        await worker.serve()

    try:
        asyncio.run(main())
    except Exception:  # noqa: BLE001 - report, then let the supervisor restart us
        traceback.print_exc()
        raise SystemExit(1) from None
    finally:
        events.close()
