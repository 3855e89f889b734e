"""The local read-only channel: a Unix socket in the user's private folder, one thread per client.

Only the user reaches it: the folder is 0700 (devserver.readout.place) and,
where the kernel says who connected (SO_PEERCRED, Linux), a peer of another
user is hung up on as well.  Never an HTTP route: a web page cannot reach it.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from pathlib import Path

from devserver.readout.place import clean_stale, socket_path
from devserver.readout.queries import MAX_LINE, ServerInfo, answer
from devserver.readout.store import RequestStore

CLIENT_TIMEOUT = 30.0  # seconds a connected client may stay silent


def _peer_uid(conn: socket.socket) -> int | None:
    """The connected process's user id, where the platform tells it."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    pid_uid_gid = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return int(struct.unpack("3i", pid_uid_gid)[1])


class ReadoutChannel:
    """Answers queries on the store over the server's socket until :meth:`close`."""

    def __init__(self, store: RequestStore, info: ServerInfo, port: int) -> None:
        self.store, self.info = store, info
        clean_stale()
        self.path: Path = socket_path(port, info.folder)
        self.path.unlink(missing_ok=True)  # clean_stale left it: a live server's, which this port cannot be
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            self._sock.bind(str(self.path))
        finally:
            os.umask(old)
        self._sock.listen(16)
        self._closed = False
        threading.Thread(target=self._accept, name="devserver-readout", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            if _peer_uid(conn) not in (None, os.getuid()):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="devserver-readout-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_TIMEOUT)
        try:
            with conn, conn.makefile("rb") as lines:
                while line := lines.readline(MAX_LINE + 1):
                    conn.sendall(answer(self.store, self.info, line))
        except OSError:  # the client went away or stayed silent
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sock.close()
        self.path.unlink(missing_ok=True)
