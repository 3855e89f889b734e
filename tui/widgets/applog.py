"""The detail's Logs tab: what the app printed or logged while serving a request, a line per row.

The table shows each line's level, logger and text (shortened); the
highlighted row shows below it the whole line and where it was logged: the
``logging`` record's "path:line" relative to the project and its logger
(RequestEvent.log_sources).  A print() or a ``wsgi.errors`` write has no
record, so no place: the row says so.  All text is escaped for the terminal.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from devserver.debug.requestlogs import NO_SOURCE, Source
from devserver.ipc.events import RequestEvent
from devserver.kit.safetext import escape_controls

TEXT_CELLS = 60  # characters of a line in the table (the row's detail has it whole)
LOGGER_CELLS = 20


def sources_of(request: RequestEvent) -> list[Source]:
    """(level, logger, "path:line") per line of ``request.logs``, NO_SOURCE where no record wrote it."""
    sources = list(request.log_sources[: len(request.logs)])
    return sources + [NO_SOURCE] * (len(request.logs) - len(sources))


def line_detail(text: str, source: Source) -> str:
    """The whole line, then where it was logged (or that it was printed)."""
    level, logger, where = source
    place = (f"logged at {where} by {logger or 'the root logger'} ({level})" if where
             else "printed (print(), stdout, stderr or wsgi.errors): no source location")
    return escape_controls(f"{text}\n{place}")


def _short(text: str, cells: int) -> str:
    return text if len(text) <= cells else text[: cells - 1] + "…"


class AppLog(VerticalScroll):
    """The Logs tab's content for one request."""

    def __init__(self, request: RequestEvent, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines = request.logs
        self.sources = sources_of(request)

    def compose(self) -> ComposeResult:
        if not self.lines:
            yield Static("App output", classes="section-title", id="app-output-title")
            yield Static("The app printed and logged nothing while serving it.", classes="section-body",
                         id="app-output")
            return
        yield Static(f"App output while serving it ({len(self.lines)} lines, ↑↓ picks one)",
                     classes="section-title", id="app-output-title")
        yield DataTable(id="log-lines", cursor_type="row", zebra_stripes=True)
        yield Static(line_detail(self.lines[0], self.sources[0]), id="log-line", classes="section-body",
                     markup=False)

    def on_mount(self) -> None:
        if not self.lines:
            return
        table = self.query_one("#log-lines", DataTable)
        table.add_columns("level", "logger", "text")
        for index, (text, (level, logger, _)) in enumerate(zip(self.lines, self.sources, strict=True)):
            cells = (level or "print", _short(logger, LOGGER_CELLS) or "—", _short(text, TEXT_CELLS))
            # Text: a str cell is read as markup
            table.add_row(*(Text(escape_controls(cell, multiline=False)) for cell in cells), key=str(index))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            index = int(event.row_key.value)
            self.query_one("#log-line", Static).update(line_detail(self.lines[index], self.sources[index]))
