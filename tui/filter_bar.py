"""The ``/`` filter input under the request log."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input

from tui.filter import RequestFilter, parse_filter


class FilterBar(Input):
    """Live filter query; Enter keeps it and returns to the log, Escape clears and closes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Clear filter")]

    class Applied(Message):
        """The filter changed; ``done``: hand the keyboard back to the log."""

        def __init__(self, request_filter: RequestFilter, done: bool = False) -> None:
            super().__init__()
            self.request_filter = request_filter
            self.done = done

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="text  5xx  404  POST  — Enter keeps, Esc clears", id=id)

    def open(self) -> None:
        """Show the bar and give it the keyboard."""
        self.add_class("-open")
        self.focus()

    def action_close(self) -> None:
        self.value = ""
        self.remove_class("-open")
        self.post_message(self.Applied(RequestFilter(), done=True))

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Applied(parse_filter(event.value)))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.remove_class("-open")
        self.post_message(self.Applied(parse_filter(event.value), done=True))
