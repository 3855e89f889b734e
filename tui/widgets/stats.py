"""Traffic statistics: requests per second, status classes, latency, drops.

:class:`RequestStats` is the bounded model (plain Python, tested directly);
:class:`StatsPanel` shows it.  Memory does not grow with traffic: per-second
counts cover the last ``HISTORY_SECONDS``, latencies the last
``LATENCY_WINDOW`` requests.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from devserver.ipc.events import RequestEvent
from tui import format as fmt

HISTORY_SECONDS = 60
LATENCY_WINDOW = 10_000
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


def fit(items: Sequence[Text], width: int, gap: str = " ") -> Text:
    """``items`` on as few lines as ``width`` allows, each item whole (a value is never cut from its label)."""
    out = Text()
    used = 0
    for item in items:
        length = item.cell_len
        if used and used + len(gap) + length > width:
            out.append("\n")
            used = 0
        elif used:
            out.append(gap)
            used += len(gap)
        out.append_text(item)
        used += length
    return out


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile ``p`` (0–100) of an ascending sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


class RequestStats:
    """Counters over the request stream, bounded in memory."""

    def __init__(self, history: int = HISTORY_SECONDS, window: int = LATENCY_WINDOW) -> None:
        self.history = history
        self.total = 0
        self.by_class: Counter[str] = Counter()
        self.dropped = 0
        self._per_second: dict[int, int] = {}
        self._latencies: deque[float] = deque(maxlen=window)

    def add(self, requests: Sequence[RequestEvent], now: float) -> None:
        """Count ``requests``; ``now`` (wall clock) decides which seconds are still kept."""
        horizon = int(now) - self.history
        self.total += len(requests)
        self._latencies.extend([request.duration_ms for request in requests])
        # Thousands of rows a drain under load: count by status and by second first, then by class.
        for status, count in Counter([request.status for request in requests]).items():
            self.by_class[fmt.status_class(status)] += count
        per_second = self._per_second
        for second, count in Counter([int(request.time) for request in requests]).items():
            if second > horizon:
                per_second[second] = per_second.get(second, 0) + count
        self._prune(horizon)

    def add_dropped(self, count: int) -> None:
        """Events lost before reaching the dashboard."""
        self.dropped += count

    def _prune(self, horizon: int) -> None:
        for second in [s for s in self._per_second if s <= horizon]:
            del self._per_second[second]

    def rate_history(self, now: float) -> list[float]:
        """Requests in each of the last ``history`` whole seconds, oldest first."""
        last = int(now)
        self._prune(last - self.history)
        return [float(self._per_second.get(s, 0)) for s in range(last - self.history + 1, last + 1)]

    def latency_percentiles(self) -> tuple[float, float, float]:
        """p50, p95 and p99 of the latency window, in milliseconds."""
        ordered = sorted(self._latencies)
        return percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99)

    @property
    def latency_samples(self) -> int:
        """How many durations the percentiles are computed over."""
        return len(self._latencies)


class StatsPanel(Vertical):
    """Sparkline of requests per second, then counts, latency and drops."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"status--{c}" for c in (*STATUS_CLASSES, "other")} | {
        "stats--label",
        "stats--warning",
    }

    def __init__(self, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.stats = RequestStats()
        self._lines: dict[str, Text] = {}  # what each line shows
        self._fitted: dict[str, bool] = {}  # whether it fits on one line (its height is then 1)

    def compose(self) -> ComposeResult:
        yield Sparkline([], id="rps")
        yield Static(id="rate")
        yield Static(id="status-counts")
        yield Static(id="latency")
        yield Static(id="dropped")

    _shown: tuple[object, ...] = ()

    def on_mount(self) -> None:
        self.border_title = "Traffic"
        self.set_interval(1.0, self.refresh_view)
        self.refresh_view()

    def on_resize(self) -> None:
        self._fitted.clear()  # the next update of each line lays it out at the new width
        self._shown = ()  # lines are fitted to the width: fit them again
        self.refresh_view()

    def add_requests(self, requests: Sequence[RequestEvent]) -> None:
        """Count new requests (call :meth:`refresh_view` afterwards)."""
        self.stats.add(requests, self.clock())

    def add_dropped(self, count: int) -> None:
        """Count events lost on the way (call :meth:`refresh_view` afterwards)."""
        self.stats.add_dropped(count)

    def refresh_view(self) -> None:
        """Redraw every line from the model, unless nothing it shows has changed (an idle server)."""
        stats = self.stats
        history = stats.rate_history(self.clock())
        shown = (tuple(history), stats.total, stats.dropped, tuple(stats.by_class.values()))
        if shown == self._shown:
            return
        self._shown = shown
        self.query_one("#rps", Sparkline).data = history
        label = self.get_component_rich_style("stats--label", partial=True)
        width = self.content_region.width or 1_000  # before the first layout: one line each
        self._show("#rate", fit([
            Text.assemble(("req/s ", label), f"{history[-1]:.0f} now,"), Text(f"{max(history):.0f} peak,"),
            Text.assemble(("total ", label), str(stats.total)),
        ], width))
        counts = [Text.assemble((f"{name} ", self.get_component_rich_style(f"status--{name}", partial=True)),
                                str(stats.by_class[name])) for name in STATUS_CLASSES]
        self._show("#status-counts", fit(counts, width, gap="  "))
        p50, p95, p99 = stats.latency_percentiles()
        self._show("#latency", fit([
            Text.assemble((f"{name} ", label), fmt.duration(value))
            for name, value in (("p50", p50), ("p95", p95), ("p99", p99))
        ], width))
        dropped_style = self.get_component_rich_style("stats--warning", partial=True) if stats.dropped else None
        self._show("#dropped", Text.assemble(("dropped events ", label), (str(stats.dropped), dropped_style or "")))

    def _show(self, selector: str, text: Text) -> None:
        """Put ``text`` on a line of the panel; only a change of its height lays the screen out again.

        Under load the panel changes with every drain, and a layout pass
        (``Static.update``'s default) re-renders the whole screen: a line
        that fitted and still fits is only repainted.
        """
        line = self.query_one(selector, Static)
        if self._lines.get(selector) == text:
            return
        width = line.content_size.width
        fits = 0 < text.cell_len <= width and "\n" not in text.plain
        line.update(text, layout=not (fits and self._fitted.get(selector, False)))
        self._lines[selector], self._fitted[selector] = text, fits
