"""The ``/`` filter input under the request log.

A malformed expression never reaches the log: the bar shows the error in its
border (and turns red) while the last good filter stays applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input

from devserver.kit.safetext import escape_controls
from tui.recorded.filter import Context, FilterError, RequestFilter, parse_filter

# The longest that fits is shown (a cut hint would hide how to get help or out).  Not "?": typed here, it is text.
PLACEHOLDERS = (
    "~s 5xx & !~u static  ·  ~d >100ms  ·  text  — F1 syntax, Enter keeps, Esc clears",
    "~s 5xx · ~d >100ms · text — F1 syntax, Esc clears",
    "~s 5xx · text — F1 syntax, Esc clears",
    "F1 syntax, Esc clears",
)


def placeholder_for(width: int) -> str:
    """The hint for an input ``width`` cells wide (one is the cursor's)."""
    return next((text for text in PLACEHOLDERS if len(text) < width), PLACEHOLDERS[-1])


class FilterBar(Input):
    """Live filter query; Enter keeps it and returns to the log, Escape clears and closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Clear filter"),
        Binding("f1", "app.help", "Syntax", tooltip="The filter syntax and every key"),
    ]

    class Applied(Message):
        """The filter changed; ``done``: hand the keyboard back to the log."""

        def __init__(self, request_filter: RequestFilter, done: bool = False) -> None:
            super().__init__()
            self.request_filter = request_filter
            self.done = done

    def __init__(self, *, id: str | None = None, context: Callable[[], Context] = Context) -> None:
        super().__init__(placeholder=PLACEHOLDERS[0], id=id)
        self._filter_context = context
        self.error: FilterError | None = None
        """The problem with the current text, if any (shown in the border)."""

    def on_resize(self) -> None:
        self.placeholder = placeholder_for(self.content_region.width)

    def open(self) -> None:
        """Show the bar and give it the keyboard."""
        self.add_class("-open")
        self.focus()

    def action_close(self) -> None:
        self.value = ""
        self._show_error(None)
        self.remove_class("-open")
        self.post_message(self.Applied(RequestFilter(), done=True))

    def _parse(self, text: str) -> RequestFilter | None:
        try:
            request_filter = parse_filter(text, self._filter_context())
        except FilterError as exc:
            self._show_error(exc)
            return None
        self._show_error(None)
        return request_filter

    def _show_error(self, error: FilterError | None) -> None:
        self.error = error
        self.set_class(error is not None, "-invalid")
        self.border_subtitle = escape_controls(str(error), multiline=False) if error else ""

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if (request_filter := self._parse(event.value)) is not None:
            self.post_message(self.Applied(request_filter))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        request_filter = self._parse(event.value)
        if request_filter is None:
            return  # stay open on the error
        if not event.value.strip():
            self.remove_class("-open")
        self.post_message(self.Applied(request_filter, done=True))
