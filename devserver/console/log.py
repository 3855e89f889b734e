"""The plain console log: one coloured ``rich`` line per event (or JSON lines).

Text from requests and apps (targets, tracebacks, lines apps print) is shown
with its control characters escaped (:mod:`devserver.kit.safetext`): any web page
can make the browser send a request here, and an escape sequence in it must
not drive the developer's terminal.  Output goes through an
:class:`~devserver.console.output.OutputWriter`, so a closed or stalled stdout never
holds up the server or its shutdown.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from devserver.console.output import OutputWriter
from devserver.ipc.config import Config
from devserver.ipc.events import DroppedEvents, Event, InsideRecord, LogEvent, ReloadEvent, RequestEvent, ServerEvent, WorkerEvent, WorkerStatus
from devserver.kit.safetext import escape_controls
from devserver.readout.records import event_json
from devserver.reload.log import ReloadFilter, reload_name
from devserver.supervisor.core import StartError, Supervisor

if TYPE_CHECKING:
    from rich.console import Console

STATUS_STYLE = {1: "white", 2: "green", 3: "cyan", 4: "yellow", 5: "bold red"}
SHOWN_LINE = 100  # characters of a refused request's raw first line shown on its log line
REQUEST_BACKPRESSURE = 1.0  # seconds a batch of request lines may wait for a slow stdout before it is dropped
MEMO_ENTRIES = 512  # painted statuses, sizes or worker pids kept for the next request lines


def human_bytes(count: int) -> str:
    """1234 → '1.2K'."""
    size = float(count)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"


def _painter(console: Console, style: str) -> tuple[str, str]:
    """The escape codes ``rich`` would wrap text in for ``style`` on this console."""
    from rich.style import Style

    if console.color_system is None:
        return "", ""
    # Console.color_system is the name; Style.render takes the enum, which Console keeps privately.
    rendered = Style.parse(style).render("\0", color_system=console._color_system)
    start, _, end = rendered.partition("\0")
    return start, end


class ConsoleLog:
    """A sink for Supervisor: prints each event as it arrives.

    Request lines are the hot path (thousands a second under load): they are
    written with escape codes that ``rich`` computed once per style, instead
    of parsing markup per line, which costs ~100 µs a line.

    ``rich`` is imported with the first batch, not before: the supervisor
    constructs its log before it starts the workers, and they need none of it.
    """

    def __init__(self, stream: TextIO | None = None, log_format: str = "text", dynamic: str | None = None) -> None:
        self.stream = stream or sys.stdout
        self.output = OutputWriter(self.stream)
        self.json = log_format == "json"
        self.dynamic = dynamic
        self.dropped: dict[int, int] = {}
        self.reloads = ReloadFilter()
        self._lock = threading.Lock()
        self._console: Console | None = None
        self._paint: dict[str, tuple[str, str]] = {}
        # The second the stamp shows, as the times in it ([from, until)): two float comparisons per line cost
        # a fifth of what int(time) does.
        self._stamp_from, self._stamp_until, self._stamp_text = 0.0, 0.0, ""
        # The painted pieces a request line repeats (its status, size, worker), made once each (_memo).
        self._statuses: dict[int, str] = {}
        self._sizes: dict[int, str] = {}
        self._pids: dict[int, str] = {}

    @property
    def console(self) -> Console:
        """The ``rich`` console that renders lines (captured to strings: the writer thread does every write)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)
            self._paint = {name: _painter(self._console, name) for name in {"dim", "bold", *STATUS_STYLE.values()}}
        return self._console

    def __call__(self, batch: list[Event]) -> None:
        # Workers' batches may wait for a slow reader, as a blocking write did; the supervisor's own
        # notices (a worker died, the server stops) never wait and are never dropped.
        keep = False
        with self._lock:
            if not self.json:
                self.console  # noqa: B018 - built here, once, under the lock
            lines: list[str] = []
            for event in batch:
                if isinstance(event, RequestEvent) and not self.json and not event.traceback:
                    lines.append(self._request_line(event))  # most events: one test, then the line
                    continue
                keep = keep or isinstance(event, (ServerEvent, WorkerEvent))  # only the supervisor's
                if isinstance(event, ReloadEvent) and not self.reloads.admit(event):
                    continue
                if self.json:
                    self._json(event, lines)
                else:
                    self._text(event, lines)
        if keep:
            self.output.put("".join(lines), keep=True)
        else:
            self.output.put("".join(lines), REQUEST_BACKPRESSURE)

    @property
    def shows_request_detail(self) -> bool:
        """JSON lines show a request's headers and the app's lines with it; a text line shows neither."""
        return self.json

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (bounded in time)."""
        self.output.close(timeout)

    def _print(self, lines: list[str], markup: str) -> None:
        """Render ``markup`` with rich and add it to ``lines``."""
        with self.console.capture() as capture:
            self.console.print(markup)
        lines.append(capture.get())

    def _request_line(self, e: RequestEvent) -> str:
        note = ""
        if e.error or e.websocket is not None or e.inside is not None:
            note = self._notes(e, self._paint["dim"])
        stamp = self._stamp_text if self._stamp_from <= e.time < self._stamp_until else self._stamp(e.time)
        method, target = e.shown_request(SHOWN_LINE)
        status = self._statuses.get(e.status) or self._memo(self._statuses, e.status, self._painted_status)
        size = self._sizes.get(e.bytes_sent) or self._memo(self._sizes, e.bytes_sent, human_bytes)
        pid = self._pids.get(e.worker_pid) or self._memo(self._pids, e.worker_pid, self._painted_pid)
        bold, unbold = self._paint["bold"]
        return f"{stamp} {e.client} {bold}{method}{unbold} {target} {status} {size} {e.duration_ms:.1f}ms {pid}{note}\n"

    @staticmethod
    def _memo(table: dict[int, str], key: int, make: Callable[[int], str]) -> str:
        """``make(key)``, kept in ``table`` (a few hundred entries at most: emptied when it holds more)."""
        if len(table) >= MEMO_ENTRIES:
            table.clear()
        shown = table[key] = make(key)
        return shown

    def _painted_status(self, status: int) -> str:
        start, end = self._paint[STATUS_STYLE.get(status // 100, "white")]
        return f"{start}{status}{end}"

    def _painted_pid(self, pid: int) -> str:
        start, end = self._paint["dim"]
        return f"{start}pid {pid}{end}"

    @staticmethod
    def _notes(e: RequestEvent, dim: tuple[str, str]) -> str:
        """What a request line adds after the worker: the server's error, a WebSocket's messages, what it did inside."""
        note = f" {dim[0]}{escape_controls(e.error, multiline=False)}{dim[1]}" if e.error else ""
        if e.websocket is not None:
            ws = e.websocket
            note += f" {dim[0]}websocket {ws.messages_in} in / {ws.messages_out} out, closed {ws.close_code}{dim[1]}"
        if e.inside is not None and (e.inside.queries or e.inside.outbound or e.inside.dropped):
            note += f" {dim[0]}{inside_summary(e.inside)}{dim[1]}"
        return note

    def _stamp(self, when: float) -> str:
        """HH:MM:SS of ``when``, painted, made once a second (every request line has one)."""
        second = int(when)
        start, end = self._paint["dim"]
        self._stamp_from, self._stamp_until = float(second), float(second + 1)
        self._stamp_text = f"{start}{time.strftime('%H:%M:%S', time.localtime(second))}{end}"
        return self._stamp_text

    def _json(self, event: Event, lines: list[str]) -> None:
        """One JSON object per line (readout.records.event_json)."""
        if isinstance(event, WorkerStatus):
            return
        lines.append(event_json(event) + "\n")

    def _text(self, event: Event, lines: list[str]) -> None:
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None:
            handler(event, lines)

    def _on_RequestEvent(self, e: RequestEvent, lines: list[str]) -> None:
        lines.append(self._request_line(e))
        if e.traceback:
            self._print(lines, f"[red]{_markup(e.traceback.rstrip())}[/]")

    def _on_ReloadEvent(self, e: ReloadEvent, lines: list[str]) -> None:
        name = _markup(reload_name(e, self.dynamic))
        if e.error:
            self._print(lines, f"[bold red]reload failed[/] {name}\n[red]{_markup(e.error.rstrip())}[/]")
        elif not e.paths and not e.modules:
            self._print(lines, f"[magenta]reloaded[/] all modules ({e.duration_ms:.1f}ms)")
        else:
            modules = _markup(", ".join(e.modules)) or "nothing loaded yet"
            self._print(lines, f"[magenta]reloaded[/] {modules} ({len(e.paths)} file(s), {e.duration_ms:.1f}ms)")

    def _on_WorkerEvent(self, e: WorkerEvent, lines: list[str]) -> None:
        code = f" (exit code {e.exitcode})" if e.exitcode not in (None, 0) else ""
        self._print(lines, f"[blue]worker {e.index}[/] pid {e.pid} {e.state}{code}")

    def _on_DroppedEvents(self, e: DroppedEvents, lines: list[str]) -> None:
        self.dropped[e.worker_pid] = e.count
        self._print(lines, f"[yellow]events dropped[/]: {sum(self.dropped.values())} (queue full)")

    def _on_LogEvent(self, e: LogEvent, lines: list[str]) -> None:
        style = {"error": "red", "warning": "yellow"}.get(e.level, "default")
        self._print(lines, f"[dim]pid {e.worker_pid}[/] [{style}]{_markup(e.text)}[/]")

    def _on_ServerEvent(self, e: ServerEvent, lines: list[str]) -> None:
        if e.state == "listening":
            self._print(lines, f"[bold green]devserver[/] listening on {_markup(e.url)} with {e.workers} worker(s); "
                               "Ctrl-C to stop")
        else:
            self._print(lines, f"[bold]devserver[/] {e.state}")
        for detail in e.details:
            self._print(lines, f"[yellow]devserver:[/] {_markup(detail)}")


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def inside_summary(inside: InsideRecord) -> str:
    """"3 queries 4.1 ms · 1 call 12 ms", and the N+1 when one shape repeats, for the request's text line."""
    parts = []
    if inside.queries or inside.dropped:
        shown = len(inside.queries) + inside.dropped if inside.dropped else len(inside.queries)
        parts.append(f"{_counted(shown, 'query', 'queries')} {inside.sql_ms:.1f} ms")
    if inside.outbound:
        parts.append(f"{_counted(len(inside.outbound), 'call', 'calls')} {inside.outbound_ms:.0f} ms")
    if inside.repeated:
        worst = inside.repeated[0]
        parts.append(f"N+1: {worst.count} similar queries" + (f" from {escape_controls(worst.source)}" if worst.source else ""))
    return " · ".join(parts)


def _markup(text: str) -> str:
    """Request- or app-derived text for rich markup: control characters and markup both escaped."""
    from rich.markup import escape

    return escape(escape_controls(text))


def serve_console(config: Config) -> int:
    """Run the server with the console log until Ctrl-C or SIGTERM; returns the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only record: a signal handler must not do the work, the loop below acts

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    log = ConsoleLog(log_format=config.log_format, dynamic=config.dynamic)
    # Workers then leave out of their events what the log would not show (Config.request_detail).
    supervisor = Supervisor(replace(config, request_detail=log.shows_request_detail), log)
    from devserver.supervisor.watchers import attach_watchers

    attach_watchers(supervisor)
    try:
        supervisor.start()
    except StartError as exc:
        log.close()
        print(f"devserver: error: {exc}", file=sys.stderr)
        return 1
    try:
        while not stop.wait(0.5):
            pass
    finally:
        supervisor.stop()
        log.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
