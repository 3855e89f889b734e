"""The top line: the site's URL (a clickable link), workers, uptime, state."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label, Link

from tui import format as fmt

UPTIME_EVERY = 30.0  # seconds between looks at the clock


class DashboardHeader(Horizontal):
    """``devserver  http://…/  workers 2/2  up 12m  listening``.

    ``clock`` and ``started`` are injected so that tests and snapshots can
    freeze time.
    """

    workers_alive: reactive[int | None] = reactive(None, init=False)
    """Workers running, or None before the first worker event."""
    state: reactive[str] = reactive("starting", init=False)
    """The server's lifecycle state (from ServerEvent)."""
    uptime: reactive[float] = reactive(0.0, init=False)
    url: reactive[str] = reactive("", init=False)
    """The site's address, shown as a link."""

    def __init__(self, url: str, workers: int, clock: Callable[[], float], started: float) -> None:
        super().__init__()
        self.set_reactive(DashboardHeader.url, url)
        self.workers_total = workers
        self.clock = clock
        self.started = started
        self._shown = ""

    def compose(self) -> ComposeResult:
        yield Label("devserver", id="app-name")
        link = Link(self.url, url=self.url, tooltip="Open in browser (o)", id="site-url")
        link.can_focus = False  # `o` opens it from the keyboard
        yield link
        yield Label(id="header-info")

    def on_mount(self) -> None:
        self.tick()
        self._show()
        # Redrawing the header costs more than anything else on an idle dashboard: look twice a
        # minute, and redraw only when the text changes (uptime is shown in minutes).
        self.set_interval(UPTIME_EVERY, self.tick)

    def tick(self) -> None:
        """Recompute the uptime from the clock."""
        self.uptime = self.clock() - self.started

    def _show(self) -> None:
        alive = "?" if self.workers_alive is None else str(self.workers_alive)
        info = f"workers {alive}/{self.workers_total}  ·  up {fmt.uptime(self.uptime)}  ·  {self.state}"
        if info != self._shown:
            self._shown = info
            self.query_one("#header-info", Label).update(Text(info))

    watch_workers_alive = watch_state = watch_uptime = _show

    def watch_url(self, url: str) -> None:
        link = self.query_one("#site-url", Link)
        link.text = link.url = url
