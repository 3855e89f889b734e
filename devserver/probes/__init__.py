"""What a request does inside the app: its SQL, outbound HTTP calls, templates and, when armed, a profile.

Hooks into the drivers, clients and engines (installed only when someone looks: Config.record_inside) add to
the recorder of the request being served, which a context variable carries (:mod:`devserver.probes.recorder`);
the worker turns it into the request event's :class:`~devserver.ipc.events.InsideRecord`.
"""

from __future__ import annotations


def route_of(method: str, path: str) -> str:
    """The key a profile is armed for: "GET /catalog", the path without its query string."""
    return f"{method} {path.split('?', 1)[0]}"
