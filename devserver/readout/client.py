"""``devserver requests``: what the running server captured, read over its channel, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from devserver.kit.safetext import escape_controls
from devserver.readout.place import NoServer, find_socket
from devserver.readout.queries import BadQuery, parse_route

ASK_TIMEOUT = 10.0  # seconds to wait for the server's answer


class ChannelError(RuntimeError):
    """The server could not be asked, or refused the query; the text is the error line."""


def ask(query: dict[str, object], port: int | None = None, folder: str | None = None) -> dict[str, object]:
    """The answer of the server for ``folder`` (default: here) or on ``port`` to one query."""
    try:
        path = find_socket(folder or os.getcwd(), port)
    except NoServer as exc:
        raise ChannelError(str(exc)) from None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(ASK_TIMEOUT)
            sock.connect(str(path))
            sock.sendall(json.dumps(query).encode() + b"\n")
            with sock.makefile("rb") as lines:
                reply = json.loads(lines.readline() or b"null")
    except (OSError, ValueError) as exc:
        raise ChannelError(f"the server's channel {path} did not answer: {exc}") from None
    if not isinstance(reply, dict):
        raise ChannelError(f"the server's channel {path} closed without an answer")
    if not reply.get("ok"):
        raise ChannelError(str(reply.get("error")))
    return reply


def list_query(last: int = 20, errors: bool = False, route: str = "") -> dict[str, object]:
    if route:
        parse_route(route)  # a bad route is told here, before any server is looked for
    return {"query": "list", "last": last, "errors": errors, "route": route}


def counts(record: dict[str, object]) -> tuple[int, int]:
    """(queries, outbound calls) of a request record; 0 when nothing was recorded inside."""
    inside = record.get("inside")
    if not isinstance(inside, dict):
        return 0, 0
    return len(inside.get("queries") or ()), len(inside.get("outbound") or ())


def _cell(value: object) -> str:
    return escape_controls(str(value), multiline=False)


def table(records: Sequence[dict[str, object]]) -> str:
    """The requests as aligned columns, request-derived text with its control characters escaped."""
    rows = [("time", "id", "method", "target", "status", "ms", "queries", "calls")]
    for record in records:
        queries, calls = counts(record)
        when = record.get("time")
        rows.append((time.strftime("%H:%M:%S", time.localtime(when)) if isinstance(when, (int, float)) else "-",
                     _cell(record.get("request_id", "")), _cell(record.get("method", "")),
                     _cell(record.get("target", "")), _cell(record.get("status", "")),
                     f"{record.get('duration_ms', 0):.1f}", str(queries), str(calls)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows) + "\n"


class OneLineParser(argparse.ArgumentParser):
    """A bad command line gets one line saying what is wrong, as the server's own options do."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def port_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None, help="the server on this port, not this folder's")


def requests_parser(prog: str = "devserver requests") -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description="Print the requests the running devserver of this folder answered "
                                            "(read-only, over its local socket).")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="the last N requests (default 20)")
    parser.add_argument("--errors", action="store_true", help="only failures: 5xx or an app's exception")
    parser.add_argument("--route", default="", metavar="ROUTE", help="'GET /path' or a path prefix like /api")
    port_option(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per line, as --log-format json logs them")
    return parser


def requests_main(argv: Sequence[str]) -> int:
    args = requests_parser().parse_args(argv)
    try:
        reply = ask(list_query(args.last, args.errors, args.route), args.port)
    except (ChannelError, BadQuery) as exc:
        print(f"devserver requests: error: {exc}", file=sys.stderr)
        return 1
    records = reply.get("requests")
    records = [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    if args.json:
        sys.stdout.write("".join(json.dumps(record) + "\n" for record in records))
    else:
        sys.stdout.write(table(records) if records else "no requests captured yet\n")
    return 0
