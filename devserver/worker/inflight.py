"""What each worker is serving, kept in shared memory so that its death can name the requests.

A worker killed by SIGKILL, the OOM killer or a crash in a C extension cannot
say what it was doing.  So each worker writes the request line of every
request it starts into a small table the supervisor shares with it (4 KB,
anonymous shared memory), and clears the entry when the response is done;
when the worker dies, the supervisor reads what is left.

Cost per request: a free-list pop, a struct.pack_into and a slice copy of at
most 246 bytes at the start, a dict pop and a 2-byte write at the end.  Only
requests that wait for something (apps, large files) are recorded: the
small static files a worker answers synchronously are done before anything
could notice.

Layout: a header (u32: requests in flight without a slot), then ``SLOTS``
slots of ``SLOT_BYTES``: u16 text length (0: free), f64 start time (epoch
seconds), then the UTF-8 text ``METHOD target``.
"""

from __future__ import annotations

import ctypes
import struct
import time
from typing import TYPE_CHECKING

from devserver.kit.frozen import record

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from devserver.ipc.channels import InflightMemory

SLOTS = 16
SLOT_BYTES = 256
_HEADER = struct.Struct("<I")
_SLOT = struct.Struct("<Hd")
TEXT_BYTES = SLOT_BYTES - _SLOT.size
SIZE = _HEADER.size + SLOTS * SLOT_BYTES


def new_table(ctx: BaseContext) -> InflightMemory:
    """Shared memory for one worker's table (pass it to the worker process when spawning it)."""
    return ctx.RawArray(ctypes.c_ubyte, SIZE)


def _offset(slot: int) -> int:
    return _HEADER.size + slot * SLOT_BYTES


class InflightTable:
    """The worker's side: :meth:`begin` when a request starts, :meth:`end` when its response is done.

    Called from the worker's event loop only.  Without shared memory (a worker
    run on its own) both do nothing.
    """

    def __init__(self, shared: InflightMemory | None) -> None:
        self._view = memoryview(shared).cast("B") if shared is not None else None
        self._free = list(range(SLOTS - 1, -1, -1))
        # Keyed by the request's own object (hashed by identity), not id(): id() is an audited call, and a
        # project APP's audit hook (project.UsageReporter) made each of the three per request a Python call.
        self._slots: dict[object, int] = {}  # request key → slot
        self._untracked: set[object] = set()  # in flight while every slot was taken

    def begin(self, key: object, method: str, target: str) -> None:
        view = self._view
        if view is None:
            return
        if not self._free:
            self._untracked.add(key)
            _HEADER.pack_into(view, 0, len(self._untracked))
            return
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = self._free.pop()
        text = f"{method} {target}".encode("utf-8", "replace")[:TEXT_BYTES]
        offset = _offset(slot)
        start = offset + _SLOT.size
        view[start:start + len(text)] = text
        _SLOT.pack_into(view, offset, len(text), time.time())  # the length last: the text is complete when set

    def end(self, key: object) -> None:
        slot = self._slots.pop(key, None)
        if slot is not None:
            assert self._view is not None  # a slot was taken: begin() had a table
            _SLOT.pack_into(self._view, _offset(slot), 0, 0.0)
            self._free.append(slot)
        elif self._untracked:
            assert self._view is not None
            self._untracked.discard(key)
            _HEADER.pack_into(self._view, 0, len(self._untracked))


@record
class InFlight:
    """One request a worker had started and not finished."""

    request: str  # "METHOD target", as received (may hold control characters)
    started: float  # epoch seconds


def read_table(shared: InflightMemory) -> tuple[list[InFlight], int]:
    """The supervisor's side: the requests in a worker's table, oldest first, and how many more had no slot."""
    view = memoryview(shared).cast("B")
    requests = []
    for slot in range(SLOTS):
        offset = _offset(slot)
        length, started = _SLOT.unpack_from(view, offset)
        if 0 < length <= TEXT_BYTES:
            start = offset + _SLOT.size
            requests.append(InFlight(bytes(view[start:start + length]).decode("utf-8", "replace"), started))
    requests.sort(key=lambda r: r.started)
    return requests, _HEADER.unpack_from(view, 0)[0]


def describe(requests: list[InFlight], more: int, now: float | None = None) -> str:
    """``GET /slow.py?s=30 (started 2.1 s before), POST /upload (…)`` and a count of the rest."""
    now = time.time() if now is None else now
    parts = [f"{r.request} (started {max(0.0, now - r.started):.1f} s before)" for r in requests]
    if more:
        parts.append(f"{more} more")
    return ", ".join(parts)
