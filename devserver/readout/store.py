"""The supervisor's memory of the requests it delivered: the last ones and, kept longer, the last failures.

Bounded in count (the events are frozen and already in memory; their bodies
stay in the workers' spool files, referenced by BodyRecord, never copied).
Fed from the supervisor's event thread, read from the channel's: one lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from devserver.ipc.events import Event, RequestEvent
from devserver.kit.frozen import record

RECENT = 1000  # requests kept, whatever they were
ERRORS = 100  # failed requests kept besides, so a failure outlives a burst of successes


def failed(event: RequestEvent) -> bool:
    """A failure as ``--errors`` lists it: a 5xx, or an app's exception whatever the status."""
    return event.status >= 500 or event.traceback is not None or event.error_report is not None


@record
class Kept:
    """A request in the store, under the id a client asks for it by."""

    id: str  # the request's own id (its log lines carry it), else one the store gave it
    event: RequestEvent


@record
class Filters:
    """Which requests a list wants: the last ``last`` of them, only failures, only a route."""

    last: int = 20
    errors: bool = False
    method: str = ""  # "" any
    path: str = ""  # a path prefix ("" any): "/api" takes /api and /api/users, not /apiary

    def wants(self, event: RequestEvent) -> bool:
        if self.errors and not failed(event):
            return False
        if self.method and event.method.upper() != self.method.upper():
            return False
        return not self.path or _under(event.target.split("?", 1)[0], self.path)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/")


class RequestStore:
    """The last ``recent`` requests and the last ``errors`` failures, oldest first.

    :meth:`add` runs for every request the server answers: the recent ones are kept as they came, their
    numbers told by their place (every request is recent first, so theirs follow each other), the failures
    with their number; :class:`Kept` is made only when a client reads (a frozen dataclass per request cost
    add() a third of its time, a tuple per request a third of what was left).
    """

    def __init__(self, recent: int = RECENT, errors: int = ERRORS) -> None:
        self._recent: deque[RequestEvent] = deque(maxlen=recent)  # the last of them is number ``seen``
        self._errors: deque[tuple[int, RequestEvent]] = deque(maxlen=errors)
        self._lock = threading.Lock()
        self.seen = 0  # requests ever added; a request's number is what this was when it was added

    def add(self, batch: Iterable[Event]) -> None:
        """Keep the batch's requests (other events pass by)."""
        with self._lock:
            recent, errors, seen = self._recent, self._errors, self.seen
            for event in batch:
                if isinstance(event, RequestEvent):
                    seen += 1
                    recent.append(event)
                    if failed(event):
                        errors.append((seen, event))
            self.seen = seen

    def _all(self) -> list[Kept]:
        """Both deques merged in arrival order, each request once (a recent failure is in both)."""
        with self._lock:
            recent = list(self._recent)
            errors = list(self._errors)
            first = self.seen - len(recent) + 1  # the number of the oldest recent request
        older = [entry for entry in errors if entry[0] < first]  # failures older than every recent one
        return [Kept(event.request_id or f"r{number}", event)
                for number, event in older + list(enumerate(recent, start=first))]

    def select(self, filters: Filters) -> list[Kept]:
        """The last ``filters.last`` wanted requests, oldest first."""
        wanted = [kept for kept in self._all() if filters.wants(kept.event)]
        return wanted[-filters.last:] if filters.last > 0 else []

    def get(self, request_id: str) -> Kept | None:
        for kept in reversed(self._all()):
            if kept.id == request_id:
                return kept
        return None

    def counts(self) -> tuple[int, int]:
        """(requests kept, failures kept)."""
        with self._lock:
            return len(self._recent), len(self._errors)
