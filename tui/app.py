"""The devserver dashboard application.

Threading: :meth:`DashboardApp.feed` is the only method other threads call.
It buffers events and posts a coalescing :class:`~tui.feed.EventsArrived`
(only when none is pending, so a busy server does not wake the loop per
batch); the app drains the buffer on its own loop.

Pacing: the dashboard runs in the supervisor's process, so under load every
drain and redraw takes CPU from the workers (bench/dashboard_overhead.py).
Drains are spaced at least ``drain_interval`` apart, and further while events
keep coming, so that the loop's own CPU time (drain, redraw, everything else
on the loop) stays near ``UI_CPU_BUDGET`` of one core, up to
``MAX_DRAIN_INTERVAL``: a trickle of requests shows within a fraction of a
second, a flood redraws about once a second.  A buffer half full is drained
at once, so pacing never makes it overflow.

Blocking calls (replaying a request, asking the supervisor to reload or
stop, starting a browser) run in Textual worker threads and report back with
``call_from_thread``.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.screen import Screen
from textual.timer import Timer

from devserver.ipc.config import Config
from devserver.ipc.events import Event, RequestEvent
from devserver.kit.safetext import escape_controls
from tui import format as fmt
from tui.browser import find_browser, launch, local_url
from tui.control import Control, ProfileRequested
from tui.feed import EventBuffer, EventsArrived, settle_gc
from tui.recorded.bodies import BodyNotExact
from tui.recorded.export import COMMANDS, CopyRequested, ExportError, export_folder, har_json, saved_where, write_export
from tui.recorded.replay import ReplayRequested, replay_request
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.widgets.request_log import RequestLog

DRAIN_INTERVAL = 0.1  # seconds: at most 10 redraws a second from server events
MAX_DRAIN_INTERVAL = 1.0  # seconds: at least one a second while events keep coming
UI_CPU_BUDGET = 0.05  # share of one core the loop aims to stay under while events keep coming
BUFFER_MIN = 10_000
STOP_GRACE = 3.0  # seconds beyond config.shutdown_timeout before quitting regardless
PRELOAD_DELAY = 0.5  # seconds after the first paint before the request screens are imported
LAUNCH_WAIT = 5.0  # seconds a browser launcher has to fail before it counts as started


def listed(bindings: Iterable[BindingType]) -> list[Binding]:
    """The bindings the help lists: shown in a footer or with a tooltip, each key once, no ``app.`` aliases."""
    seen: set[str] = set()
    keys = []
    for b in bindings:
        if isinstance(b, Binding) and (b.show or b.tooltip) and b.key not in seen and not b.action.startswith("app."):
            seen.add(b.key)
            keys.append(b)
    return keys


class DashboardApp(App[int]):
    """Live view of a running devserver: requests, traffic, workers, reloads.

    ``control`` is the supervisor (or a fake in tests); without it the
    dashboard only displays what it is fed.  ``started`` is the server's start
    time on ``clock`` (default ``time.time``), for the uptime shown in the
    header; both are injectable so snapshots can freeze time.  ``tune_gc``
    (set by :func:`tui.run.run_dashboard`) tunes the process's garbage
    collector once the app is up; tests leave it off, it is process-wide.
    """

    CSS_PATH = "app.tcss"
    TITLE = "devserver"
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (70, "-narrow"), (110, "-wide"), (150, "-huge")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

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
        tune_gc: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.control = control
        self.clock = clock
        self.started = clock() if started is None else started
        self.drain_interval = drain_interval
        """The least spacing of drains (0: drain as soon as events arrive, with no pacing)."""
        self.tune_gc = tune_gc
        self.drain_count = 0
        """How many times the buffer was drained (for tests and curiosity)."""
        self._buffer = EventBuffer(max(2 * config.log_rows, BUFFER_MIN))
        self._urgent = self._buffer.limit // 2  # this many waiting events are drained at once
        self._accepting = threading.Event()  # set while the main screen can take events
        self._finished = threading.Event()  # set once the app has closed
        self._last_drain = 0.0
        self._interval = drain_interval  # spacing before the next drain (see _pace)
        self._loop_cpu = 0.0  # the loop thread's CPU time at the last drain
        self._notified = threading.Event()  # an EventsArrived is on its way or a drain is due
        self._drain_timer: Timer | None = None
        self._stopping = False
        self.main = MainScreen(config, clock, self.started)
        self.export_dir = export_folder(config.export_dir)
        """Where copied commands and HAR files are saved (never the project: see export_folder)."""

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
        waiting = self._buffer.put(events)
        if not self._accepting.is_set():
            return
        if not self._notified.is_set():
            self._notified.set()  # cleared by _drain before it takes the buffer: nothing is missed
            self.post_message(EventsArrived())
        elif waiting >= self._urgent > waiting - len(events):
            self.post_message(EventsArrived())  # crossed the half-full mark: drain without waiting

    @on(MainScreen.Ready)
    def _start_feed(self) -> None:
        if self.tune_gc:  # after the first paint, which a full collection (tens of ms) would otherwise delay
            self.call_after_refresh(settle_gc)
        self._accepting.set()
        self._drain()
        self.set_timer(PRELOAD_DELAY, self.preload_screens)

    def preload_screens(self) -> None:
        """Import the screens a selected request opens, once the dashboard is on screen.

        They are a tenth of the dashboard's imports and no part of its first
        paint; loaded now, the first Enter does not wait for them.
        """
        import tui.screens.detail
        import tui.screens.edit  # noqa: F401

    def on_unmount(self) -> None:
        self._finished.set()
        self._accepting.clear()

    def on_events_arrived(self, message: EventsArrived) -> None:
        if len(self._buffer) >= self._urgent:
            self._drain()
            return
        if self._drain_timer is not None:
            return  # a drain is already scheduled
        wait = self._last_drain + self._interval - time.monotonic()
        if wait <= 0:
            self._drain()
        else:
            self._drain_timer = self.set_timer(wait, self._drain)

    def _pace(self, now: float) -> None:
        """Choose the spacing before the next drain from what the last cycle cost the loop.

        The loop thread's CPU time since the previous drain (that drain, its
        redraw, timers, input) divided by the budget is the spacing that keeps
        the loop within ``UI_CPU_BUDGET`` of a core.  After a quiet spell the
        next events are shown at once.
        """
        cpu = time.thread_time()
        spent, self._loop_cpu = cpu - self._loop_cpu, cpu
        if self.drain_interval <= 0:
            self._interval = 0.0
        elif now - self._last_drain > 2 * MAX_DRAIN_INTERVAL:  # quiet: that CPU went to idle timers
            self._interval = self.drain_interval
        else:
            self._interval = min(MAX_DRAIN_INTERVAL, max(self.drain_interval, spent / UI_CPU_BUDGET))

    def _drain(self) -> None:
        if self._drain_timer is not None:  # an urgent drain overtook the scheduled one
            self._drain_timer.stop()
            self._drain_timer = None
        now = time.monotonic()
        self._pace(now)
        self._last_drain = now
        self._notified.clear()
        events, overflow = self._buffer.take()
        if events or overflow:
            self.drain_count += 1
            self.main.apply(events, overflow)

    # ------------------------------------------------------------- actions

    @on(CopyRequested)
    def _copy_requested(self, message: CopyRequested) -> None:
        request, kind = message.request, message.kind
        try:
            command = COMMANDS[kind](request, self.main.url, cafile=self.main.config.tls_cafile)
        except ExportError as exc:
            self.notify(f"Cannot copy {request.method} {request.target} exactly: {exc}", title="Copy",
                        severity="error", markup=False)
            return
        self.copy_to_clipboard(command)  # OSC 52: terminals that allow it put it on the clipboard
        try:
            path = write_export(self.export_dir, f"request.{kind}.sh", command + "\n")
        except OSError as exc:
            self.notify(f"Copied as {kind} (clipboard), not saved: {exc}", title="Copy", severity="warning",
                        markup=False)
            return
        self.notify(f"Copied as {kind} (clipboard), saved as\n{saved_where(path)}", title="Copy", markup=False)

    def export_har(self, requests: list[RequestEvent]) -> None:
        """Write ``requests`` as a HAR file (in a thread: bodies are read from disk)."""
        self.notify(f"Writing {len(requests)} requests as HAR …", title="HAR", timeout=2)
        self._write_har(requests, self.main.url)

    @work(thread=True, exit_on_error=False, group="export")
    def _write_har(self, requests: list[RequestEvent], url: str) -> None:
        try:
            path = write_export(self.export_dir, "requests.har", har_json(requests, url))
        except OSError as exc:
            self.call_from_thread(self.notify, f"HAR not written: {exc}", title="HAR", severity="error", markup=False)
            return
        self.call_from_thread(self.notify, f"{len(requests)} requests written as\n{saved_where(path)}", title="HAR",
                              markup=False)

    @on(ReplayRequested)
    def _replay_requested(self, message: ReplayRequested) -> None:
        request = message.request
        label = escape_controls(f"{request.method} {request.target}", multiline=False)
        self.notify(f"Replaying {label} …", title="Replay", timeout=2, markup=False)
        self._replay(request, self.main.url, message.original or request, message.body)

    @work(thread=True, exit_on_error=False, group="replay")
    def _replay(self, request: RequestEvent, url: str, original: RequestEvent, body: bytes | None) -> None:
        import http.client  # here: http.client (and the email package under it) would delay the first paint

        label = escape_controls(f"{request.method} {request.target}", multiline=False)
        # Registered before the request goes out, so the server's event for it always finds its original.
        link = partial(self.main.replays.expect, original=original)
        try:
            result = replay_request(request, url, sent=lambda client: self.call_from_thread(link, client), body=body,
                                    cafile=self.main.config.tls_cafile)
        except BodyNotExact as exc:
            self.call_from_thread(
                self.notify, f"{label} not replayed: {exc}", title="Replay", severity="error", markup=False
            )
            return
        except (OSError, http.client.HTTPException) as exc:
            self.call_from_thread(
                self.notify, f"{label} failed: {exc}", title="Replay", severity="error", markup=False
            )
            return
        severity = "error" if result.status >= 500 else "warning" if result.status >= 400 else "information"
        text = (f"{label} → {result.status} {escape_controls(result.reason, multiline=False)} in "
                f"{fmt.duration(result.duration_ms)} (open it in the log for a diff)")
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
        except Exception as exc:  # noqa: BLE001 - report any failure of the supervisor, keep the UI
            self.call_from_thread(self.notify, f"Reload failed: {exc}", severity="error", markup=False)

    @on(ProfileRequested)
    def _profile_requested(self, message: ProfileRequested) -> None:
        if self.control is None:
            self.notify("No server attached.", severity="warning")
            return
        route = None if self.main.profiling == message.route else message.route  # the same route again: disarm
        self._arm_profile(self.control, route)

    @work(thread=True, exit_on_error=False, group="control")
    def _arm_profile(self, control: Control, route: str | None) -> None:
        try:
            control.arm_profile(route)
        except Exception as exc:  # noqa: BLE001 - report any failure of the supervisor, keep the UI
            self.call_from_thread(self.notify, f"Profile not armed: {exc}", severity="error", markup=False)
            return
        text = f"The next {route} is profiled, in whichever worker serves it" if route else "No route is armed now"
        self.call_from_thread(self.main.show_profiling, route)
        self.call_from_thread(self.notify, escape_controls(text, multiline=False), title="Profile", timeout=3,
                              markup=False)

    def action_open_site(self) -> None:
        self.open_url(self.main.url)

    def open_url(self, url: str, *, new_tab: bool = True) -> None:
        """Open ``url`` in a graphical browser (also for the header's link); without one, copy it.

        Textual's own open_url uses ``webbrowser``, which may run a console
        browser in this terminal, on this thread.
        """
        self._open_in_browser(local_url(url))

    @work(thread=True, exit_on_error=False, group="browser")
    def _open_in_browser(self, url: str) -> None:
        browser = find_browser()
        if browser is None:
            self.call_from_thread(self._copy_instead, url, "No graphical browser found")
            return
        self.call_from_thread(self.notify, f"Opening {url} in {browser.name}", timeout=2, markup=False)
        try:
            process = launch(browser, url)
            code = process.wait(LAUNCH_WAIT)
        except OSError as exc:
            self.call_from_thread(self._copy_instead, url, f"{browser.name} could not start ({exc.strerror})")
        except subprocess.TimeoutExpired:
            pass  # still running after a while: a browser window, most likely
        else:
            if code != 0:
                self.call_from_thread(self._copy_instead, url, f"{browser.name} failed (exit status {code})")

    def _copy_instead(self, url: str, reason: str) -> None:
        self.copy_to_clipboard(url)  # OSC 52: most terminals put it on the system clipboard
        self.notify(f"{reason}: {url} copied to the clipboard.", severity="warning", timeout=6, markup=False)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen(self.key_bindings(), self.detail_key_bindings()))

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
        """Every key of the main screen and the app's own, for the help screen (each key once)."""
        enter = next(b for b in RequestLog.BINDINGS if isinstance(b, Binding) and b.key == "enter")
        return listed([enter, *MainScreen.BINDINGS, *self.BINDINGS])

    @staticmethod
    def detail_key_bindings() -> list[Binding]:
        """The keys of a request's detail that the main screen has not (or has for something else)."""
        from tui.screens.detail import DetailScreen

        main = {(b.key, b.action) for b in [*MainScreen.BINDINGS, *DashboardApp.BINDINGS] if isinstance(b, Binding)}
        return [b for b in listed(DetailScreen.BINDINGS) if (b.key, b.action) not in main and b.key != "escape"]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        own: list[tuple[Binding, DOMNode]] = [(b, self) for b in self.BINDINGS if isinstance(b, Binding)]
        if isinstance(screen, MainScreen):
            own += [(b, screen) for b in screen.BINDINGS if isinstance(b, Binding) and not b.action.startswith("app.")]
        for binding, target in own:
            if (binding.show or binding.tooltip) and binding.action != "quit":  # Textual already offers Quit
                title = f"{binding.description} ({self.get_key_display(binding)})"
                yield SystemCommand(title, binding.tooltip, partial(self.run_action, binding.action, target))

