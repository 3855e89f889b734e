"""The plain console log: one coloured ``rich`` line per event (or JSON lines)."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import asdict
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.style import Style

from .config import Config
from .events import DroppedEvents, Event, LogEvent, ReloadEvent, RequestEvent, ServerEvent, WorkerEvent, WorkerStatus
from .supervisor import StartError, Supervisor

STATUS_STYLE = {1: "white", 2: "green", 3: "cyan", 4: "yellow", 5: "bold red"}


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
    if console.color_system is None:
        return "", ""
    rendered = Style.parse(style).render("\0", color_system=console.color_system)
    start, _, end = rendered.partition("\0")
    return start, end


class ConsoleLog:
    """A sink for Supervisor: prints each event as it arrives.

    Request lines are the hot path (thousands a second under load): they are
    written with escape codes that ``rich`` computed once per style, instead
    of parsing markup per line, which costs ~100 µs a line.
    """

    def __init__(self, stream: TextIO | None = None, log_format: str = "text") -> None:
        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.json = log_format == "json"
        self.dropped: dict[int, int] = {}
        self._lock = threading.Lock()
        self._paint = {name: _painter(self.console, name) for name in {"dim", "bold", *STATUS_STYLE.values()}}

    def __call__(self, batch: list[Event]) -> None:
        with self._lock:
            lines: list[str] = []
            for event in batch:
                if self.json:
                    self._json(event)
                elif isinstance(event, RequestEvent) and not event.traceback:
                    lines.append(self._request_line(event))
                else:
                    self._flush_lines(lines)
                    self._text(event)
            self._flush_lines(lines)

    def _flush_lines(self, lines: list[str]) -> None:
        if lines:
            self.console.file.write("".join(lines))
            self.console.file.flush()
            lines.clear()

    def _request_line(self, e: RequestEvent) -> str:
        paint = self._paint
        dim, bold = paint["dim"], paint["bold"]
        status = paint[STATUS_STYLE.get(e.status // 100, "white")]
        stamp = time.strftime("%H:%M:%S", time.localtime(e.time))
        note = f" {dim[0]}{e.error}{dim[1]}" if e.error else ""
        return (f"{dim[0]}{stamp}{dim[1]} {e.client} {bold[0]}{e.method}{bold[1]} {_printable(e.target)} "
                f"{status[0]}{e.status}{status[1]} {human_bytes(e.bytes_sent)} {e.duration_ms:.1f}ms "
                f"{dim[0]}pid {e.worker_pid}{dim[1]}{note}\n")

    def _json(self, event: Event) -> None:
        if isinstance(event, WorkerStatus):
            return
        record: dict[str, Any] = {"type": type(event).__name__, **asdict(event)}
        if "body_preview" in record:
            record["body_preview"] = record["body_preview"].decode("utf-8", "replace")
        self.console.file.write(json.dumps(record) + "\n")
        self.console.file.flush()

    def _text(self, event: Event) -> None:
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None:
            handler(event)

    def _on_RequestEvent(self, e: RequestEvent) -> None:
        self._flush_lines([self._request_line(e)])
        if e.traceback:
            self.console.print(f"[red]{escape(e.traceback.rstrip())}[/]")

    def _on_ReloadEvent(self, e: ReloadEvent) -> None:
        if e.error:
            self.console.print(f"[bold red]reload failed[/] {escape(', '.join(e.modules))}\n[red]{escape(e.error.rstrip())}[/]")
        else:
            names = ", ".join(e.modules) or "nothing loaded yet"
            self.console.print(f"[magenta]reloaded[/] {escape(names)} ({len(e.paths)} file(s), {e.duration_ms:.1f}ms)")

    def _on_WorkerEvent(self, e: WorkerEvent) -> None:
        code = f" (exit code {e.exitcode})" if e.exitcode not in (None, 0) else ""
        self.console.print(f"[blue]worker {e.index}[/] pid {e.pid} {e.state}{code}")

    def _on_DroppedEvents(self, e: DroppedEvents) -> None:
        self.dropped[e.worker_pid] = e.count
        self.console.print(f"[yellow]events dropped[/]: {sum(self.dropped.values())} (queue full)")

    def _on_LogEvent(self, e: LogEvent) -> None:
        self.console.print(f"[dim]pid {e.worker_pid}[/] {escape(e.text)}")

    def _on_ServerEvent(self, e: ServerEvent) -> None:
        if e.state == "listening":
            self.console.print(f"[bold green]devserver[/] listening on {e.url} with {e.workers} worker(s); Ctrl-C to stop")
        else:
            self.console.print(f"[bold]devserver[/] {e.state}")


def _printable(text: str) -> str:
    """A request target as shown: control characters escaped so they cannot drive the terminal."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def serve_console(config: Config) -> int:
    """Run the server with the console log until Ctrl-C or SIGTERM; returns the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()  # only record: a signal handler must not do the work, the loop below acts

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = Supervisor(config, ConsoleLog(log_format=config.log_format))
    from .reload import attach_watchers

    attach_watchers(supervisor)
    try:
        supervisor.start()
    except StartError as exc:
        print(f"devserver: error: {exc}", file=sys.stderr)
        return 1
    try:
        while not stop.wait(0.5):
            pass
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
