"""Server notices and what applications wrote to ``wsgi.errors`` (or printed, under the dashboard).

Apps' text is shown with control characters escaped: an app that prints
request data must not be able to drive the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.widgets import RichLog

from devserver.events import LogEvent, ServerEvent
from devserver.safetext import escape_controls
from tui import format as fmt

MAX_LINES = 500


class ServerLog(RichLog):
    """A bounded log of :class:`LogEvent` and :class:`ServerEvent` lines."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "server-log--time",
        "server-log--info",
        "server-log--warning",
        "server-log--error",
        "server-log--server",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=MAX_LINES, wrap=False, markup=False, highlight=False, auto_scroll=True)

    def on_mount(self) -> None:
        self.border_title = "Server"

    def add(self, events: Iterable[LogEvent | ServerEvent]) -> None:
        """Append one line per event."""
        time_style = self.get_component_rich_style("server-log--time", partial=True)
        for event in events:
            line = Text(fmt.clock_time(event.time)[:8] + " ", time_style)
            if isinstance(event, ServerEvent):
                style = self.get_component_rich_style("server-log--server", partial=True)
                detail = f" {event.url}" if event.url else ""
                workers = f" ({event.workers} workers)" if event.workers else ""
                line.append(f"server {event.state}{detail}{workers}", style)
                self.write(line)
                warning = self.get_component_rich_style("server-log--warning", partial=True)
                for extra in event.details:  # notes and warnings: each on a line of its own
                    self.write(Text(" " * 9 + escape_controls(extra, multiline=False), warning))
                continue
            level = event.level if event.level in ("warning", "error") else "info"
            style = self.get_component_rich_style(f"server-log--{level}", partial=True)
            line.append(f"[{event.worker_pid}] ", time_style)
            line.append(escape_controls(event.text.rstrip("\n")), style)
            self.write(line)
