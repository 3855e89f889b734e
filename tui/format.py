"""Small text formatters shared by the dashboard's widgets and screens."""

from __future__ import annotations

import time


def clock_time(t: float) -> str:
    """``HH:MM:SS.mmm`` in local time, for a wall-clock timestamp."""
    millis = int(t * 1000) % 1000
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{millis:03d}"


def size(n: int) -> str:
    """A byte count the way people read it: ``512 B``, ``1.2 KB``, ``3.4 MB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def duration(ms: float) -> str:
    """A duration in milliseconds: ``0.4 ms``, ``12 ms``, ``1.25 s``."""
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def uptime(seconds: float) -> str:
    """``<1m``, ``12m``, ``3h 05m`` or ``2d 03h``: minutes at most, so the header changes rarely."""
    minutes = max(0, int(seconds)) // 60
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m" if minutes else "<1m"


def status_class(status: int) -> str:
    """``"2xx"`` … ``"5xx"`` for a status code, ``"other"`` for anything else.

    The names double as the suffix of the ``status--…`` component classes that
    ``app.tcss`` colours.
    """
    if 200 <= status < 600:
        return f"{status // 100}xx"
    return "other"
