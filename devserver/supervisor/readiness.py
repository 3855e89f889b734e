"""Which of the supervisor's pipes or worker sentinels are ready: one poll object kept while the set is the same.

``multiprocessing.connection.wait`` builds a selector, registers every
object and closes it again on each call: about 30,000 instructions (a poll
itself costs a seventh of that), paid by the event reader once per batch of
events and by it and the monitor at every look that times out.  A
:class:`Readiness` registers its objects once and polls them with one call
into ``select.poll``; it registers them again only when it is asked about
another set (a worker replaced, a pipe retired).

A thread that changes what another one waits on (new workers, a stop) calls
:meth:`Readiness.wake`: the waiting thread then looks again at once, so its
poll needs no short timeout to notice, and an idle supervisor wakes up
once a second, not five times.  Where ``select.poll`` is missing (Windows)
it asks ``wait``, which cannot be woken: it then looks every 0.2 s, as before.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Sequence
from multiprocessing.connection import wait
from typing import Generic, Protocol, TypeVar

# A closed descriptor or an ended writer must wake the poll as data does: the reader then finds the end.
_EVENTS = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR if hasattr(select, "poll") else 0
UNWOKEN_LOOK = 0.2  # seconds between looks where nothing can wake a wait


class _Waitable(Protocol):
    def fileno(self) -> int: ...


W = TypeVar("W", bound="_Waitable | int")


class Readiness(Generic[W]):
    """``ready(objects, timeout)``: those of ``objects`` (pipe ends, or sentinels as descriptors) that can be read,
    or none when :meth:`wake` was called meanwhile or ``timeout`` passed.

    One thread polls one instance (a poll object is not shared between threads that poll at once); any thread
    may wake it.  :meth:`close` once its thread is done.
    """

    def __init__(self) -> None:
        self._objects: list[W] = []
        self._by_fd: dict[int, W] = {}
        self._poll = select.poll() if hasattr(select, "poll") else None
        self._wake_read = self._wake_write = -1
        self._wake_lock = threading.Lock()  # a wake() never writes to a descriptor close() gave back
        if self._poll is not None:
            self._wake_read, self._wake_write = os.pipe()
            os.set_blocking(self._wake_write, False)  # wake() never waits: one byte waiting is enough
            self._poll.register(self._wake_read, _EVENTS)

    def ready(self, objects: Sequence[W], timeout: float) -> list[W]:
        if self._poll is None:
            return list(wait(objects, min(timeout, UNWOKEN_LOOK)))  # type: ignore[arg-type]
        if list(objects) != self._objects:  # the same objects (by identity: neither kind defines __eq__)
            self._register(list(objects))
        by_fd = self._by_fd
        ready = []
        for fd, _ in self._poll.poll(timeout * 1000):
            if fd == self._wake_read:
                os.read(fd, 4096)  # every wake-up so far is answered by this look
            else:
                ready.append(by_fd[fd])
        return ready

    def wake(self) -> None:
        """Make the current or next :meth:`ready` return at once (from any thread)."""
        with self._wake_lock:
            if self._wake_write < 0:
                return  # closed, or never woken (Windows)
            try:
                os.write(self._wake_write, b"\0")
            except BlockingIOError:
                pass  # the pipe is full: a look is due anyway

    def close(self) -> None:
        with self._wake_lock:
            for fd in (self._wake_read, self._wake_write):
                if fd >= 0:
                    os.close(fd)
            self._wake_read = self._wake_write = -1

    def _register(self, objects: list[W]) -> None:
        assert self._poll is not None
        for fd in self._by_fd:
            self._poll.unregister(fd)
        self._objects = objects
        self._by_fd = {obj if isinstance(obj, int) else obj.fileno(): obj for obj in objects}
        for fd in self._by_fd:
            self._poll.register(fd, _EVENTS)
