"""Which of the supervisor's pipes or worker sentinels are ready: one poll object kept while the set is the same.

``multiprocessing.connection.wait`` builds a selector, registers every
object and closes it again on each call: about 30,000 instructions, paid by
the event reader once per batch of events (and by the monitor every time its
wait times out), more than the decoding of fifty events costs.  A
:class:`Readiness` registers its objects once and polls them with one call
into ``select.poll``; it registers them again only when it is asked about
another set (a worker replaced, a pipe retired).  Where ``select.poll`` is
missing (Windows) it asks ``wait``, which then costs what it always did.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from multiprocessing.connection import wait
from typing import Generic, Protocol, TypeVar

# A closed descriptor or an ended writer must wake the poll as data does: the reader then finds the end.
_EVENTS = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR if hasattr(select, "poll") else 0


class _Waitable(Protocol):
    def fileno(self) -> int: ...


W = TypeVar("W", bound="_Waitable | int")


class Readiness(Generic[W]):
    """``ready(objects, timeout)``: those of ``objects`` (pipe ends, or sentinels as descriptors) that can be read.

    One thread uses one instance: a poll object is not to be shared between threads that poll at once.
    """

    def __init__(self) -> None:
        self._objects: list[W] = []
        self._by_fd: dict[int, W] = {}
        self._poll = select.poll() if hasattr(select, "poll") else None

    def ready(self, objects: Sequence[W], timeout: float) -> list[W]:
        if self._poll is None:
            return list(wait(objects, timeout))  # type: ignore[arg-type]
        if list(objects) != self._objects:  # the same objects (by identity: neither kind defines __eq__)
            self._register(list(objects))
        return [self._by_fd[fd] for fd, _ in self._poll.poll(timeout * 1000)]

    def _register(self, objects: list[W]) -> None:
        assert self._poll is not None
        for fd in self._by_fd:
            self._poll.unregister(fd)
        self._objects = objects
        self._by_fd = {obj if isinstance(obj, int) else obj.fileno(): obj for obj in objects}
        for fd in self._by_fd:
            self._poll.register(fd, _EVENTS)
