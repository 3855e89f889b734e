"""``devserver mcp``: the channel's read-only queries as MCP tools over stdio, for coding agents.

It reads the running server's store over the same Unix socket as
``devserver requests``; it can list and read requests, nothing more.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from devserver.readout.client import ChannelError, OneLineParser, ask, counts, list_query, port_option

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
from devserver.readout.queries import BadQuery

INSTALL = "devserver mcp needs the mcp package: pip install 'devserver[mcp]'"


def summary(record: dict[str, object]) -> dict[str, object]:
    """A request in a list: enough to choose which one to get."""
    queries, calls = counts(record)
    return {key: record.get(key) for key in ("request_id", "time", "method", "target", "status", "duration_ms")} \
        | {"queries": queries, "outbound": calls, "failed": bool(record.get("traceback") or record.get("error_report"))
           or int(str(record.get("status") or 0)) >= 500}


def build(port: int | None = None) -> MCPServer:
    """The MCP server (mcp's MCPServer) with the read-only tools."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("devserver", instructions="Read-only view of the requests the local devserver answered: "
                       "list them, then get one by request_id for its headers, queries, outbound calls, "
                       "templates, logs and traceback.")

    def listed(last: int, errors: bool, route: str) -> list[dict[str, object]]:
        try:
            reply = ask(list_query(last, errors, route), port)
        except (ChannelError, BadQuery) as exc:
            raise ValueError(str(exc)) from None
        records = reply.get("requests")
        return [summary(r) for r in records if isinstance(r, dict)] if isinstance(records, list) else []

    @server.tool()
    def list_requests(last: int = 20, route: str = "", errors: bool = False) -> list[dict[str, object]]:
        """The last requests the devserver answered, oldest first. route: 'GET /path' or a path prefix."""
        return listed(last, errors, route)

    @server.tool()
    def list_errors(last: int = 20) -> list[dict[str, object]]:
        """The last failed requests (5xx or an app's exception), oldest first."""
        return listed(last, True, "")

    @server.tool()
    def get_request(request_id: str) -> dict[str, object]:
        """One request in full: headers, body preview, queries, outbound calls, templates, logs, traceback."""
        try:
            reply = ask({"query": "get", "id": request_id}, port)
        except ChannelError as exc:
            raise ValueError(str(exc)) from None
        record = reply.get("request")
        return record if isinstance(record, dict) else {}

    return server


def mcp_main(argv: Sequence[str]) -> int:
    parser = OneLineParser(prog="devserver mcp", description="Serve the running devserver's requests to an MCP "
                                                             "client over stdio (read-only).")
    port_option(parser)
    args = parser.parse_args(argv)
    try:
        server = build(args.port)
    except ImportError:
        print(f"devserver: error: {INSTALL}", file=sys.stderr)
        return 1
    server.run("stdio")
    return 0
