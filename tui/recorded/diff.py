"""What changed between a recorded request's response and its replay's."""

from __future__ import annotations

import difflib

from devserver.ipc.events import Headers, RequestEvent
from devserver.kit.safetext import escape_controls
from tui.recorded.bodies import load_body
from tui.widgets.body_view import render_body

# Headers that differ on every response and say nothing about the change.
VOLATILE = frozenset({"date", "server", "connection", "keep-alive"})
MAX_LINES = 400


def _header_lines(headers: Headers) -> list[str]:
    return [f"{name}: {value}" for name, value in headers if name.lower() not in VOLATILE]


def _content_type(event: RequestEvent) -> str:
    return next((v for n, v in event.response_headers if n.lower() == "content-type"), "")


def _unified(before: list[str], after: list[str], what: str) -> list[str]:
    lines = list(difflib.unified_diff(before, after, f"original {what}", f"replay {what}", lineterm="", n=2))
    return lines[:MAX_LINES] + ([f"… {len(lines) - MAX_LINES} more lines"] if len(lines) > MAX_LINES else [])


def response_diff(original: RequestEvent, replay: RequestEvent) -> str:
    """Status, headers and body of ``replay``'s response against ``original``'s, as a unified diff."""
    out: list[str] = []
    if original.status == replay.status:
        out.append(f"status: {replay.status} (same)")
    else:
        out.append(f"status: {original.status} → {replay.status}")
    headers = _unified(_header_lines(original.response_headers), _header_lines(replay.response_headers), "headers")
    out += headers or ["headers: same (Date, Server, Connection ignored)"]
    before, after = load_body(original, "response"), load_body(replay, "response")
    if not (before.complete and after.complete):
        out.append(f"body: cannot compare exactly (original: {before.note}; replay: {after.note})")
    elif before.data == after.data:
        out.append(f"body: same ({len(after.data)} bytes)")
    else:
        old = render_body(before.data, _content_type(original)).splitlines()
        new = render_body(after.data, _content_type(replay)).splitlines()
        out += _unified(old, new, "body") or [f"body: {len(before.data)} → {len(after.data)} bytes"]
    return escape_controls("\n".join(out))
