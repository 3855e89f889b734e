"""An event as a JSON object: the one shape the JSON log line, ``devserver requests --json`` and the MCP tools share."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devserver.ipc.events import Event


def event_record(event: Event) -> dict[str, object]:
    """``event``'s fields and its type; the preview's bytes as text (invalid UTF-8 replaced)."""
    record: dict[str, object] = {"type": type(event).__name__, **asdict(event)}
    preview = record.get("body_preview")
    if isinstance(preview, bytes):
        record["body_preview"] = preview.decode("utf-8", "replace")
    return record
