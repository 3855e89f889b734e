"""A table of values worked out once per key, for the names and values clients send on every request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class MemoTable(dict[K, V]):
    """``table[key]``: ``compute(key)`` the first time, then the kept value (a plain dict look-up).

    Keys come from clients, so at most ``limit`` are kept; past it a value is
    computed each time.  A ``compute`` that raises keeps nothing.
    """

    __slots__ = ("_compute", "_limit")

    def __init__(self, compute: Callable[[K], V], limit: int) -> None:
        super().__init__()
        self._compute = compute
        self._limit = limit

    def __missing__(self, key: K) -> V:
        value = self._compute(key)
        if len(self) < self._limit:
            self[key] = value
        return value
