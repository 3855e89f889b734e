"""The dashboard's main screen: layout, and routing event batches to widgets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen

from devserver.ipc.config import Config
from devserver.ipc.events import (
    DroppedEvents,
    Event,
    LogEvent,
    ReloadEvent,
    RequestEvent,
    ServerEvent,
    WorkerEvent,
    WorkerStatus,
)
from tui.control import ProfileRequested, route_of
from tui.recorded.export import CopyRequested
from tui.recorded.filter import Context
from tui.recorded.replay import ReplayLinks, ReplayRequested
from tui.widgets.filter_bar import FilterBar
from tui.widgets.footer import DashboardFooter
from tui.widgets.header import DashboardHeader
from tui.widgets.reloads import ReloadsPanel
from tui.widgets.request_log import RequestLog, is_profiled
from tui.widgets.server_log import ServerLog
from tui.widgets.stats import StatsPanel
from tui.widgets.workers import WorkersPanel

EXPORT = Binding.Group("Save", compact=True)


class MainScreen(Screen[None]):
    """Header, request log (with filter bar and server messages), and side panels."""

    AUTO_FOCUS = "#requests"

    BINDINGS: ClassVar[list[BindingType]] = [
        # Help first, so that a narrow footer still shows it (it lists every key).
        Binding("question_mark", "app.help", "Help", tooltip="Show keys and filter syntax"),
        Binding("slash", "filter", "Filter", tooltip="Filter the request log (Esc clears)"),
        Binding("p", "pause", "Pause", tooltip="Pause / resume the request log"),
        Binding("c", "clear", "Clear", tooltip="Clear the request log"),
        Binding("r", "replay", "Replay", tooltip="Send the selected request to the server again"),
        Binding("e", "edit", "Edit", show=False, tooltip="Edit the selected request, then send it"),
        Binding("P", "profile", "Profile", tooltip="Profile the next request to the selected one's route (P again: "
                "not); » marks it in the log, its detail opens on the call tree"),
        # One footer entry for the three exports ("yYW Save"): at 80 columns every key fits.
        Binding("y", "copy('curl')", "curl", group=EXPORT,
                tooltip="Copy the selected request as a curl command (and save it)"),
        Binding("Y", "copy('httpie')", "HTTPie", group=EXPORT,
                tooltip="Copy the selected request as an HTTPie command (and save it)"),
        Binding("W", "har", "HAR", group=EXPORT, tooltip="Write the requests shown (filter applied) as a HAR 1.2 file"),
    ]

    class Ready(Message):
        """The widgets exist: events can be applied from now on."""

    def __init__(self, config: Config, clock: Callable[[], float], started: float) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.started = started
        self.url = config.url
        """Where the server listens: the configured URL until the server says otherwise (port 0)."""
        self.replays = ReplayLinks()
        """Logged requests that are replays, linked to their originals (for the diff)."""
        self.profiling: str | None = None
        """The route armed for a profile ("GET /catalog") until its profiled request arrives."""
        self._routes: dict[type, Callable[[list[Any]], None]] = {
            RequestEvent: self._requests,
            WorkerEvent: self._workers,
            WorkerStatus: self._workers,
            ReloadEvent: self._reloads,
            DroppedEvents: self._dropped,
            LogEvent: self._messages,
            ServerEvent: self._server,
        }

    def compose(self) -> ComposeResult:
        yield DashboardHeader(self.config.url, self.config.workers, self.clock, self.started)
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield RequestLog(self.config.log_rows, id="requests")
                yield FilterBar(id="filter", context=self._filter_context)
                yield ServerLog(id="server-log")
            with Vertical(id="side"):
                yield StatsPanel(self.clock, id="stats")
                yield WorkersPanel(id="workers")
                yield ReloadsPanel(dynamic=self.config.dynamic, id="reloads")
        yield DashboardFooter()

    def on_mount(self) -> None:
        self.post_message(self.Ready())

    def _filter_context(self) -> Context:
        return Context(slot_of=self.query_one(WorkersPanel).board.slot_of)

    @property
    def request_log(self) -> RequestLog:
        """The request log widget."""
        return self.query_one("#requests", RequestLog)

    # --------------------------------------------------------------- events

    def apply(self, events: Sequence[Event], overflow: int = 0) -> None:
        """Route one drained batch to the widgets, one call per widget and kind.

        ``overflow`` counts events the app's buffer had to discard.
        """
        batches: dict[Callable[[list[Any]], None], list[Any]] = {}
        for event in events:
            if (route := self._routes.get(type(event))) is not None:
                batches.setdefault(route, []).append(event)
        for route, batch in batches.items():
            route(batch)
        stats = self.query_one(StatsPanel)
        if overflow:
            stats.add_dropped(overflow)
        stats.refresh_view()

    def _requests(self, requests: list[RequestEvent]) -> None:
        if self.profiling is not None and (profiled := next(filter(is_profiled, requests), None)) is not None:
            self._profile_arrived(profiled)
        self.replays.observe(requests)  # the log puts them in time order (workers flush on their own clocks)
        self.request_log.add(requests)
        self.query_one(StatsPanel).add_requests(requests)
        workers = self.query_one(WorkersPanel)
        workers.board.count_requests(requests)
        workers.show()

    def _workers(self, events: list[WorkerEvent | WorkerStatus]) -> None:
        workers = self.query_one(WorkersPanel)
        workers.board.apply(events)
        workers.show()
        self.query_one(DashboardHeader).workers_alive = workers.board.alive

    def _reloads(self, reloads: list[ReloadEvent]) -> None:
        self.query_one(ReloadsPanel).add(reloads)

    def _dropped(self, drops: list[DroppedEvents]) -> None:
        self.query_one(StatsPanel).add_dropped(sum(d.count for d in drops))

    def _messages(self, lines: list[LogEvent]) -> None:
        self.query_one(ServerLog).add(lines)

    def _server(self, events: list[ServerEvent]) -> None:
        self.query_one(ServerLog).add(events)
        header = self.query_one(DashboardHeader)
        header.state = events[-1].state
        for event in events:
            if event.url and event.url != self.url:
                self.url = header.url = event.url

    # ------------------------------------------------------------ profiles

    def show_profiling(self, route: str | None) -> None:
        """Say in the header which route is armed (None: none)."""
        self.profiling = route
        self.query_one(DashboardHeader).profiling = route

    def _profile_arrived(self, request: RequestEvent) -> None:
        """The armed route's profile is in (the supervisor disarmed every worker): show its call tree."""
        self.show_profiling(None)
        from tui.screens.detail import DetailScreen  # loaded after the first paint (DashboardApp.preload_screens)

        if self.app.screen is self or isinstance(self.app.screen, DetailScreen):
            self.app.push_screen(DetailScreen(request, original=self.replays.original_of(request)))
        else:  # the user is busy (editing, a console): the log marks the row with »
            method, target = request.shown_request(60)
            self.notify(f"{method} {target} was profiled: » in the log", title="Profile", markup=False)

    # -------------------------------------------------------------- actions

    def action_profile(self) -> None:
        if (request := self.request_log.selected) is None:
            self.notify("No request selected.", severity="warning")
        else:
            self.post_message(ProfileRequested(route_of(request)))

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_pause(self) -> None:
        self.request_log.paused = not self.request_log.paused

    def action_clear(self) -> None:
        self.request_log.clear()

    def action_replay(self) -> None:
        if (request := self.request_log.selected) is None:
            self.notify("No request selected.", severity="warning")
        else:
            self.post_message(ReplayRequested(request))

    def action_copy(self, kind: str) -> None:
        if (request := self.request_log.selected) is None:
            self.notify("No request selected.", severity="warning")
        else:
            self.post_message(CopyRequested(request, kind))

    def action_edit(self) -> None:
        if (request := self.request_log.selected) is None:
            self.notify("No request selected.", severity="warning")
        else:
            from tui.screens.edit import EditScreen  # loaded after the first paint (DashboardApp.preload_screens)

            self.app.push_screen(EditScreen(request, original=self.replays.original_of(request) or request))

    def action_har(self) -> None:
        self.app.export_har(self.request_log.rows)  # type: ignore[attr-defined]

    @on(FilterBar.Applied)
    def _filter_applied(self, message: FilterBar.Applied) -> None:
        self.request_log.filter = message.request_filter
        if message.done:
            self.request_log.focus()

    @on(RequestLog.Selected)
    def _show_details(self, message: RequestLog.Selected) -> None:
        request = message.request
        from tui.screens.detail import DetailScreen  # loaded after the first paint (DashboardApp.preload_screens)

        self.app.push_screen(DetailScreen(request, original=self.replays.original_of(request)))
