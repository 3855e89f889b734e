"""The seed's programmatic interface: construct, bind(ip, port), start(backlog)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .config import DEFAULT_HOST, DEFAULT_PORT, Config


class HTTPServer:
    """Serve a site from Python code the way the ``devserver`` command does.

    >>> server = HTTPServer(root="html_page", dynamic="dynamic")
    >>> server.bind("127.0.0.1", 8899)
    >>> server.start(128)  # blocks until Ctrl-C or SIGTERM, logging to the console
    """

    def __init__(self, root: str = "html_page", dynamic: str = "dynamic", app: str | None = None, **options: Any) -> None:
        self.config = Config(root=root, dynamic=dynamic, app=app, tui=False, **options)

    def bind(self, ip: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.config = replace(self.config, host=ip, port=port)

    def start(self, backlog: int = 128) -> int:
        """Run until interrupted; returns the exit code (0 after a clean stop)."""
        from .console import serve_console

        return serve_console(replace(self.config, backlog=backlog).resolved())
