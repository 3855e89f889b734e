"""Server notices and what applications wrote to ``wsgi.errors`` (or printed, under the dashboard).

Apps' text is shown with control characters escaped: an app that prints
request data must not be able to drive the terminal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.widgets import RichLog

from devserver.ipc.events import LogEvent, ServerEvent
from devserver.kit.safetext import escape_controls
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
        # Lines wrap (between words: a URL stays whole) rather than hide their end past the panel's edge.
        super().__init__(id=id, max_lines=MAX_LINES, wrap=True, markup=False, highlight=False, auto_scroll=True,
                         min_width=20)  # RichLog renders at 78 columns at least, whatever its width

        self._texts: deque[Text] = deque(maxlen=MAX_LINES)  # what was written, to wrap again at a new width
        self._wrapped_at = 0

    def on_mount(self) -> None:
        self.border_title = "Server"

    def _put(self, text: Text) -> None:
        self._texts.append(text)
        self.write(text)

    def on_resize(self, event: events.Resize) -> None:
        """Wrap every line again at the new width: RichLog wraps a line once, at the width it had then."""
        width = self.scrollable_content_region.width
        if width == self._wrapped_at or not self._texts:
            self._wrapped_at = width
            return
        self._wrapped_at = width
        self.clear()
        for text in self._texts:
            self.write(text)

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
                self._put(line)
                warning = self.get_component_rich_style("server-log--warning", partial=True)
                for extra in event.details:  # notes and warnings: each on a line of its own
                    self._put(Text(" " * 9 + escape_controls(extra, multiline=False), warning))
                continue
            level = event.level if event.level in ("warning", "error") else "info"
            style = self.get_component_rich_style(f"server-log--{level}", partial=True)
            line.append(f"[{event.worker_pid}] ", time_style)
            line.append(escape_controls(event.text.rstrip("\n")), style)
            self._put(line)
