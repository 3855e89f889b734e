"""The channel that passes connections from a worker a warm restart retires to the workers that replace it.

Closing an idle keep-alive connection races the client's next request: sent
as the close lands, it gets no answer (``RemoteDisconnected``).  A retiring
worker stops reading such connections instead, and once the new workers
accept it passes each one on, with whatever request the kernel holds for
it unread, so that request is answered, by the new code.
"""

from __future__ import annotations

import os
import socket

GONE = (BlockingIOError, InterruptedError)
HANDED = b"C"  # the payload of a handed-over connection's record (a record may not be empty)
HANDOFF_BUFFER = 1 << 22  # bytes of records waiting for a taker: ~1 KiB each, so thousands of connections


class Handoff:
    """One server's channel of connections between its workers: a SOCK_SEQPACKET socket pair.

    A retiring worker writes each connection's descriptor, one record each,
    to ``give_end``; whichever worker accepts reads it from ``take_end``
    (every worker holds both ends, inherited from the supervisor, which
    keeps its own: records wait there while no worker accepts, as
    connections wait in the listening socket's backlog).  Both ends are
    non-blocking: a full channel refuses a connection rather than stall the
    retiring worker, which then answers it itself.
    """

    def __init__(self, give_end: socket.socket, take_end: socket.socket) -> None:
        self.give_end = give_end
        self.take_end = take_end

    @classmethod
    def create(cls) -> Handoff | None:
        """A new channel, or None where the platform has no AF_UNIX SOCK_SEQPACKET (Windows, macOS)."""
        try:
            give_end, take_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except (AttributeError, OSError):
            return None
        for end in (give_end, take_end):
            end.setblocking(False)  # MSG_DONTWAIT is not enough: Linux waits for buffer space anyway
        try:
            give_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, HANDOFF_BUFFER)  # capped by wmem_max
        except OSError:
            pass
        return cls(give_end, take_end)

    def give(self, sock: socket.socket | int) -> bool:
        """Pass ``sock``'s connection on (the caller then closes its own descriptor); False if the channel is full."""
        fd = sock if isinstance(sock, int) else sock.fileno()
        try:
            socket.send_fds(self.give_end, [HANDED], [fd])
        except OSError:
            return False
        return True

    def take(self) -> socket.socket | None:
        """The next connection handed over, or None when none is waiting."""
        while True:
            try:
                _, fds, _, _ = socket.recv_fds(self.take_end, 16, 1)
            except GONE:
                return None
            if not fds:
                continue  # a record whose descriptor could not be passed: nothing to serve
            os.set_inheritable(fds[0], False)
            return socket.socket(fileno=fds[0])

    def close(self) -> None:
        self.give_end.close()
        self.take_end.close()
