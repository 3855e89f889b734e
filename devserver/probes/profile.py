"""A profile on demand: the route the dashboard armed is profiled once by pyinstrument, its call tree bounded.

pyinstrument is imported only when a route is armed: a worker that is never asked loads none of it.  The
profile covers the thread that runs the app call (a WSGI call's pool thread; for an ASGI app, the worker's
loop while the call runs, other requests' tasks included).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devserver.ipc.control import ArmProfile
from devserver.ipc.events import ProfileNode, ProfileRecord
from devserver.probes import rounded_ms, source

if TYPE_CHECKING:
    from pyinstrument.frame import Frame

INTERVAL = 0.001  # seconds between samples
MIN_SHARE = 0.01  # nodes under this share of the whole are left out of the tree
MAX_NODES = 300

_armed: str | None = None  # this worker's armed route ("GET /catalog"), until one request to it is profiled


def arm(message: ArmProfile) -> None:
    """The supervisor's word (ArmProfile): profile the next request to this route here (None: stop waiting)."""
    global _armed
    _armed = message.route


def armed() -> str | None:
    return _armed


class Running:
    """A profiler started for one app call."""

    __slots__ = ("profiler", "route", "stopped")

    def __init__(self, route: str) -> None:
        from pyinstrument import Profiler  # only now: armed

        self.route = route
        self.profiler = Profiler(interval=INTERVAL, async_mode="disabled")
        self.stopped = False
        self.profiler.start()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.profiler.stop()

    def record(self) -> ProfileRecord:
        self.stop()
        session = self.profiler.last_session
        root = session.root_frame() if session is not None else None
        nodes: list[ProfileNode] = []
        if root is not None and root.time > 0:
            _walk(root, 0, root.time * MIN_SHARE, nodes)
        return ProfileRecord(self.route, INTERVAL * 1000, session.sample_count if session is not None else 0,
                             tuple(nodes))


def _walk(frame: Frame, depth: int, least: float, nodes: list[ProfileNode]) -> None:
    """Depth first, children by time, those under ``least`` seconds and past MAX_NODES left out."""
    stack = [(frame, depth)]
    while stack and len(nodes) < MAX_NODES:
        frame, depth = stack.pop()
        path = frame.file_path or ""
        shown = source.relative(path) if path else ""
        nodes.append(ProfileNode(depth, frame.function or "?",
                                 f"{shown or frame.file_path_short or path}:{frame.line_no or 0}",
                                 rounded_ms(frame.time * 1000), rounded_ms(frame.total_self_time * 1000), bool(shown)))
        children = sorted((child for child in frame.children if child.time >= least), key=lambda c: c.time)
        stack.extend((child, depth + 1) for child in children)  # the longest last: popped first


def start_if_armed(route: str) -> Running | None:
    """A profiler running for this call when ``route`` is the armed one (this worker is disarmed then)."""
    global _armed
    if _armed is None or _armed != route:
        return None
    _armed = None
    return Running(route)
