"""The worker's side of the event queue: batch, never block, count drops."""

from __future__ import annotations

import queue
import time
from collections import deque
from typing import Any

from .events import DroppedEvents, Event

MAX_BATCH = 256


class EventSink:
    """Collects events and puts them on the queue in batches.

    ``emit`` may be called from any thread; ``flush`` only from the loop.
    When the queue is full the batch is dropped and counted; the count goes
    out with the next batch that fits, so the consumer can show it.
    """

    def __init__(self, target: Any, pid: int) -> None:
        self._queue = target
        self._pid = pid
        self._pending: deque[Event] = deque()
        self.dropped = 0
        self._dropped_reported = 0

    def emit(self, event: Event) -> None:
        self._pending.append(event)

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        while self._pending:
            batch: list[Event] = []
            while self._pending and len(batch) < MAX_BATCH:
                batch.append(self._pending.popleft())
            if self.dropped != self._dropped_reported:
                batch.append(DroppedEvents(time.time(), self._pid, self.dropped))
            try:
                self._queue.put_nowait(batch)
            except queue.Full:
                self.dropped += sum(1 for e in batch if not isinstance(e, DroppedEvents))
                self._pending.clear()
                return
            self._dropped_reported = self.dropped
