"""An event as a JSON object: the one shape the JSON log line, ``devserver requests --json`` and the MCP tools share."""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass, replace
from typing import TYPE_CHECKING

from devserver.ipc.events import RequestEvent

if TYPE_CHECKING:
    from devserver.ipc.events import Event

# Of what a request did inside (InsideRecord), the record has these even when empty; the rest when present.
ALWAYS_SHOWN = ("app_ms", "queries", "outbound")


def event_record(event: Event) -> dict[str, object]:
    """``event``'s fields and its type; the preview's bytes as text (invalid UTF-8 replaced); what the request did
    inside at the top (a script reads ``line["queries"]``, not ``line["inside"]["queries"]``)."""
    inside = None
    if type(event) is RequestEvent and event.inside is not None:  # asdict() walks records 3x slower than plain()
        inside = event.inside
        event = replace(event, inside=None)
    record: dict[str, object] = {"type": type(event).__name__, **asdict(event)}
    preview = record.get("body_preview")
    if isinstance(preview, bytes):
        record["body_preview"] = preview.decode("utf-8", "replace")
    record.pop("inside", None)
    if inside is not None:
        shown = plain(inside)
        assert isinstance(shown, dict)
        record.update((key, value) for key, value in shown.items() if value or key in ALWAYS_SHOWN)
    return record


_FIELDS: dict[type, tuple[str, ...]] = {}


def plain(record: object) -> object:
    """A record of builtin values (InsideRecord and what it holds) as JSON takes it: dicts, lists, values."""
    if isinstance(record, tuple):
        return [plain(item) for item in record]
    names = _FIELDS.get(type(record))
    if names is None:
        if not is_dataclass(record):
            return record
        names = _FIELDS[type(record)] = tuple(f.name for f in fields(record))
    return {name: plain(getattr(record, name)) for name in names}
