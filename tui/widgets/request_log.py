"""The request log: a virtual, bounded, filterable table that follows its tail.

It is a Line-API widget (like Textual's own ``Log``) rather than a
``DataTable``: rows live in a ``deque`` bounded to ``max_rows``, so adding a
row and dropping the oldest are O(1) however long the log is, and only the
visible lines are ever rendered.  (``DataTable.remove_row`` is O(rows), which
at the default 10 000 rows would make a busy server freeze the dashboard.)

Order: rows are sorted by the time they show (when the request finished).
Each worker sends its events in batches on its own clock, so a batch from
one worker can arrive after rows of another that finished later; it is put
in place (:func:`insert_in_time_order`, looking back at most
``REORDER_WINDOW`` rows, so the cost stays bounded) instead of appended out
of order.

Following: while the cursor sits on the last row, new rows move it along and
the view scrolls with them.  Moving the cursor up, clicking an older row or
scrolling up with the wheel stops following; ``End`` (or moving back to the
last row) resumes it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice
from typing import ClassVar, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from devserver.ipc.events import RequestEvent
from tui import format as fmt
from tui.recorded.filter import RequestFilter


class Column(NamedTuple):
    """One column of the log; ``drop`` orders which go first on a narrow screen (0 = never)."""

    label: str
    width: int
    text: Callable[[RequestEvent], str]
    right: bool = False
    drop: int = 0
    style: str = ""  # component class, if any, for the whole column


TARGET_MIN_WIDTH = 16
PROFILED_MARK = "» "  # before the target of a request that was profiled (its detail has the call tree)


def is_profiled(request: RequestEvent) -> bool:
    """Whether the request carries a profile (it was the next to an armed route)."""
    return request.inside is not None and request.inside.profile is not None

REORDER_WINDOW = 4096  # rows a late batch may go back past (a few workers' batches of 256, with room)

COLUMNS: tuple[Column, ...] = (
    Column("TIME", 12, lambda e: fmt.clock_time(e.time), drop=3, style="request-log--dim"),
    Column("METHOD", 7, lambda e: e.shown_request()[0]),
    # Width 0: takes what is left.  A refused request shows its raw first line here, quoted (events.py).
    Column("TARGET", 0, lambda e: PROFILED_MARK * is_profiled(e) + e.shown_request()[1]),
    Column("ST", 3, lambda e: str(e.status), right=True),
    Column("DURATION", 8, lambda e: fmt.duration(e.duration_ms), right=True, drop=4),
    Column("SIZE", 8, lambda e: fmt.size(e.bytes_sent), right=True, drop=2),
    Column("PID", 7, lambda e: str(e.worker_pid), right=True, drop=1, style="request-log--dim"),
)


def _finished(request: RequestEvent) -> float:
    return request.time


def insert_in_time_order(rows: deque[RequestEvent], batch: Sequence[RequestEvent], window: int) -> int:
    """Add ``batch`` (in time order) to ``rows`` (in time order) so that ``rows`` stays in time order.

    Only the last ``window`` rows are looked at: a row older than all of them
    goes right before them (out of order, but the cost is bounded).  Rows of
    equal time keep their arrival order.  Returns the index of the first row
    that is new or moved (``len(rows)`` before the call when the batch was
    simply appended).
    """
    if not batch:
        return len(rows)
    if not rows or rows[-1].time <= batch[0].time:
        start = len(rows)
        rows.extend(batch)
        return start
    # How many of the last rows finished after the batch's first: those are taken off and merged with it.
    tail = list(islice(reversed(rows), min(window, len(rows))))
    tail.reverse()
    keep = bisect_right(tail, batch[0].time, key=_finished)
    for _ in range(len(tail) - keep):
        rows.pop()
    start = len(rows)
    rows.extend(sorted([*tail[keep:], *batch], key=_finished))  # stable: earlier arrivals first on equal times
    return start


def layout_columns(width: int) -> list[tuple[Column, int]]:
    """The columns that fit in ``width`` cells and their widths (target gets the rest)."""
    columns = list(COLUMNS)
    droppable = sorted((c for c in columns if c.drop), key=lambda c: c.drop)
    while True:
        fixed = sum(c.width for c in columns) + len(columns) - 1
        if width - fixed >= TARGET_MIN_WIDTH or not droppable:
            break
        columns.remove(droppable.pop(0))
    target = max(1, width - fixed)
    return [(c, c.width or target) for c in columns]


def fit(text: str, width: int, right: bool = False) -> str:
    """Pad or cut ``text`` to exactly ``width`` cells, with an ellipsis when cut."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
    return set_cell_size(text, width) if not right else " " * (width - cell_len(text)) + text


class RequestLog(ScrollView, can_focus=True):
    """Answered requests, newest last; Enter opens a row's details."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "request-log--header",
        "request-log--cursor",
        "request-log--dim",
        "status--2xx",
        "status--3xx",
        "status--4xx",
        "status--5xx",
        "status--other",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "View", tooltip="View the details of the selected request"),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_cursor(-1)", "Page up", show=False),
        Binding("pagedown", "page_cursor(1)", "Page down", show=False),
        Binding("home", "first", "First row", show=False),
        Binding("end", "last", "Follow", show=False),
    ]

    cursor: reactive[int] = reactive(-1, repaint=True)
    """Index in the (filtered) view of the highlighted row; -1 when the view is empty."""
    follow: reactive[bool] = reactive(True)
    """Whether new rows move the cursor and the view along."""
    paused: reactive[bool] = reactive(False)
    """While paused, new rows are held back and only counted."""
    filter: reactive[RequestFilter] = reactive(RequestFilter, init=False)
    """Which rows are shown."""
    held_count: reactive[int] = reactive(0)
    """Rows that arrived while paused."""

    class Selected(Message):
        """The user asked for a request's details."""

        def __init__(self, request: RequestEvent) -> None:
            super().__init__()
            self.request = request

    def __init__(self, max_rows: int, *, id: str | None = None, classes: str | None = None,
                 reorder_window: int = REORDER_WINDOW) -> None:
        super().__init__(id=id, classes=classes)
        self.max_rows = max(1, max_rows)
        self.reorder_window = reorder_window
        self._store: deque[RequestEvent] = deque()
        self._view: deque[RequestEvent] = self._store  # a separate deque only while filtered
        self._held: deque[RequestEvent] = deque(maxlen=self.max_rows)
        self._columns: list[tuple[Column, int]] = []
        self._columns_width = -1

    # ----------------------------------------------------------------- data

    @property
    def row_count(self) -> int:
        """Rows currently shown (after the filter)."""
        return len(self._view)

    @property
    def total_count(self) -> int:
        """Rows kept, shown or not."""
        return len(self._store)

    @property
    def rows(self) -> list[RequestEvent]:
        """A copy of the shown rows, oldest first."""
        return list(self._view)

    @property
    def selected(self) -> RequestEvent | None:
        """The highlighted request, if any."""
        return self._view[self.cursor] if 0 <= self.cursor < len(self._view) else None

    def add(self, requests: Sequence[RequestEvent]) -> None:
        """Append requests (or hold them while paused), dropping the oldest beyond ``max_rows``."""
        if not requests:
            return
        if self.paused:
            self._held.extend(requests)
            self.held_count += len(requests)
            return
        self._append(requests)

    def clear(self) -> None:
        """Forget every row, held ones included."""
        self._store.clear()
        self._view = self._store if self.filter.is_empty else deque()
        self._held.clear()
        self.held_count = 0
        self.follow = True
        self._sync(dropped=0)

    def _append(self, requests: Sequence[RequestEvent]) -> None:
        store, view, flt = self._store, self._view, self.filter
        filtered = view is not store
        batch = sorted(requests[-self.max_rows :], key=_finished)  # anything earlier would be dropped at once
        keep = self.selected
        changed = insert_in_time_order(store, batch, self.reorder_window)
        if filtered:
            changed = insert_in_time_order(view, [r for r in batch if flt.matches(r)], self.reorder_window)
        dropped = 0  # rows that left the front of the view
        for _ in range(len(store) - self.max_rows):
            oldest = store.popleft()
            if not filtered:
                dropped += 1
            elif view and view[0] is oldest:
                view.popleft()
                dropped += 1
        self._sync(dropped, keep, changed - dropped)

    def _sync(self, dropped: int, keep: RequestEvent | None = None, changed: int | None = None) -> None:
        """Bring size, cursor and scroll position up to date after the rows changed.

        ``keep`` is the request that was under the cursor, ``changed`` the
        first index (after ``dropped`` rows left the front) where rows were
        inserted: a row put in place above the cursor moves the cursor and
        the view with the request it was on.
        """
        self.virtual_size = Size(0, len(self._view) + 1)  # +1: the header line
        if self.follow or not self._view:
            self.cursor = len(self._view) - 1
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            self._update_titles()
            self.refresh()
            return
        shift = dropped
        if keep is not None and changed is not None and changed <= self.cursor - dropped:
            # Rows went in above the cursor (a late batch): find its request again, among the moved rows.
            old = self.cursor - dropped
            new = next((i for i in range(max(0, changed), len(self._view)) if self._view[i] is keep), old)
            shift = dropped - (new - old)
        if shift:
            # Keep the same requests under the cursor and on screen.
            self.cursor = max(0, self.cursor - shift)
            self.scroll_to(y=max(0, self.scroll_offset.y - shift), animate=False, immediate=True)
        self._update_titles()
        self.refresh()

    # ------------------------------------------------------------ watchers

    def validate_cursor(self, cursor: int) -> int:
        return max(-1 if not self._view else 0, min(cursor, len(self._view) - 1))

    def watch_paused(self, paused: bool) -> None:
        if not paused and self._held:
            held = list(self._held)
            self._held.clear()
            self._append(held)
        if not paused:
            self.held_count = 0
        self._update_titles()

    def watch_filter(self, old: RequestFilter, new: RequestFilter) -> None:
        keep = self.selected
        self._view = self._store if new.is_empty else deque(r for r in self._store if new.matches(r))
        index = next((i for i, r in enumerate(self._view) if r is keep), -1) if keep else -1
        if not self.follow and index >= 0:
            self.cursor = index
            self.virtual_size = Size(0, len(self._view) + 1)
            self._scroll_to_cursor()
            self._update_titles()
            self.refresh()
        else:
            self.follow = True
            self._sync(dropped=0)

    def watch_follow(self) -> None:
        self._update_titles()

    def watch_held_count(self) -> None:
        self._update_titles()

    def _update_titles(self) -> None:
        shown, kept = len(self._view), len(self._store)
        title = f"Requests {shown}" if self.filter.is_empty else f"Requests {shown}/{kept} · filter: {self.filter}"
        self.border_title = title
        if self.paused:
            self.border_subtitle = f"PAUSED · {self.held_count} new · p resumes"
        elif not self.follow:
            self.border_subtitle = "not following · End follows"
        else:
            self.border_subtitle = "following"

    # ------------------------------------------------------------- actions

    def _move(self, row: int) -> None:
        self.cursor = row
        self.follow = self.cursor >= len(self._view) - 1
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_page_cursor(self, direction: int) -> None:
        self._move(self.cursor + direction * max(1, self.scrollable_content_region.height - 2))

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self._view) - 1)

    def action_select(self) -> None:
        if (request := self.selected) is not None:
            self.post_message(self.Selected(request))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        row = self.scroll_offset.y + offset.y - 1
        if not 0 <= row < len(self._view):
            return
        again = row == self.cursor
        self._move(row)
        if again or event.chain >= 2:
            self.action_select()

    def on_resize(self) -> None:
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        else:
            self._scroll_to_cursor()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.call_after_refresh(self._follow_if_at_end)

    def _follow_if_at_end(self) -> None:
        if self.scroll_offset.y >= self.max_scroll_y:
            self._move(len(self._view) - 1)

    # ------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if width != self._columns_width:
            self._columns, self._columns_width = layout_columns(width), width
        columns = self._columns
        if y == 0:
            header = base + self.get_component_rich_style("request-log--header", partial=True)
            text = " ".join(fit(c.label, w, c.right) for c, w in columns)
            return Strip([Segment(text, header)]).crop_extend(0, width, header)
        index = self.scroll_offset.y + y - 1
        if not 0 <= index < len(self._view):
            return Strip.blank(width, base)
        request = self._view[index]
        return self._render_row(request, index, columns, width, base)

    def _render_row(self, request: RequestEvent, index: int, columns: list[tuple[Column, int]], width: int,
                    base: Style) -> Strip:
        row_style = base
        if index == self.cursor:
            row_style += self.get_component_rich_style("request-log--cursor", partial=True)
        segments: list[Segment] = []
        for i, (column, col_width) in enumerate(columns):
            if i:
                segments.append(Segment(" ", row_style))
            style = row_style + self._column_style(column, request)
            segments.append(Segment(fit(column.text(request), col_width, column.right), style))
        strip = Strip(segments)
        return strip if strip.cell_length == width else strip.crop_extend(0, width, row_style)  # exact but when tiny

    def _column_style(self, column: Column, request: RequestEvent) -> Style:
        if column.label == "ST":
            return self.status_style(request.status)
        if column.style:
            return self.get_component_rich_style(column.style, partial=True)
        return Style()

    def status_style(self, status: int) -> Style:
        """The colour ``app.tcss`` gives this status's class."""
        return self.get_component_rich_style(f"status--{fmt.status_class(status)}", partial=True)
