"""What the supervisor waits to hear from its workers: answers matched to their questions by serial number,
and the word each worker sends when a stop reaches it.

A thread asking a worker something (the dashboard's console, through
:meth:`devserver.supervisor.core.Supervisor.evaluate`) registers the serial, sends
the question, and waits with a deadline; the supervisor's event reader
hands each answer to :meth:`PendingAnswers.resolve`.  An answer that comes after its
deadline finds nobody waiting and is dropped.

:class:`PipesToHear` is the same for a word every worker sends unasked: the
supervisor's stop waits (bounded) until each worker it signalled has said
:class:`~devserver.ipc.control.StopSeen`, or ended, before it logs "stopping".
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable, Iterable

from devserver.ipc.control import Evaluated


class PendingAnswers:
    """Questions sent to workers, by serial, with the answers that came back; thread-safe."""

    def __init__(self) -> None:
        self._serials = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list[Evaluated]]] = {}
        self._lock = threading.Lock()

    def expect(self) -> int:
        """A new serial, whose answer :meth:`wait` will return."""
        with self._lock:
            serial = next(self._serials)
            self._waiting[serial] = (threading.Event(), [])
        return serial

    def resolve(self, answer: Evaluated) -> None:
        with self._lock:
            waiter = self._waiting.get(answer.serial)  # wait() takes it out, even when the answer came first
        if waiter is not None:
            waiter[1].append(answer)
            waiter[0].set()

    def forget(self, serial: int) -> None:
        with self._lock:
            self._waiting.pop(serial, None)

    def wait(self, serial: int, timeout: float) -> Evaluated | None:
        """The answer to ``serial``, or None when it did not come within ``timeout`` seconds."""
        with self._lock:
            waiter = self._waiting.get(serial)
        if waiter is None:
            return None
        waiter[0].wait(timeout)
        self.forget(serial)
        return waiter[1][0] if waiter[1] else None


class PipesToHear:
    """The event pipes expected to speak (or end) that have not yet; thread-safe."""

    def __init__(self) -> None:
        self._waiting: set[Hashable] = set()
        self._changed = threading.Condition()

    def expect(self, pipes: Iterable[Hashable]) -> None:
        with self._changed:
            self._waiting = set(pipes)

    def heard(self, pipe: Hashable) -> None:
        """``pipe`` spoke or reached its end (a pipe nobody waits for changes nothing)."""
        with self._changed:
            self._waiting.discard(pipe)
            if not self._waiting:
                self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """Whether every expected pipe was heard within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._waiting, timeout)
