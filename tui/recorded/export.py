"""Export recorded requests: as curl and HTTPie commands, and as HAR 1.2.

Commands send the exact recorded method, target (``--path-as-is``), headers
(minus hop-by-hop ones, as replay does) and body.  A body that is not
printable text travels through ``base64 -d`` on stdin, so NUL bytes and
escape sequences survive and nothing in the command line can reach the
terminal raw.  A body that was cut (or is no longer kept) makes the command
inexact: :class:`ExportError` says so instead of exporting a lie.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from textual.message import Message

from devserver import __version__
from devserver.http.statuses import reason
from devserver.ipc.events import InsideRecord, RequestEvent
from devserver.kit.datadir import user_data_folder
from tui.recorded.bodies import Body, BodyNotExact, exact_request_body, load_body
from tui.recorded.replay import replay_headers, server_address


def export_folder(chosen: str = "", env: Mapping[str, str] = os.environ) -> Path:
    """Where ``y``/``Y`` and ``W`` save: ``chosen`` (``--export-dir``), else the user's data folder.

    ``$XDG_DATA_HOME/devserver/exports``, or ``~/.local/share/devserver/exports``
    (a relative XDG_DATA_HOME is ignored, as the XDG spec says): never the
    project, whose ``git status`` would list every export.
    """
    if chosen:
        return Path(chosen)
    return user_data_folder(env) / "exports"


def write_export(folder: Path, suffix: str, text: str) -> Path:
    """A new file in ``folder`` named by the time, readable by the user only (bodies may hold secrets)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = folder / f"{stamp}{'-' + str(n) if n else ''}-{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        return path
    raise FileExistsError(f"too many exports this second in {folder}")


def saved_where(path: Path, home: Path | None = None) -> str:
    """Where an export went, for a toast: the file's name and its folder on lines of their own.

    A toast wraps long lines wherever the width ends; a path has no spaces,
    so it would be cut mid-name.  The home folder is shown as ``~``.
    """
    home = Path.home() if home is None else home
    folder = str(path.parent)
    if path.parent == home or home in path.parent.parents:
        folder = "~" + folder[len(str(home)):]
    return f"{path.name}\nin {folder}{os.sep}"


class CopyRequested(Message):
    """A screen asks the app to copy ``request`` as a command (``kind``: "curl" or "httpie")."""

    def __init__(self, request: RequestEvent, kind: str) -> None:
        super().__init__()
        self.request = request
        self.kind = kind


def request_url(event: RequestEvent, base_url: str) -> str:
    """The absolute URL of ``event`` on the server at ``base_url`` (connectable host)."""
    if event.target.startswith(("http://", "https://")):
        return event.target
    host, port = server_address(base_url)
    host = f"[{host}]" if ":" in host else host
    return urljoin(f"{urlsplit(base_url).scheme or 'http'}://{host}:{port}/", event.target or "/")


def _trusting(base_url: str, option: str, cafile: str) -> list[str]:
    """The option that makes a client trust devserver's CA (never ``-k``: the command checks what it talks to)."""
    return [option, cafile] if cafile and base_url.startswith("https:") else []


def _is_plain_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\n\t" for ch in text)


def _stdin_prefix(body: bytes) -> str:
    return f"printf %s {base64.b64encode(body).decode('ascii')} | base64 -d | "


def curl_command(event: RequestEvent, base_url: str, cafile: str = "") -> str:
    """A curl command line that sends ``event`` again, exactly (trusting ``cafile``, the server's CA, over HTTPS)."""
    body = exact_request_body(event)
    parts = ["curl", "--path-as-is", "-sS", "-X", event.method, *_trusting(base_url, "--cacert", cafile)]
    if event.method.upper() == "HEAD":
        parts[-2:] = ["--head"]
    parts.append(request_url(event, base_url))
    names = set()
    for name, value in replay_headers(event):
        names.add(name.lower())
        parts += ["-H", f"{name}: {value}" if value else f"{name};"]
    for default in ("user-agent", "accept"):  # curl adds these unless told not to: the recorded request had none
        if default not in names:
            parts += ["-H", f"{default.title()}:"]
    prefix = ""
    if body:
        if _is_plain_text(body):
            parts += ["--data-binary", body.decode("utf-8")]
        else:
            prefix = _stdin_prefix(body)
            parts += ["--data-binary", "@-"]
    return prefix + shlex.join(parts)


def httpie_command(event: RequestEvent, base_url: str, cafile: str = "") -> str:
    """An HTTPie command line that sends ``event`` again (HTTPie 3: ``--raw``)."""
    body = exact_request_body(event)
    parts = ["http", "--ignore-stdin", *_trusting(base_url, "--verify", cafile), event.method,
             request_url(event, base_url)]
    names = set()
    for name, value in replay_headers(event):
        names.add(name.lower())
        parts.append(f"{name}:{value}" if value else f"{name};")
    for default in ("user-agent", "accept", "accept-encoding"):
        if default not in names:
            parts.append(f"{default.title()}:")  # an empty value: HTTPie leaves its default out
    prefix = ""
    if body:
        if _is_plain_text(body):
            parts += ["--raw", body.decode("utf-8")]
        else:
            prefix = _stdin_prefix(body)
            parts.remove("--ignore-stdin")
    return prefix + shlex.join(parts)


# ------------------------------------------------------------------ HAR


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pairs(headers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in headers]


def _header(headers: Iterable[tuple[str, str]], wanted: str) -> str:
    return next((v for n, v in headers if n.lower() == wanted), "")


def _version(event: RequestEvent) -> str:
    return event.http_version if event.http_version.startswith("HTTP/") else f"HTTP/{event.http_version}"


def _cookies(header: str) -> list[dict[str, str]]:
    cookies = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            cookies.append({"name": name, "value": value})
    return cookies


def _content(body: Body, mime: str) -> dict[str, Any]:
    content: dict[str, Any] = {"size": body.size, "mimeType": mime}
    if body.data:
        if _is_plain_text(body.data):
            content["text"] = body.data.decode("utf-8")
        else:
            content["text"] = base64.b64encode(body.data).decode("ascii")
            content["encoding"] = "base64"
    if not body.complete:
        content["comment"] = body.note
    return content


def har_entry(event: RequestEvent, base_url: str) -> dict[str, Any]:
    """One HAR 1.2 entry.

    Sizes: the request's head is rebuilt from the recorded line and headers,
    so ``headersSize + bodySize`` is what the client sent; the response's
    ``headersSize`` is the bytes sent minus the body, so the two add up to
    ``_transferSize``, the bytes on the wire.  Timings: only the server-side
    duration is known, so it is all ``wait`` and ``time`` equals it.
    """
    request_body = load_body(event, "request")
    response_body = load_body(event, "response")
    head = f"{event.method} {event.target} {_version(event)}\r\n" + "".join(
        f"{n}: {v}\r\n" for n, v in event.request_headers
    ) + "\r\n"
    request: dict[str, Any] = {
        "method": event.method,
        "url": request_url(event, base_url),
        "httpVersion": _version(event),
        "cookies": _cookies(_header(event.request_headers, "cookie")),
        "headers": _pairs(event.request_headers),
        "queryString": _pairs(parse_qsl(urlsplit(event.target).query, keep_blank_values=True)),
        "headersSize": len(head.encode("latin-1", "replace")),
        "bodySize": request_body.size,
    }
    if request_body.size:
        post = _content(request_body, _header(event.request_headers, "content-type"))
        request["postData"] = {"mimeType": post["mimeType"], "text": post.get("text", ""), "params": []}
        if "encoding" in post:
            request["postData"]["comment"] = "text is base64 (binary body)"
        if "comment" in post:
            request["comment"] = post["comment"]
    body_wire = response_body.size if event.response_body is not None else 0
    body_wire = min(body_wire, event.bytes_sent)
    response = {
        "status": event.status,
        "statusText": reason(event.status),
        "httpVersion": _version(event),
        "cookies": [],
        "headers": _pairs(event.response_headers),
        "content": _content(response_body, _header(event.response_headers, "content-type") or "x-unknown"),
        "redirectURL": _header(event.response_headers, "location"),
        "headersSize": event.bytes_sent - body_wire,
        "bodySize": body_wire,
        "_transferSize": event.bytes_sent,
    }
    duration = round(event.duration_ms, 3)
    entry: dict[str, Any] = {
        "startedDateTime": _iso(event.time - event.duration_ms / 1000),
        "time": duration,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": 0, "wait": duration, "receive": 0},
        "serverIPAddress": server_address(base_url)[0],
        "connection": event.client.rpartition(":")[2],
        "_workerPid": event.worker_pid,
    }
    if event.error or event.traceback:
        entry["comment"] = event.error or event.traceback
    if event.inside is not None:
        entry.update(inside_fields(event.inside))
    return entry


def inside_fields(inside: InsideRecord) -> dict[str, Any]:
    """What the request did inside the app, as HAR custom fields (HAR 1.2 allows names starting with ``_``).

    ``_queries``, ``_outbound`` and ``_templates`` are lists of objects with
    the recorded fields as they are named in the JSON log (``sql``, ``ms``,
    ``method``, ``url``, ``status`` …), ``_repeatedQueries`` the N+1 flags,
    ``_profile`` the call tree (depth-first nodes) when the request was
    profiled, ``_appTime`` the app call's own duration in ms.
    """
    fields: dict[str, Any] = {
        "_appTime": round(inside.app_ms, 3),
        "_queries": [asdict(q) for q in inside.queries],
        "_outbound": [asdict(c) for c in inside.outbound],
        "_templates": [asdict(t) for t in inside.templates],
    }
    if inside.repeated:
        fields["_repeatedQueries"] = [asdict(r) for r in inside.repeated]
    if inside.profile is not None:
        fields["_profile"] = asdict(inside.profile)
    if inside.dropped:
        fields["_insideDropped"] = inside.dropped
    return fields


def har_log(events: Iterable[RequestEvent], base_url: str) -> dict[str, Any]:
    """A HAR 1.2 document of ``events`` (in the order given)."""
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "devserver", "version": __version__},
            "pages": [],
            "entries": [har_entry(e, base_url) for e in events],
        }
    }


def har_json(events: Iterable[RequestEvent], base_url: str) -> str:
    """The HAR document as JSON text."""
    return json.dumps(har_log(events, base_url), indent=1, ensure_ascii=False)


ExportError = BodyNotExact
COMMANDS = {"curl": curl_command, "httpie": httpie_command}
