"""What the dashboard may ask of the server it watches."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from textual.message import Message

from devserver import probes
from devserver.ipc.control import Evaluated
from devserver.ipc.events import RequestEvent


@runtime_checkable
class Control(Protocol):
    """The slice of :class:`devserver.supervisor.core.Supervisor` the dashboard drives.

    Every method may block (they talk to worker processes), so the dashboard
    calls them from a worker thread, never from its event loop.
    """

    def reload_all(self) -> None:
        """Ask every worker to reload all dynamic modules now."""

    def stop(self) -> None:
        """Shut the server down gracefully; bounded in time and idempotent."""

    def evaluate(self, worker_pid: int, request_id: str, frame: int, source: str) -> Evaluated:
        """Run ``source`` in frame ``frame`` (an index into the request's ErrorReport frames) of the failure
        of request ``request_id``, in worker ``worker_pid``, which keeps it; bounded in time."""

    def arm_profile(self, route: str | None) -> None:
        """Profile the next request to ``route`` ("GET /catalog"), in whichever worker serves it; None disarms."""


def route_of(request: RequestEvent) -> str:
    """The route a profile is armed for: ``"GET /catalog"``, as the workers key it (devserver.probes.route_of)."""
    return probes.route_of(request.method, request.target)


class ProfileRequested(Message):
    """The user asked to profile the next request to ``route`` (or, if it is armed already, not to)."""

    def __init__(self, route: str) -> None:
        super().__init__()
        self.route = route
