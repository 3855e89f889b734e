"""Everything recorded about one request.

Every value shown comes from the request or the app, so every one is shown
with its control characters escaped (``\x1b``): a query such as
``?q=%1b%5b2J`` must not clear the screen or rename the terminal window.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from devserver.events import Headers, RequestEvent
from devserver.pages import reason
from devserver.safetext import escape_controls
from tui import format as fmt
from tui.replay import ReplayRequested

HEX_PREVIEW = 256


def headers_text(headers: Headers) -> str:
    """``Name: value`` lines, or a dash."""
    return "\n".join(f"{name}: {value}" for name, value in headers) or "—"


def query_text(target: str) -> str:
    """The decoded query parameters of ``target``, one per line, or a dash."""
    pairs = parse_qsl(urlsplit(target).query, keep_blank_values=True)
    return "\n".join(f"{name} = {value}" for name, value in pairs) or "—"


def body_text(body: bytes) -> str:
    """The body preview as text, or as a hex dump when it is not UTF-8 text."""
    if not body:
        return "—"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return text
    lines = []
    for offset in range(0, min(len(body), HEX_PREVIEW), 16):
        chunk = body[offset : offset + 16]
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:04x}  {chunk.hex(' '):<47}  {ascii_}")
    if len(body) > HEX_PREVIEW:
        lines.append(f"… {len(body) - HEX_PREVIEW} more bytes")
    return "\n".join(lines)


class DetailScreen(Screen[None]):
    """Request line, headers, query, body preview, response, timing, traceback."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back"),
        Binding("backspace", "dismiss", "Back", show=False),
        Binding("r", "replay", "Replay", tooltip="Send this request to the server again"),
    ]

    def __init__(self, request: RequestEvent) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        status_class = fmt.status_class(r.status)
        # Workers report the bare version ("1.1", as the parsers give it); show a request line.
        version = r.http_version if r.http_version.startswith("HTTP/") else f"HTTP/{r.http_version}"
        request_line = escape_controls(f"{r.method} {r.target} {version}", multiline=False)
        yield Static(request_line, id="request-line", markup=False)
        with VerticalScroll(id="detail-body"):
            yield from self._section("Response", f"{r.status} {reason(r.status)}", classes=f"status-{status_class}")
            timing = (
                f"{fmt.clock_time(r.time)}  ·  {fmt.duration(r.duration_ms)}  ·  {fmt.size(r.bytes_sent)} sent"
                f"  ·  client {r.client}  ·  worker {r.worker_pid}"
            )
            yield from self._section("Timing", timing)
            if r.error:
                yield from self._section("Error", r.error, classes="error")
            if r.traceback:
                yield from self._section("Traceback", r.traceback, classes="traceback", id="traceback")
            yield from self._section("Query", query_text(r.target))
            yield from self._section("Request headers", headers_text(r.request_headers), id="request-headers")
            body_title = f"Request body (preview, {len(r.body_preview)} bytes)"
            yield from self._section(body_title, body_text(r.body_preview), id="body-preview")
            yield from self._section("Response headers", headers_text(r.response_headers), id="response-headers")
        yield Footer()

    @staticmethod
    def _section(title: str, body: str, classes: str = "", id: str | None = None) -> ComposeResult:
        yield Static(title, classes="section-title", markup=False)
        yield Static(escape_controls(body), classes=f"section-body {classes}".strip(), markup=False, id=id)

    def on_mount(self) -> None:
        r = self.request
        self.title = escape_controls(f"{r.method} {r.target} → {r.status}", multiline=False)
        self.query_one("#detail-body").focus()

    def action_replay(self) -> None:
        self.post_message(ReplayRequested(self.request))
