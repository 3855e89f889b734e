"""``e``: edit a recorded request as text (request line, headers, blank line, body), then send it.

Content-Length is not shown: it is set from the edited body when sending.
A body that was cut, or is not UTF-8 text, cannot be edited here (the
message says so); ``r`` still replays it when it is whole.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from devserver.ipc.events import RequestEvent
from tui.recorded.bodies import BodyNotExact, exact_request_body
from tui.recorded.replay import ReplayRequested


class EditError(ValueError):
    """The edited text is not a request."""


def request_as_text(event: RequestEvent) -> str:
    """The editable form of ``event``; raises :class:`EditError` if its body cannot be edited as text."""
    try:
        body = exact_request_body(event)
    except BodyNotExact as exc:
        raise EditError(str(exc)) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EditError("the body is not UTF-8 text (r replays it as it is)") from None
    version = event.http_version if event.http_version.startswith("HTTP/") else f"HTTP/{event.http_version}"
    headers = "".join(f"{n}: {v}\n" for n, v in event.request_headers if n.lower() != "content-length")
    return f"{event.method} {event.target} {version}\n{headers}\n{text}"


def parse_request_text(text: str, base: RequestEvent) -> tuple[RequestEvent, bytes]:
    """The request the edited ``text`` describes (a copy of ``base`` otherwise), and its body."""
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    parts = lines[0].split()
    if len(parts) not in (2, 3) or not parts[0].isalpha():
        raise EditError("the first line must be: METHOD target [HTTP/1.1]")
    headers = []
    for number, line in enumerate(lines[1:], start=2):
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise EditError(f"line {number} is not a header (Name: value): {line[:40]!r}")
        headers.append((name, value.strip()))
    data = body.encode("utf-8")
    edited = replace(
        base, method=parts[0].upper(), target=parts[1], request_headers=tuple(headers),
        request_body=None, body_preview=b"",
    )
    return edited, data


class EditScreen(Screen[None]):
    """A text editor on one request; Ctrl+S sends the edited copy, Escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("escape", "dismiss", "Cancel"),
    ]

    def __init__(self, request: RequestEvent, original: RequestEvent) -> None:
        super().__init__()
        self.request = request
        self.original = original

    def compose(self) -> ComposeResult:
        try:
            text, problem = request_as_text(self.request), ""
        except EditError as exc:
            text, problem = "", f"This request cannot be edited: {exc}"
        yield Static("Edit the request, Ctrl+S sends it (Content-Length is set for you), Esc cancels",
                     id="edit-help", markup=False)
        yield Static(problem, id="edit-error", markup=False)
        yield TextArea(text, id="edit-text", read_only=bool(problem), soft_wrap=False, show_line_numbers=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_send(self) -> None:
        error = self.query_one("#edit-error", Static)
        if self.query_one(TextArea).read_only:
            return
        try:
            edited, body = parse_request_text(self.query_one(TextArea).text, self.request)
        except EditError as exc:
            error.update(f"Not sent: {exc}")
            return
        self.post_message(ReplayRequested(edited, self.original, body=body))
        self.dismiss()
