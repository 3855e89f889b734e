"""``?``: the keys and the filter syntax."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

FILTER_HELP = (
    "Filter terms (after /): free text matches target, client or error;\n"
    "5xx or 4xx: status class; 404: exact status; POST, get …: method.\n"
    "Terms of one kind are alternatives, kinds combine: POST 5xx api"
)


class HelpScreen(ModalScreen[None]):
    """A dialog listing ``bindings`` and the filter syntax."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def __init__(self, bindings: Iterable[Binding]) -> None:
        super().__init__()
        self.bindings = list(bindings)

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for binding in self.bindings:
            keys.add_row(self.app.get_key_display(binding), binding.tooltip or binding.description)
        with Vertical(id="help-dialog"):
            yield Static("devserver dashboard — keys", id="help-title")
            yield Static(keys, id="help-keys")
            yield Static(FILTER_HELP, id="help-filter", markup=False)
            yield Static("Esc closes", id="help-close")
