"""The types of what joins the supervisor to a worker: its two pipes, the shared reload counter, its process.

A worker has a control pipe (the supervisor sends :mod:`~devserver.ipc.control`
messages down it) and an event pipe (the worker sends batches of
:mod:`~devserver.ipc.events` up it, and the answers of ``control``); both are
one-way ``multiprocessing`` Pipes, typed here by what each end sends and
receives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:  # names for the type checker only: importing this module imports no more of multiprocessing
    import ctypes
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from devserver.ipc.control import ControlMessage, Evaluated, StopSeen
    from devserver.ipc.events import Event, Wire

# One batch on an event pipe: events (some as their values, events.Wire), or an answer travelling alone.
Batch: TypeAlias = "list[Event | Wire] | list[Evaluated] | list[StopSeen]"

# As strings: Connection is generic to the type checker only (at run time it cannot be subscripted).
ControlSender: TypeAlias = "Connection[ControlMessage, object]"  # the supervisor's end of a control pipe
ControlReceiver: TypeAlias = "Connection[object, ControlMessage]"  # the worker's end
EventReader: TypeAlias = "Connection[object, Batch]"  # the supervisor's end of an event pipe
EventWriter: TypeAlias = "Connection[Batch, object]"  # the worker's end
InflightMemory: TypeAlias = "ctypes.Array[ctypes.c_ubyte]"  # a worker's table of requests in flight (worker.inflight)
Process: TypeAlias = "BaseProcess"  # a started worker or standby (multiprocessing's, or forked by the warm template)


class Generation(Protocol):
    """The reload counter the supervisor shares with its workers (a ``RawValue("Q")``): a Reload's number."""

    value: int


__all__ = ["Batch", "ControlReceiver", "ControlSender", "EventReader", "EventWriter", "Generation", "InflightMemory",
           "Process"]
