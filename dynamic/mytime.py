"""A WSGI app: the current time as plain text."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Answer every request with the server's local time."""
    body = time.strftime("%Y-%m-%d %H:%M:%S %Z\n").encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
