"""Hand-off of server events from the supervisor's thread to the app.

The supervisor calls the sink from its own thread, possibly thousands of
times a second.  Events are kept in an :class:`EventBuffer` (a lock and a
bounded deque) and the thread posts one :class:`EventsArrived` message per
call; those messages coalesce (``can_replace``) so a burst costs the event
loop a single wake-up, and the app drains the buffer at a bounded rate.
No request row is lost in coalescing: the message carries no data.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from textual.message import Message

from devserver.events import Event


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

    def put(self, events: Iterable[Event]) -> None:
        """Append ``events`` (any thread)."""
        with self._lock:
            self._events.extend(events)
            excess = len(self._events) - self._limit
            for _ in range(excess):
                self._events.popleft()
            if excess > 0:
                self._overflow += excess

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
