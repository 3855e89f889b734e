"""Reading recorded bodies back, and saying what they are.

Workers keep bodies in spool files (devserver.debug.capture); an event carries only
a :class:`~devserver.ipc.events.BodyRecord`.  The oldest records lose their bytes
when the store is full, so every reader here copes with a body that is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from devserver.ipc.events import BodyRecord, RequestEvent
from tui.format import size as fmt_size

Side = Literal["request", "response"]


def read_record(record: BodyRecord) -> bytes | None:
    """The kept bytes of ``record``, or None when the store has dropped them."""
    if record.kept == 0:
        return b""
    try:
        with open(record.path, "rb") as spool:
            spool.seek(record.offset)
            data = spool.read(record.kept)
    except OSError:
        return None
    return data if len(data) == record.kept else None


def record_of(event: RequestEvent, side: Side) -> BodyRecord | None:
    """The record of one side's body, if bodies were recorded."""
    return event.request_body if side == "request" else event.response_body


def body_bytes(event: RequestEvent, side: Side) -> bytes:
    """What is known of a body: the recorded bytes, else the request's 1 KiB preview, else nothing."""
    record = record_of(event, side)
    if record is not None:
        data = read_record(record)
        if data is not None:
            return data
    return event.body_preview if side == "request" else b""


@dataclass(frozen=True, slots=True)
class Body:
    """A body as far as it is known: ``data``, and whether it is the exact, whole body."""

    data: bytes
    size: int  # the body's real length (as far as known)
    complete: bool
    note: str  # one line for the user: "2.4 KB", "cut at 1.0 MB of 3.2 MB", "dropped from the store" …


def load_body(event: RequestEvent, side: Side) -> Body:
    """Read a side's body and describe how much of it is known."""
    record = record_of(event, side)
    if record is not None:
        data = read_record(record)
        if data is None:
            return Body(b"", record.size, False, f"{fmt_size(record.size)}, no longer kept (store full, oldest dropped)")
        if record.truncated:
            return Body(
                data, record.size, False, f"cut at {record.kept} bytes of {record.size} ({fmt_size(record.size)})"
            )
        return Body(data, record.size, True, f"{record.size} bytes" if record.size else "empty")
    if side == "response":
        return Body(b"", 0, False, "not recorded")
    declared = _content_length(event)
    preview = event.body_preview
    if declared is not None and declared <= len(preview):
        return Body(preview, declared, True, f"{declared} bytes" if declared else "empty")
    if not preview and declared is None:
        return Body(b"", 0, True, "empty")
    total = declared if declared is not None else len(preview)
    return Body(preview, total, False, f"preview only: {len(preview)} bytes of {total if declared else 'unknown'}")


def _content_length(event: RequestEvent) -> int | None:
    for name, value in event.request_headers:
        if name.lower() == "content-length" and value.strip().isdigit():
            return int(value)
    return None


class BodyNotExact(ValueError):
    """The request cannot be sent again exactly: its body was cut or dropped."""


def exact_request_body(event: RequestEvent) -> bytes:
    """The whole request body, or :class:`BodyNotExact` when only part of it is known."""
    body = load_body(event, "request")
    if not body.complete:
        raise BodyNotExact(f"the request body is not known exactly ({body.note})")
    return body.data
