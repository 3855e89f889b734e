"""``?``: the keys and the filter syntax."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.recorded.filter import OPERATORS
from tui.widgets.footer import DashboardFooter


def filter_help() -> Table:
    """The filter language, from the operator table itself."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for operator, (builder, meaning) in OPERATORS.items():
        grid.add_row(operator if builder is None else f"{operator} …", meaning)
    grid.add_row("5xx 404 POST", "shorthands for ~s 5xx, ~c 404, ~m POST")
    grid.add_row("word \"a b\"", "text in the request line, client or error (quotes: always text)")
    grid.add_row("! & | ( )", "not, and (also by juxtaposition), or; e.g. ~m POST & !(~s 2xx | ~u ^/static)")
    return grid


CONSOLE_HELP = (
    "Console (x in the detail of a request whose app raised): Python run in the frame that raised, inside the "
    "worker that served it (each worker keeps its last 10 failures). Expressions show their value, statements "
    "run (x = 1, then x); Ctrl+Up/Down or the frames list pick another frame; 3 s at most per evaluation. "
    "It goes through the supervisor's pipes only: nothing over HTTP can reach it."
)


class HelpScreen(ModalScreen[None]):
    """A dialog listing ``bindings`` and the filter syntax."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", tooltip="Close this help"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),  # q here closes the help, as in less and man
        Binding("f1", "dismiss", "Close", show=False),  # F1 opens it from the filter bar
    ]

    def __init__(self, bindings: Iterable[Binding], detail: Iterable[Binding] = ()) -> None:
        super().__init__()
        self.bindings = list(bindings)
        self.detail = list(detail)
        """The keys of a request's detail screen (Enter) that differ from the main screen's."""

    def _keys(self, bindings: Iterable[Binding]) -> Table:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for binding in bindings:
            keys.add_row(self.app.get_key_display(binding), binding.tooltip or binding.description)
        return keys

    def compose(self) -> ComposeResult:
        keys = self._keys(self.bindings)
        keys.add_row("^p", "Command palette: every action by name (not in the footer below 100 columns)")
        with VerticalScroll(id="help-dialog"):
            yield Static("devserver dashboard — keys  (Esc, q or ? closes)", id="help-title")
            yield Static("A footer too narrow for every key shows the most used ones first: all are here.",
                         id="help-footer-note")
            yield Static(keys, id="help-keys")
            if self.detail:
                yield Static("In a request's detail (Enter), besides the keys above (Esc goes back):",
                             id="help-detail-title")
                yield Static(self._keys(self.detail), id="help-detail-keys")
            yield Static("Filter (after /):", id="help-filter-title")
            yield Static(filter_help(), id="help-filter")
            yield Static(CONSOLE_HELP, id="help-console", markup=False)
            yield Static("Esc, q or ? closes", id="help-close")
        yield DashboardFooter()  # "esc Close" stays on screen, however far the list is scrolled
