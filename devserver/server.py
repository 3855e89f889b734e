"""The programmatic API: ``HTTPServer(...)``, ``bind(ip, port)``, ``start(backlog)``.

Mistakes raise, as Python callers expect, instead of being printed: a folder
that is not there is a FileNotFoundError (NotADirectoryError for a file) from
the constructor, an address that cannot be bound (a busy port) a
:class:`~devserver.supervisor.listen.StartError`, an OSError with the bind's errno and
the address in its message, from :meth:`HTTPServer.bind` (or from
:meth:`HTTPServer.start` when it binds, with no ``bind()`` before it).
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import replace
from typing import Any

from devserver.ipc.config import Config
from devserver.ipc.defaults import DEFAULT_BACKLOG, DEFAULT_HOST, DEFAULT_PORT
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
    >>> server.bind("127.0.0.1", 8899)  # the port is taken here; connections wait for start()
    >>> server.start(128)  # blocks until Ctrl-C or SIGTERM, logging to the console
    """

    def __init__(self, root: str | None = None, dynamic: str | None = None, app: str | None = None,
                 **options: Any) -> None:
        from devserver.cli import choose_folders

        folders = choose_folders(root and _folder("root", root), dynamic and _folder("dynamic", dynamic))
        options.setdefault("reload", folders.has_dynamic)
        self.config = Config(root=folders.root, dynamic=folders.dynamic, app=app, tui=False,
                             notices=folders.notices, **options)
        self._sockets: list[socket.socket] = []  # bound by bind(), handed to the supervisor by start()

    def bind(self, ip: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        """Bind the listening sockets now (port 0: a free one, see :attr:`address`); :meth:`start` serves on them.

        From here on a connection waits in the backlog for the workers instead
        of being refused.  Raises :class:`~devserver.supervisor.listen.StartError`
        (an OSError) when the address cannot be bound.  A second bind replaces
        the first.
        """
        from devserver.supervisor.listen import bind_for_workers

        try:
            sockets = bind_for_workers(ip, port, DEFAULT_BACKLOG, self.config.workers)
        except StartError as exc:
            raise StartError(exc.reason, exc.errno) from None  # the --port hint is the command line's
        self._close()
        self._sockets = sockets
        self.config = replace(self.config, host=ip, port=port)

    @property
    def address(self) -> tuple[str, int] | None:
        """The address :meth:`bind` bound (with the port it chose for 0), until :meth:`start`; else None."""
        return self._sockets[0].getsockname()[:2] if self._sockets else None

    def start(self, backlog: int = 128) -> int:
        """Run until Ctrl-C or SIGTERM on the sockets :meth:`bind` bound (binds them first if it did not);
        returns 0 after a clean stop."""
        from devserver.console.log import serve_console
        from devserver.supervisor.listen import keep_early, release_early

        if not self._sockets:
            self.bind(self.config.host, self.config.port)
        for sock in self._sockets:
            sock.listen(backlog)  # listen() again sets the backlog of a listening socket
        keep_early(self._sockets)  # the supervisor takes them
        self._sockets = []
        try:
            return serve_console(replace(self.config, backlog=backlog).resolved())
        finally:
            release_early()

    def _close(self) -> None:
        while self._sockets:
            self._sockets.pop().close()
