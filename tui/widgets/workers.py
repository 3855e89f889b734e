"""Worker processes: state, requests served, restarts, memory.

:class:`WorkerBoard` folds :class:`WorkerEvent` and :class:`WorkerStatus`
into one row per worker slot (``WorkerEvent.index``), so a restarted worker
replaces its predecessor instead of adding a row; :class:`WorkersPanel`
shows the board.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual.widgets import DataTable

from devserver.ipc.events import RequestEvent, WorkerEvent, WorkerStatus
from tui import format as fmt

ALIVE_STATES = frozenset({"started", "restarted", "running"})


@dataclass(slots=True)
class WorkerInfo:
    """What the dashboard knows about one worker slot (mutated on the UI thread only)."""

    index: int
    pid: int
    state: str = "started"
    restarts: int = 0
    requests: int = 0  # last WorkerStatus report
    seen: int = 0  # requests the dashboard saw from this pid
    connections: int = 0
    rss_bytes: int = 0
    exitcode: int | None = None

    @property
    def served(self) -> int:
        """Requests served by the current process (the larger of report and count)."""
        return max(self.requests, self.seen)


class WorkerBoard:
    """One :class:`WorkerInfo` per slot, at most one row per slot.

    Slots are ``WorkerEvent.index``; a worker known only from a status report
    gets a placeholder slot ``-pid`` until its lifecycle event names the slot.
    """

    def __init__(self) -> None:
        self.slots: dict[int, WorkerInfo] = {}
        self._by_pid: dict[int, WorkerInfo] = {}

    def apply(self, events: Iterable[WorkerEvent | WorkerStatus]) -> None:
        """Fold worker lifecycle events and status reports in, in order."""
        for event in events:
            if isinstance(event, WorkerEvent):
                self._lifecycle(event)
            else:
                self._status(event)

    def count_requests(self, requests: Iterable[RequestEvent]) -> None:
        """Credit answered requests to the workers that served them."""
        for request in requests:
            if (info := self._by_pid.get(request.worker_pid)) is not None:
                info.seen += 1

    def slot_of(self, pid: int) -> int | None:
        """The slot number the panel shows for ``pid`` (None if unknown)."""
        info = self._by_pid.get(pid)
        return info.index if info is not None and info.index >= 0 else None

    @property
    def alive(self) -> int:
        """Workers currently running."""
        return sum(1 for info in self.slots.values() if info.state in ALIVE_STATES)

    def _lifecycle(self, event: WorkerEvent) -> None:
        placeholder = self._by_pid.get(event.pid)
        if placeholder is not None and placeholder.index < 0:  # reported on before it was announced
            del self.slots[placeholder.index]
        info = self.slots.get(event.index)
        if info is None:
            info = placeholder or WorkerInfo(index=event.index, pid=event.pid)
            info.index = event.index
            self.slots[event.index] = info
        elif info.pid != event.pid:  # a new process in this slot
            self._by_pid.pop(info.pid, None)
            info.restarts += 1
            info.pid, info.requests, info.seen, info.connections, info.rss_bytes = event.pid, 0, 0, 0, 0
            if placeholder is not None:
                info.requests, info.seen = placeholder.requests, placeholder.seen
                info.connections, info.rss_bytes = placeholder.connections, placeholder.rss_bytes
        info.state = "running" if event.state in ("started", "restarted") else event.state
        info.exitcode = event.exitcode
        self._by_pid[event.pid] = info

    def _status(self, status: WorkerStatus) -> None:
        info = self._by_pid.get(status.pid)
        if info is None:  # a report before its "started" event: a placeholder row keyed -pid
            info = self.slots[-status.pid] = WorkerInfo(index=-status.pid, pid=status.pid, state="running")
            self._by_pid[status.pid] = info
        info.requests, info.connections, info.rss_bytes = status.requests, status.connections, status.rss_bytes


class WorkersPanel(DataTable[str]):
    """The board as a small read-only table."""

    COLUMNS = ("#", "PID", "STATE", "REQS", "CONN", "RST", "MEM")
    # Columns dropped, in turn, when the panel is too narrow for them: it never scrolls sideways.
    LAYOUTS = (COLUMNS, ("#", "PID", "STATE", "REQS", "RST", "MEM"), ("#", "PID", "STATE", "REQS", "MEM"),
               ("#", "PID", "STATE", "REQS"), ("#", "PID", "STATE"))

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="none", zebra_stripes=False, show_cursor=False)
        self.can_focus = False
        self.board = WorkerBoard()
        self.shown_columns: tuple[str, ...] = self.COLUMNS

    def on_mount(self) -> None:
        self.border_title = "Workers"
        self.add_columns(*self.shown_columns)

    def on_resize(self) -> None:
        self.show()

    def _fit(self, rows: list[dict[str, str]]) -> tuple[str, ...]:
        """The widest layout whose cells (with their padding) fit the panel's width."""
        pad = 2 * self.cell_padding
        for columns in self.LAYOUTS:
            need = sum(max([len(c), *(len(r[c]) for r in rows)]) + pad for c in columns)
            if need <= self.size.width:
                return columns
        return self.LAYOUTS[-1]

    def show(self) -> None:
        """Redraw the rows from the board."""
        rows = []
        for index in sorted(self.board.slots, key=lambda i: (i < 0, abs(i))):
            info = self.board.slots[index]
            state = info.state if info.exitcode is None else f"{info.state} ({info.exitcode})"
            rows.append({
                "key": str(index),
                "#": str(index) if index >= 0 else "?",
                "PID": str(info.pid),
                "STATE": state,
                "REQS": str(info.served),
                "CONN": str(info.connections),
                "RST": str(info.restarts),
                "MEM": fmt.size(info.rss_bytes) if info.rss_bytes else "-",
            })
        columns = self._fit(rows)
        if columns != self.shown_columns:
            self.shown_columns = columns
            self.clear(columns=True)
            self.add_columns(*columns)
        self.clear()
        for cells in rows:
            self.add_row(*(cells[c] for c in columns), key=cells["key"])
