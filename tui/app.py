"""The devserver dashboard application.

Threading: :meth:`DashboardApp.feed` is the only method other threads call.
It buffers events and posts a coalescing :class:`~tui.feed.EventsArrived`;
the app drains the buffer on its own loop at most ``1 / drain_interval``
times a second, so redraws stay bounded however busy the server is.
Blocking calls (replaying a request, asking the supervisor to reload or
stop) run in Textual worker threads and report back with ``call_from_thread``.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer

from devserver.config import Config
from devserver.events import Event, RequestEvent
from tui import format as fmt
from tui.control import Control
from tui.feed import EventBuffer, EventsArrived
from tui.help_screen import HelpScreen
from tui.main_screen import MainScreen
from tui.replay import ReplayRequested, replay_request
from tui.request_log import RequestLog

DRAIN_INTERVAL = 0.1  # seconds: at most 10 redraws a second from server events
BUFFER_MIN = 10_000
STOP_GRACE = 3.0  # seconds beyond config.shutdown_timeout before quitting regardless


class DashboardApp(App[int]):
    """Live view of a running devserver: requests, traffic, workers, reloads.

    ``control`` is the supervisor (or a fake in tests); without it the
    dashboard only displays what it is fed.  ``started`` is the server's start
    time on ``clock`` (default ``time.time``), for the uptime shown in the
    header; both are injectable so snapshots can freeze time.
    """

    CSS_PATH = "app.tcss"
    TITLE = "devserver"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("R", "reload", "Reload", tooltip="Reload every dynamic module now"),
        Binding("o", "open_site", "Open", tooltip="Open the site in a browser"),
        Binding("question_mark", "help", "Help", tooltip="Show keys and filter syntax"),
        Binding("q", "quit", "Quit", tooltip="Stop the server and quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        config: Config,
        control: Control | None = None,
        started: float | None = None,
        *,
        clock: Callable[[], float] = time.time,
        drain_interval: float = DRAIN_INTERVAL,
    ) -> None:
        super().__init__()
        self.config = config
        self.control = control
        self.clock = clock
        self.started = clock() if started is None else started
        self.drain_interval = drain_interval
        self.drain_count = 0
        """How many times the buffer was drained (for tests and curiosity)."""
        self._buffer = EventBuffer(max(2 * config.log_rows, BUFFER_MIN))
        self._accepting = threading.Event()  # set while the main screen can take events
        self._finished = threading.Event()  # set once the app has closed
        self._last_drain = 0.0
        self._drain_timer: Timer | None = None
        self._stopping = False
        self.main = MainScreen(config, clock, self.started)

    def get_default_screen(self) -> Screen[None]:
        return self.main

    # ------------------------------------------------------------ the feed

    def feed(self, events: list[Event]) -> None:
        """Queue server events for display; safe to call from any thread.

        Posts one (coalescing) message per call.  Events fed before the app
        is running are kept and shown once it is; events fed after it has
        closed are dropped.
        """
        if not events or self._finished.is_set():
            return
        self._buffer.put(events)
        if self._accepting.is_set():
            self.post_message(EventsArrived())

    @on(MainScreen.Ready)
    def _start_feed(self) -> None:
        self._accepting.set()
        self._drain()

    def on_unmount(self) -> None:
        self._finished.set()
        self._accepting.clear()

    def on_events_arrived(self, message: EventsArrived) -> None:
        if self._drain_timer is not None:
            return  # a drain is already scheduled
        wait = self._last_drain + self.drain_interval - time.monotonic()
        if wait <= 0:
            self._drain()
        else:
            self._drain_timer = self.set_timer(wait, self._drain)

    def _drain(self) -> None:
        self._drain_timer = None
        self._last_drain = time.monotonic()
        events, overflow = self._buffer.take()
        if events or overflow:
            self.drain_count += 1
            self.main.apply(events, overflow)

    # ------------------------------------------------------------- actions

    @on(ReplayRequested)
    def _replay_requested(self, message: ReplayRequested) -> None:
        request = message.request
        self.notify(f"Replaying {request.method} {request.target} …", title="Replay", timeout=2, markup=False)
        self._replay(request, self.main.url)

    @work(thread=True, exit_on_error=False, group="replay")
    def _replay(self, request: RequestEvent, url: str) -> None:
        label = f"{request.method} {request.target}"
        try:
            result = replay_request(request, url)
        except (OSError, http.client.HTTPException) as exc:
            self.call_from_thread(
                self.notify, f"{label} failed: {exc}", title="Replay", severity="error", markup=False
            )
            return
        severity = "error" if result.status >= 500 else "warning" if result.status >= 400 else "information"
        text = f"{label} → {result.status} {result.reason} in {fmt.duration(result.duration_ms)}"
        self.call_from_thread(self.notify, text, title="Replay", severity=severity, markup=False)

    def action_reload(self) -> None:
        if self.control is None:
            self.notify("No server attached.", severity="warning")
            return
        self.notify("Reloading all dynamic modules …", timeout=2)
        self._reload_all(self.control)

    @work(thread=True, exit_on_error=False, group="control")
    def _reload_all(self, control: Control) -> None:
        try:
            control.reload_all()
        except Exception as exc:  # report any failure of the supervisor, keep the UI
            self.call_from_thread(self.notify, f"Reload failed: {exc}", severity="error", markup=False)

    def action_open_site(self) -> None:
        self.notify(f"Opening {self.main.url}", timeout=2, markup=False)
        self.open_url(self.main.url)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen(self.key_bindings()))

    async def action_quit(self) -> None:
        """Stop the server (showing its shutdown), then exit; a second ``q`` exits at once."""
        if self.control is None or self._stopping:
            self.exit(0)
            return
        self._stopping = True
        self.notify("Stopping the server …")
        self.set_timer(self.config.shutdown_timeout + STOP_GRACE, partial(self.exit, 0))
        self._stop_server(self.control)

    @work(thread=True, exit_on_error=False, group="control")
    def _stop_server(self, control: Control) -> None:
        try:
            control.stop()
        finally:
            self.call_from_thread(self.exit, 0)

    # --------------------------------------------------- help and commands

    def key_bindings(self) -> list[Binding]:
        """Every dashboard key, for the help screen."""
        enter = next(b for b in RequestLog.BINDINGS if isinstance(b, Binding) and b.key == "enter")
        bindings = [enter, *MainScreen.BINDINGS, *self.BINDINGS]
        return [b for b in bindings if isinstance(b, Binding) and b.show]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        own: list[tuple[Binding, object]] = [(b, self) for b in self.BINDINGS if isinstance(b, Binding)]
        if isinstance(screen, MainScreen):
            own += [(b, screen) for b in screen.BINDINGS if isinstance(b, Binding)]
        for binding, target in own:
            if binding.show and binding.action != "quit":  # Textual already offers Quit
                title = f"{binding.description} ({self.get_key_display(binding)})"
                yield SystemCommand(title, binding.tooltip, partial(self.run_action, binding.action, target))

