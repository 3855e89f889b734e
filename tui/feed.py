"""Hand-off of server events from the supervisor's thread to the app.

The supervisor calls the sink from its own thread, possibly thousands of
times a second.  Events are kept in an :class:`EventBuffer` (a lock and a
bounded deque) and the thread posts an :class:`EventsArrived` message when
none is pending; those messages coalesce (``can_replace``) so a burst costs
the event loop a single wake-up, and the app drains the buffer at a bounded
rate.  No request row is lost in coalescing: the message carries no data.
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from collections.abc import Iterable

from textual.message import Message

from devserver.ipc.events import Event

FULL_GC_THRESHOLD = 100  # collections of the middle generation per full one (Python's default: 10)


def settle_gc() -> None:
    """Keep the garbage collector cheap in a process that holds thousands of events.

    The dashboard keeps up to ``log_rows`` events and replaces them at the
    server's pace, so each lives long enough to reach the oldest generation,
    and full collections, about one a second under load, each walked every
    object in the process, the ~80 000 of Textual and the app included: at
    13 000 requests a second that was 1.3 s of CPU in 10 s, taken from the
    workers (bench/dashboard_overhead.py).  Called once the app is up: what
    exists then lives as long as the process, so it is frozen out of all
    future collections, and full collections run ten times less often.  The
    young generations are unchanged, so short-lived cycles go as before.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_THRESHOLD)


class EventsArrived(Message):
    """New events are waiting in the buffer (carries no data, so it coalesces)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsArrived)


class EventBuffer:
    """A thread-safe FIFO of events, bounded to ``limit``.

    If the app falls so far behind that more than ``limit`` events wait, the
    oldest are discarded and counted, and the dashboard reports them with the
    workers' own dropped-event counts.
    """

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._events: deque[Event] = deque()
        self._limit = max(1, limit)
        self._overflow = 0

    @property
    def limit(self) -> int:
        """How many events may wait before the oldest are discarded."""
        return self._limit

    def put(self, events: Iterable[Event]) -> int:
        """Append ``events`` (any thread); return how many events wait now."""
        with self._lock:
            self._events.extend(events)
            excess = len(self._events) - self._limit
            for _ in range(excess):
                self._events.popleft()
            if excess > 0:
                self._overflow += excess
            return len(self._events)

    def take(self) -> tuple[list[Event], int]:
        """Remove and return every waiting event, and the overflow count since the last take."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            overflow, self._overflow = self._overflow, 0
        return events, overflow

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)
