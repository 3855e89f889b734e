"""The seed's programmatic interface: construct, bind(ip, port), start(backlog).

Mistakes raise, as Python callers expect, instead of being printed: a folder
that is not there is a FileNotFoundError (NotADirectoryError for a file) from
the constructor, an address that cannot be bound (a busy port) a
:class:`~devserver.supervisor.listen.StartError`, an OSError with the bind's errno and
the address in its message, from :meth:`HTTPServer.start`.
"""

from __future__ import annotations

import errno
import os
from dataclasses import replace
from typing import Any

from devserver.ipc.config import Config
from devserver.ipc.defaults import DEFAULT_HOST, DEFAULT_PORT
from devserver.supervisor.listen import StartError

__all__ = ["HTTPServer", "StartError"]


def _folder(keyword: str, path: str) -> str:
    """``path``, or the exception that says why ``keyword=path`` cannot be served."""
    if os.path.isdir(path):
        return path
    if os.path.exists(path):
        raise NotADirectoryError(errno.ENOTDIR, f"HTTPServer({keyword}=...) is not a folder", path)
    raise FileNotFoundError(errno.ENOENT, f"HTTPServer({keyword}=...): no such folder", path)


class HTTPServer:
    """Serve a site from Python code the way the ``devserver`` command does.

    ``root`` and ``dynamic`` left out are chosen as the command line does
    (``html_page/`` and ``dynamic/`` of the current folder, whichever exist;
    with neither, the current folder's files); given, they must be folders.

    >>> server = HTTPServer(root="html_page", dynamic="dynamic")
    >>> server.bind("127.0.0.1", 8899)
    >>> server.start(128)  # blocks until Ctrl-C or SIGTERM, logging to the console
    """

    def __init__(self, root: str | None = None, dynamic: str | None = None, app: str | None = None,
                 **options: Any) -> None:
        from devserver.cli import choose_folders

        folders = choose_folders(root and _folder("root", root), dynamic and _folder("dynamic", dynamic))
        options.setdefault("reload", folders.has_dynamic)
        self.config = Config(root=folders.root, dynamic=folders.dynamic, app=app, tui=False,
                             notices=folders.notices, **options)

    def bind(self, ip: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.config = replace(self.config, host=ip, port=port)

    def start(self, backlog: int = 128) -> int:
        """Run until Ctrl-C or SIGTERM; returns 0 after a clean stop.

        Raises :class:`~devserver.supervisor.listen.StartError` (an OSError) when the
        address cannot be bound, before anything else starts.
        """
        from devserver.console.log import serve_console
        from devserver.supervisor.listen import bind_early, release_early

        config = replace(self.config, backlog=backlog).resolved()
        failed = bind_early(config.host, config.port, backlog, config.workers)
        if failed is not None:
            raise StartError(failed.reason, failed.errno) from None  # the --port hint is the command line's
        try:
            return serve_console(config)
        finally:
            release_early()
