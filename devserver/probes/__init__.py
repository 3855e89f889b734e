"""What a request does inside the app: its SQL, outbound HTTP calls, templates and, when armed, a profile.

Hooks into the drivers, clients and engines (installed only when someone looks: Config.record_inside) add to
the recorder of the request being served, which a context variable carries (:mod:`devserver.probes.recorder`);
the worker turns it into the request event's :class:`~devserver.ipc.events.InsideRecord`.
"""

from __future__ import annotations


def route_of(method: str, target: str) -> str:
    """The key a profile is armed for: "GET /catalog", the target's path without its query string (and without
    the scheme and authority of an absolute-form target); the dashboard and the workers both key by it."""
    path = target.split("?", 1)[0]
    if not path.startswith("/"):  # "http://host:8899/catalog" (RFC 9112 §3.2.2), or "*"
        parts = path.split("/", 3)
        path = "/" + parts[3] if len(parts) == 4 else "/"
    return f"{method} {path}"


def rounded_ms(ms: float) -> float:
    """Milliseconds to the microsecond, as the records keep them: ``round(ms, 3)``'s value (but for ties) at a
    fifth of its cost (``round`` to digits converts through decimal text; a request rounds some twenty times)."""
    return round(ms * 1000) / 1000
