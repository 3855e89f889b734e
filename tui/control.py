"""What the dashboard may ask of the server it watches."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Control(Protocol):
    """The slice of :class:`devserver.supervisor.Supervisor` the dashboard drives.

    Both methods may block (they talk to worker processes), so the dashboard
    calls them from a worker thread, never from its event loop.
    """

    def reload_all(self) -> None:
        """Ask every worker to reload all dynamic modules now."""

    def stop(self) -> None:
        """Shut the server down gracefully; bounded in time and idempotent."""
