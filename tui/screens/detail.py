"""Everything recorded about one request.

Every value shown comes from the request or the app, so every one is shown
with its control characters escaped (``\x1b``): a query such as
``?q=%1b%5b2J`` must not clear the screen or rename the terminal window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from devserver.debug.tracebacks import report_text
from devserver.http.parser import LINE_KEPT
from devserver.http.statuses import reason
from devserver.ipc.events import Headers, RequestEvent, WebSocketSummary
from devserver.kit.safetext import escape_controls
from tui import format as fmt
from tui.control import Control, ProfileRequested, route_of
from tui.recorded.bodies import Side, load_body
from tui.recorded.diff import response_diff
from tui.recorded.export import CopyRequested
from tui.recorded.replay import ReplayRequested
from tui.screens.console import ConsoleScreen, has_console
from tui.screens.edit import EditScreen
from tui.widgets.applog import AppLog
from tui.widgets.body_view import render_body
from tui.widgets.folded import FoldedText
from tui.widgets.footer import DashboardFooter
from tui.widgets.header import DashboardHeader
from tui.widgets.timeline import Timeline


def decode_header_value(value: str) -> str:
    """A header value as the client meant it: latin-1 carriage of UTF-8 bytes decoded (raw kept if not UTF-8)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def headers_text(headers: Headers) -> str:
    """``Name: value`` lines (values decoded; the raw form follows when it differs), or a dash."""
    lines = []
    for name, value in headers:
        shown = decode_header_value(value)
        line = f"{name}: {shown}" if shown == value else f"{name}: {shown}    (raw: {value!a})"
        lines.append(escape_controls(line, multiline=False))
    return "\n".join(lines) or "—"


def query_text(target: str) -> str:
    """The decoded query parameters of ``target``, one per line, or a dash."""
    pairs = parse_qsl(urlsplit(target).query, keep_blank_values=True)
    return "\n".join(escape_controls(f"{name} = {value}", multiline=False) for name, value in pairs) or "—"


TITLE_LINE = 60  # characters of a refused request's raw line in the screen's title
REFUSED_NOTE = "as received: refused before it was parsed"


def request_line(event: RequestEvent) -> str:
    """``METHOD target HTTP/x`` with the path percent-decoded (the raw target follows when it differs).

    A request refused before it was parsed shows the first line it sent, as
    received (escaped, the first 1 KiB), since it has no method or target.
    """
    if event.request_line:
        cut = ", first 1 KiB" if len(event.request_line) >= LINE_KEPT else ""
        return f"{event.shown_request()[1]}    ({REFUSED_NOTE}{cut})"
    version = event.http_version if event.http_version.startswith("HTTP/") else f"HTTP/{event.http_version}"
    decoded = unquote(event.target, errors="strict") if _decodes(event.target) else event.target
    line = f"{event.method} {decoded} {version}"
    if decoded != event.target:
        line += f"    (raw: {event.target})"
    return escape_controls(line, multiline=False)


def _decodes(target: str) -> bool:
    try:
        unquote(target, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def websocket_text(ws: WebSocketSummary) -> tuple[str, str]:
    """The title and lines of a WebSocket connection's section: how it ended, then its first messages."""
    reason = f" ({ws.close_reason})" if ws.close_reason else ""
    title = escape_controls(f"WebSocket: {ws.messages_in} in / {ws.messages_out} out, closed {ws.close_code}{reason}",
                            multiline=False)
    lines = [f"{m.at:9.3f} s  {m.direction:>3}  {m.size:>9} B  {'text' if m.text else 'binary'}  "
             f"{escape_controls(m.shown, multiline=False)}" for m in ws.messages]
    total = ws.messages_in + ws.messages_out
    if len(ws.messages) < total:
        lines.append(f"(the first {len(ws.messages)} of {total} messages)")
    return title, "\n".join(lines) or "(no messages)"


def body_text(body: bytes, content_type: str = "") -> str:
    """A body as text, JSON, form fields, image description or hex dump (escaped)."""
    return render_body(body, content_type)


TABS = Binding.Group("Tabs", compact=True)
SAVE = Binding.Group("Save", compact=True)
TAB_IDS = ("request", "response", "timeline", "logs", "console")
"""The tabs in their order: key 1 shows the first, 5 the last."""
FOCUS_ORDER = ("#profile-tree", "#timeline-items", "#log-lines", ".pane")


FIRST_TABS: tuple[tuple[Callable[[RequestEvent, bool], object], str], ...] = (
    (lambda r, _: r.error_report is not None or r.traceback, "console"),  # its failure
    (lambda r, _: r.inside is not None and r.inside.profile is not None, "timeline"),  # the call tree asked for
    (lambda r, replayed: replayed or r.error, "response"),  # the diff of a replay, a server error
)


def first_tab(request: RequestEvent, replayed: bool) -> str:
    """The tab a request opens on: the first of FIRST_TABS that applies, else the request itself."""
    return next((tab for applies, tab in FIRST_TABS if applies(request, replayed)), "request")


class DetailScreen(Screen[None]):
    """One request in tabs: Request, Response, Timeline, Logs, Console (as browser devtools split them)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back"),
        Binding("backspace", "dismiss", "Back", show=False),
        *(Binding(str(n), f"tab('{tab}')", tab.capitalize(), group=TABS, tooltip=f"Show the {tab.capitalize()} tab")
          for n, tab in enumerate(TAB_IDS, 1)),
        Binding("b", "expand", "Expand", tooltip="Show a body folded past half a screen whole (b again folds it)"),
        Binding("r", "replay", "Replay", tooltip="Send this exact request to the server again"),
        Binding("e", "edit", "Edit", tooltip="Edit this request, then send it"),
        Binding("y", "copy('curl')", "curl", group=SAVE, tooltip="Copy as a curl command (and save it to a file)"),
        Binding("Y", "copy('httpie')", "HTTPie", group=SAVE,
                tooltip="Copy as an HTTPie command (and save it to a file)"),
        Binding("p", "profile", "Profile", tooltip="Profile the next request to this route (p again: not)"),
        Binding("x", "console", "Console", tooltip="Failed request: run Python in its failing frames, in its worker"),
    ]

    def __init__(self, request: RequestEvent, original: RequestEvent | None = None) -> None:
        super().__init__()
        self.request = request
        self.original = original
        """The request this one replays, if it is a replay (a diff is shown)."""

    def compose(self) -> ComposeResult:
        r = self.request
        yield Static(request_line(r), id="request-line", markup=False)
        yield Static("", id="detail-armed", markup=False)  # the main screen's header is hidden here: say it too
        with TabbedContent(initial=f"tab-{first_tab(r, self.original is not None)}", id="detail-tabs"):
            with TabPane("Request", id="tab-request"), VerticalScroll(classes="pane"):
                yield from self._section("Query", query_text(r.target))
                yield from self._section("Request headers", headers_text(r.request_headers), id="request-headers")
                yield from self._body("request", r.request_headers)
            with TabPane("Response", id="tab-response"), VerticalScroll(classes="pane"):
                yield from self._response()
            with TabPane("Timeline", id="tab-timeline"):
                yield Timeline(r, id="timeline", classes="pane")
            with TabPane(f"Logs ({len(r.logs)})" if r.logs else "Logs", id="tab-logs"):
                yield AppLog(r, id="app-log", classes="pane")
            with TabPane("Console", id="tab-console"), VerticalScroll(classes="pane"):
                yield from self._failure()
        yield DashboardFooter()

    def _response(self) -> ComposeResult:
        r = self.request
        yield from self._section("Response", f"{r.status} {reason(r.status)}", classes=f"status-{fmt.status_class(r.status)}",
                                 id="response-status")
        timing = (
            f"{fmt.clock_time(r.time)}  ·  {fmt.duration(r.duration_ms)}  ·  {fmt.size(r.bytes_sent)} sent"
            f"  ·  client {escape_controls(r.client, multiline=False)}  ·  worker {r.worker_pid}"
        )
        yield from self._section("Timing", timing)
        if self.original is not None:
            o = self.original
            title = f"Replay of {o.method} {o.target} at {fmt.clock_time(o.time)}: differences"
            yield from self._section(escape_controls(title, multiline=False),
                                     response_diff(o, r), classes="diff", id="diff")
        if r.error:
            yield from self._section("Error", escape_controls(r.error), classes="error")
        if r.websocket is not None:
            yield from self._section(*websocket_text(r.websocket), id="websocket")
        yield from self._section("Response headers", headers_text(r.response_headers), id="response-headers")
        yield from self._body("response", r.response_headers)

    def _failure(self) -> ComposeResult:
        r = self.request
        if r.error_report is not None:
            title = f"Traceback — {len(r.error_report.frames)} app frames, newest last"
            if has_console(r):
                title += " (x: a Python console in these frames)"
            yield from self._section(title, escape_controls(report_text(r.error_report)),
                                     classes="traceback", id="traceback")
        elif r.traceback:  # whole: nothing follows it in its tab, and its last line is the one that matters
            yield from self._section("Traceback", escape_controls(r.traceback), classes="traceback", id="traceback")
        else:
            yield from self._section("No failure", "The app did not raise while serving this request: there is no "
                                     "traceback and no console.", id="no-failure")

    def _body(self, side: Side, headers: Headers) -> ComposeResult:
        body = load_body(self.request, side)
        content_type = next((v for n, v in headers if n.lower() == "content-type"), "")
        title = f"{side.capitalize()} body ({body.note})"
        text = render_body(body.data, content_type, size=body.size, cut=not body.complete)
        if not body.complete and body.data:
            text += f"\n\n⚠ {body.note}: the end of this body is not shown"
        yield from self._section(title, text, id=f"{side}-body", classes="" if body.complete else "cut",
                                 folded=True, size=body.size)

    @staticmethod
    def _section(title: str, body: str, classes: str = "", id: str | None = None, *, folded: bool = False,
                 size: int | None = None) -> ComposeResult:
        yield Static(title, classes="section-title", markup=False, id=f"{id}-title" if id else None)
        classes = f"section-body {classes}".strip()
        if folded:  # past a screenful it shows its start and its size: what follows stays one key away
            yield FoldedText(escape_controls(body), size=size, classes=classes, id=id)
        else:
            yield Static(escape_controls(body), classes=classes, markup=False, id=id)

    def on_mount(self) -> None:
        r = self.request
        method, target = r.shown_request(TITLE_LINE)
        self.title = f"{method} {target} → {r.status}"
        self.call_after_refresh(self._focus_pane)
        main = getattr(self.app, "main", None)
        for header in main.query(DashboardHeader) if isinstance(main, Screen) else ():
            self.watch(header, "profiling", self._show_armed)

    def _show_armed(self, route: str | None) -> None:
        armed = self.query_one("#detail-armed", Static)
        armed.update(escape_controls(f"Profile armed: the next {route} (p again: not)", multiline=False) if route else "")
        armed.display = bool(route)

    @property
    def tab(self) -> str:
        """The tab shown: "request", "response", "timeline", "logs" or "console"."""
        return (self.query_one(TabbedContent).active or "tab-request").removeprefix("tab-")

    def _focus_pane(self) -> None:
        """Keys go to the tab shown: ↑↓ and PgUp/PgDn scroll it (or move through its table)."""
        pane = self.query_one(f"#tab-{self.tab}", TabPane)
        for selector in FOCUS_ORDER:  # a profile's call tree first, else the table, else the tab's scroll
            if (found := pane.query(selector)) and (widget := found.first()).focusable:
                widget.focus(scroll_visible=False)
                self.call_after_refresh(widget.scroll_visible, animate=False, top=True)
                return

    @on(TabbedContent.TabActivated)
    def _tab_shown(self) -> None:
        self.call_after_refresh(self._focus_pane)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{tab}"

    def action_expand(self) -> None:
        pane = self.query_one(f"#tab-{self.tab}", TabPane)
        folds = [f for f in pane.query(FoldedText) if f.folded_lines or f.expanded]
        if not folds:
            self.notify("Nothing is folded in this tab.", title="Expand", timeout=2)
            return
        expand = not any(f.expanded for f in folds)
        for fold in folds:
            fold.expanded = expand

    def action_replay(self) -> None:
        self.post_message(ReplayRequested(self.request, self.original))

    def action_edit(self) -> None:
        self.app.push_screen(EditScreen(self.request, original=self.original or self.request))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``x`` is offered only where there is a failure to look into."""
        return has_console(self.request) if action == "console" else True

    def action_console(self) -> None:
        if not has_console(self.request):
            self.notify("Only a request whose app raised has a console.", title="Console", severity="warning")
            return
        control = getattr(self.app, "control", None)
        self.app.push_screen(ConsoleScreen(self.request, control if isinstance(control, Control) else None))

    def action_copy(self, kind: str) -> None:
        self.post_message(CopyRequested(self.request, kind))

    def action_profile(self) -> None:
        self.post_message(ProfileRequested(route_of(self.request)))
