"""Periodic work that sleeps when there is nothing to do.

A worker with no connection and no pending event must not wake up: an idle
server left running all day should cost nothing.  A ``Repeater`` runs its
action every ``every`` seconds only while ``busy()`` says there is more to
do; ``poke()`` (from the loop thread) starts it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Repeater:
    __slots__ = ("_loop", "_every", "_action", "_busy", "_handle")

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float, action: Callable[[], None],
                 busy: Callable[[], bool]) -> None:
        self._loop = loop
        self._every = every
        self._action = action
        self._busy = busy
        self._handle: asyncio.TimerHandle | None = None

    def poke(self) -> None:
        """Make sure the action runs within ``every`` seconds (loop thread only)."""
        if self._handle is None:
            self._handle = self._loop.call_later(self._every, self._fire)

    def poke_threadsafe(self) -> None:
        """poke() from another thread; the flag read is only a shortcut, poke() decides."""
        if self._handle is None:
            self._loop.call_soon_threadsafe(self.poke)

    def _fire(self) -> None:
        self._handle = None
        self._action()
        if self._busy():
            self.poke()
