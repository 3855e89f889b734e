"""The top line: the site's URL (a clickable link), the route armed for a profile, workers, uptime, state.

The URL is never cut: on a narrow terminal the other items go first, least
useful first (the name, the uptime, the workers), and the armed route last
but one, so that ``profiling next GET /catalog`` stays while it matters.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label, Link

from devserver.kit.safetext import escape_controls
from tui import format as fmt

UPTIME_EVERY = 30.0  # seconds between looks at the clock
NAME_CELLS = len("devserver") + 2  # with its margin
SEPARATOR = "  ·  "


class DashboardHeader(Horizontal):
    """``devserver  http://…/  profiling next GET /catalog  ·  workers 2/2  ·  up 12m  ·  listening``.

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
    profiling: reactive[str | None] = reactive(None, init=False)
    """The route armed for a profile ("GET /catalog"), until its profiled request arrives."""

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
        items = [
            # (text, the order in which it goes when the line is too narrow: lowest first)
            (f"profiling next {escape_controls(self.profiling, multiline=False)}" if self.profiling else "", 4),
            (f"workers {alive}/{self.workers_total}", 2),
            (f"up {fmt.uptime(self.uptime)}", 1),
            (self.state, 3),
        ]
        room = self.size.width - len(self.url) - 2  # the URL and its margin (size: inside the padding)
        name = self.query_one("#app-name", Label)
        name.display = room - NAME_CELLS >= sum(len(t) + 5 for t, _ in items if t) - 5
        if name.display:
            room -= NAME_CELLS
        info = fit_items([(t, p) for t, p in items if t], room)
        if info != self._shown:
            self._shown = info
            self.query_one("#header-info", Label).update(Text(info))

    def on_resize(self) -> None:
        self._show()

    watch_workers_alive = watch_state = watch_uptime = watch_profiling = _show

    def watch_url(self, url: str) -> None:
        link = self.query_one("#site-url", Link)
        link.text = link.url = url
        self._show()


def fit_items(items: list[tuple[str, int]], room: int) -> str:
    """The items joined by `` · `` in their order, dropping the lowest-ranked until the line fits ``room``."""
    kept = list(items)
    while kept and len(SEPARATOR.join(t for t, _ in kept)) > room:
        kept.remove(min(kept, key=lambda item: item[1]))
    return SEPARATOR.join(t for t, _ in kept)
