"""The channel's protocol, apart from its socket: one JSON line in, one JSON line out.

A fixed table of read-only queries; nothing a client sends is run, nothing in
the store changes.  Replay and the console stay in the dashboard.

    {"query": "list", "last": 20, "errors": false, "route": "GET /api"}
    {"query": "get", "id": "..."}
    {"query": "info"}

An answer is ``{"ok": true, ...}`` or ``{"ok": false, "error": "what was wrong"}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from devserver.readout.records import event_record
from devserver.readout.store import Filters, Kept, RequestStore

MAX_LINE = 64 * 1024  # bytes of one query; a longer one is refused
MAX_LAST = 1000


@dataclass(frozen=True)
class ServerInfo:
    """What ``info`` says of the server behind the channel."""

    url: str
    folder: str
    workers: int


class BadQuery(ValueError):
    """A query the channel does not answer; its text is the client's error line."""


def parse_route(route: str) -> tuple[str, str]:
    """``"GET /api"`` → ("GET", "/api"); ``"/api"`` → ("", "/api")."""
    method, _, path = route.strip().rpartition(" ")
    if not path.startswith("/"):
        raise BadQuery(f"route must be a path like /api or a method and a path like 'GET /api', not {route!r}")
    return method.strip().upper(), path


def request_record(kept: Kept) -> dict[str, object]:
    """A kept request as the JSON log line has it, under the id ``get`` takes."""
    return {**event_record(kept.event), "request_id": kept.id}


def _filters(query: dict[str, object]) -> Filters:
    last = query.get("last", 20)
    if not isinstance(last, int) or isinstance(last, bool) or not 0 <= last <= MAX_LAST:
        raise BadQuery(f"last must be a whole number from 0 to {MAX_LAST}")
    route = query.get("route") or ""
    if not isinstance(route, str):
        raise BadQuery("route must be text")
    method, path = parse_route(route) if route else ("", "")
    return Filters(last=last, errors=bool(query.get("errors")), method=method, path=path)


def _list(store: RequestStore, info: ServerInfo, query: dict[str, object]) -> dict[str, object]:
    return {"requests": [request_record(kept) for kept in store.select(_filters(query))]}


def _get(store: RequestStore, info: ServerInfo, query: dict[str, object]) -> dict[str, object]:
    wanted = query.get("id")
    if not isinstance(wanted, str) or not wanted:
        raise BadQuery("get needs an id")
    kept = store.get(wanted)
    if kept is None:
        raise BadQuery(f"no request {wanted!r} in the server's memory (it keeps the last ones only)")
    return {"request": request_record(kept)}


def _info(store: RequestStore, info: ServerInfo, query: dict[str, object]) -> dict[str, object]:
    kept, errors = store.counts()
    return {"url": info.url, "folder": info.folder, "workers": info.workers, "pid": os.getpid(),
            "kept": kept, "errors_kept": errors, "seen": store.seen}


QUERIES: dict[str, Callable[[RequestStore, ServerInfo, dict[str, object]], dict[str, object]]] = {
    "list": _list, "get": _get, "info": _info,
}


def answer(store: RequestStore, info: ServerInfo, line: bytes) -> bytes:
    """The answer line to one query line."""
    try:
        if len(line) > MAX_LINE:
            raise BadQuery(f"query longer than {MAX_LINE} bytes")
        try:
            query = json.loads(line)
        except ValueError:
            raise BadQuery("a query is one JSON object per line") from None
        if not isinstance(query, dict):
            raise BadQuery("a query is one JSON object per line")
        handler = QUERIES.get(str(query.get("query")))
        if handler is None:
            raise BadQuery(f"unknown query {query.get('query')!r} (one of: {', '.join(QUERIES)})")
        reply: dict[str, object] = {"ok": True, **handler(store, info, query)}
    except BadQuery as exc:
        reply = {"ok": False, "error": str(exc)}
    return json.dumps(reply, default=str).encode() + b"\n"
