"""A worker process: an asyncio loop serving connections on the shared socket.

WSGI calls run in a thread pool so that a slow app, an open event stream or
an idle keep-alive connection never holds up another request.  Workers load
no UI library.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import traceback
from typing import Any

from . import static
from .config import Config
from .connection import ClientGone, Connection, Exchange
from .dynamic import DynamicModules, ImportFailed, NotFound, split_script
from .eventqueue import MAX_BATCH, EventChannel, EventSink
from .events import LogEvent, ReloadEvent, RequestEvent, WorkerStatus
from .http import Limits
from .threadpool import ThreadPool
from .wsgi import WSGIApp, serve_wsgi

FLUSH_EVERY = 0.05  # seconds between event batches
SWEEP_EVERY = 0.5  # seconds between timeout sweeps
STATUS_EVERY = 1.0
INTERNAL_PREFIX = "/__devserver__/"
SAVE_SETTLE = 0.1  # seconds: a module file younger than this may still be being written


class Worker:
    """State shared by the connections of one worker process."""

    def __init__(self, config: Config, sock: socket.socket, events: Any, control: Any, generation: Any) -> None:
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
        self.dynamic = DynamicModules(config.dynamic)
        self.requests = 0
        self.draining = False
        self.server: asyncio.AbstractServer | None = None
        self.stopped = asyncio.Event()
        self.hooks: dict[str, Any] = {}  # extensions: "internal" handler, "html_transform", control messages
        addr = sock.getsockname()
        self.server_address = (config.host, addr[1])
        self.app_name, self.app_attr = (config.app.split(":", 1) if config.app else (None, None))

    # routing ---------------------------------------------------------------
    def try_sync(self, conn: Connection, exchange: Exchange) -> bool:
        """Answer a request without a task when it needs no waiting (small static files)."""
        path = exchange.request.path
        if path.startswith(INTERNAL_PREFIX) or split_script(path) is not None:
            return False
        response = self._static(exchange)
        if response is None or response.file is not None:
            exchange.prepared = response
            return False
        conn.begin(exchange)
        conn.send(response.status, response.headers, response.body)
        conn.end()
        return True

    def _static(self, exchange: Exchange) -> static.StaticResponse | None:
        """The static answer, or None when a module:callable app should answer instead."""
        request = exchange.request
        if self.app_name is not None:
            try:
                if static.resolve(self.config.root, request.path) is None:
                    return None
            except ValueError:
                return None
        headers = {name.lower(): value for name, value in request.headers}
        return static.serve(self.config.root, request.method, request.path, headers,
                            html_transform=self.hooks.get("html_transform"))

    async def handle(self, conn: Connection, exchange: Exchange) -> None:
        """Answer the request at the head of ``conn``'s queue."""
        conn.begin(exchange)
        path = exchange.request.path
        try:
            if path.startswith(INTERNAL_PREFIX) and "internal" in self.hooks:
                await self.hooks["internal"](conn, exchange)
                return
            script = split_script(path)
            if script is not None:
                await self._dynamic(conn, exchange, *script)
                return
            response = exchange.prepared if exchange.prepared is not None else self._static(exchange)
            if response is None:
                await self._app(conn, exchange)
            elif response.file is not None:
                await conn.send_file(response.status, response.headers, response.file, response.offset, response.length)
                conn.end()
            else:
                conn.send(response.status, response.headers, response.body)
                conn.end()
        except ClientGone:
            exchange.close = True
            if conn.current is exchange:
                conn.end()
            raise

    async def _load(self, name: str, attribute: str = "application") -> WSGIApp:
        """The app, after pending reloads; a module caught mid-save is tried once more.

        An editor that truncates then writes leaves a moment when the file is
        empty or half written; importing it then fails although the save
        about to land is fine.  If the file changed in the last moment, wait
        for the save to settle and import again before answering an error.
        """
        self.catch_up()
        try:
            return self.dynamic.app(name, attribute)
        except (NotFound, ImportFailed):
            if not self.dynamic.changed_within(name, SAVE_SETTLE):
                raise
        await asyncio.sleep(SAVE_SETTLE)
        self.catch_up()
        self.dynamic.purge([name])
        return self.dynamic.app(name, attribute)

    async def _dynamic(self, conn: Connection, exchange: Exchange, name: str, script_name: str, path_info: str) -> None:
        try:
            app = await self._load(name)
        except NotFound as exc:
            conn.send_error(404, str(exc))
            conn.end()
            return
        except ImportFailed as exc:
            self._import_failed(conn, exchange, exc)
            return
        await serve_wsgi(conn, exchange, app, script_name, path_info)

    async def _app(self, conn: Connection, exchange: Exchange) -> None:
        try:
            app: WSGIApp = await self._load(self.app_name, self.app_attr)  # type: ignore[arg-type]
        except NotFound as exc:
            conn.send_error(500, f"The app {self.config.app} cannot be served: {exc}")
            conn.end()
            return
        except ImportFailed as exc:
            self._import_failed(conn, exchange, exc)
            return
        await serve_wsgi(conn, exchange, app, "", exchange.request.path)

    def _import_failed(self, conn: Connection, exchange: Exchange, exc: ImportFailed) -> None:
        exchange.traceback = exc.traceback
        self.sink.emit(ReloadEvent(time.time(), (), (exc.name,), 0.0, exc.traceback, self.pid))
        conn.send_error(500, f"Module {exc.name!r} failed to import.", exc.traceback)
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

    def on_control(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "reload":
            _, generation, modules, paths = message
            started = time.perf_counter()
            purged = self.dynamic.purge(self.dynamic.loaded() if modules is None else modules)
            self.applied_generation = max(self.applied_generation, generation)
            if "reloaded" in self.hooks:
                self.hooks["reloaded"](paths, purged, (time.perf_counter() - started) * 1000)
        elif kind == "stop":
            self.begin_shutdown()
        elif kind in self.hooks:
            self.hooks[kind](*message[1:])

    # events ------------------------------------------------------------------
    def record(self, conn: Connection, exchange: Exchange) -> None:
        """One RequestEvent per response."""
        self.requests += 1
        request = exchange.request
        request_body, response_body = exchange.capture.finish() if exchange.capture is not None else (None, None)
        self.sink.emit(RequestEvent(
            time=time.time(), worker_pid=self.pid, client=conn.client, method=request.method,
            target=request.target, http_version=request.version, status=exchange.status,
            bytes_sent=exchange.sent, duration_ms=(time.perf_counter() - exchange.started) * 1000,
            request_headers=tuple(request.headers), response_headers=tuple(exchange.response_headers),
            body_preview=exchange.preview, traceback=exchange.traceback, error=exchange.error,
            request_body=request_body, response_body=response_body, error_report=exchange.report,
        ))
        if len(self.sink) >= 256:
            self.sink.flush()

    def log_line(self, text: str) -> None:
        """A line from wsgi.errors (thread-safe)."""
        self.sink.emit(LogEvent(time.time(), self.pid, text, "error"))

    def _tick_flush(self) -> None:
        self.sink.flush()
        self.loop.call_later(FLUSH_EVERY, self._tick_flush)

    def _tick_sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            conn.expire(now)
        self.loop.call_later(SWEEP_EVERY, self._tick_sweep)

    def _tick_status(self) -> None:
        self.sink.emit(WorkerStatus(time.time(), self.pid, self.requests, len(self.connections), _rss()))
        self.loop.call_later(STATUS_EVERY, self._tick_status)

    # lifecycle ---------------------------------------------------------------
    async def serve(self) -> None:
        self.server = await self.loop.create_server(lambda: Connection(self), sock=self.sock, backlog=self.config.backlog)
        if self.control is not None:
            self.loop.add_reader(self.control.fileno(), self.on_control_ready)
        self.loop.add_signal_handler(signal.SIGTERM, self.begin_shutdown)
        self._tick_flush()
        self._tick_sweep()
        self._tick_status()
        await self.stopped.wait()
        self.sink.flush()

    def begin_shutdown(self) -> None:
        """Stop accepting; finish in-flight requests (bounded); then stop."""
        if self.draining:
            return
        self.draining = True
        if self.server is not None:
            self.server.close()
        if "shutdown" in self.hooks:
            self.hooks["shutdown"]()
        for conn in list(self.connections):
            if conn.current is None and not conn.queue:
                conn.close()
            for exchange in (*conn.queue, conn.current, conn.receiving):
                if exchange is not None:
                    exchange.close = True  # tell the client not to send more on this connection
        self.loop.create_task(self._wait_drained())

    async def _wait_drained(self) -> None:
        deadline = time.monotonic() + self.config.shutdown_timeout
        while self.connections and time.monotonic() < deadline:
            for conn in list(self.connections):
                if conn.current is None and not conn.queue:
                    conn.close()
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

    A print() in an app would otherwise be drawn over the dashboard.
    """

    def __init__(self, events: Any, level: str) -> None:
        self._events = events
        self._level = level
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if lines:
            batch = [LogEvent(time.time(), os.getpid(), line, self._level) for line in lines]
            try:
                self._events.put_nowait(batch)
            except Exception:  # noqa: BLE001 - a full queue loses output, never blocks the app
                pass
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _route_output_to_events(events: Any) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # output written below Python (C extensions) goes nowhere, not over the screen
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stdout = _OutputToEvents(events, "info")  # type: ignore[assignment]
    sys.stderr = _OutputToEvents(events, "error")  # type: ignore[assignment]


def worker_main(config: Config, sock: socket.socket, event_pipe: Any, control: Any, generation: Any, index: int) -> None:
    """Entry point of a worker process (spawned by the supervisor)."""
    events = EventChannel(event_pipe, max(1, config.queue_size // MAX_BATCH))
    # Ctrl-C reaches the whole process group; only the supervisor decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from . import extensions

    if config.tui:
        _route_output_to_events(events)

    async def main() -> None:
        worker = Worker(config, sock, events, control, generation)
        extensions.install(worker)
        await worker.serve()

    try:
        asyncio.run(main())
    except Exception:  # noqa: BLE001 - report, then let the supervisor restart us
        traceback.print_exc()
        raise SystemExit(1) from None
    finally:
        events.close()
