"""The listening sockets: bound before anything slow, one per worker where the kernel spreads connections.

Apart from the supervisor so that the command can bind first: this module
needs only ``socket``, while the supervisor's imports (multiprocessing, the
events) take tens of milliseconds.
"""

from __future__ import annotations

import errno
import socket
import sys


def _resolvable(host: str) -> str | bytes:
    """``host`` for getaddrinfo: an ASCII name or address as bytes, which skips the IDNA codec (and
    unicodedata, stringprep) that a str host loads: milliseconds before the bind, for 127.0.0.1."""
    return host.encode("ascii") if host.isascii() else host


class StartError(OSError):
    """The server cannot start: ``reason`` says why, ``hint`` (may be empty) what to do on the command line.

    ``str()`` is both, meant for the user as is.  An OSError (with the bind's
    ``errno``), so that code driving the server from Python catches it as the
    socket error it is; the Python API raises it without the command-line hint.
    """

    def __init__(self, reason: str, errno: int | None = None, hint: str = "") -> None:
        super().__init__(errno, reason)
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.reason} ({self.hint})" if self.hint else self.reason


def bind(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    """The listening socket, or StartError with a one-line reason."""
    try:
        infos = socket.getaddrinfo(_resolvable(host), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise StartError(f"cannot listen on host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        reasons = {
            errno.EADDRINUSE: (f"port {port} is already in use on {host}", "choose another with --port"),
            errno.EADDRNOTAVAIL: (f"address {where} is not available on this machine", ""),
            errno.EACCES: (f"permission denied to listen on {where}", ""),
        }
        reason, hint = reasons.get(exc.errno or 0, (f"cannot listen on {where}: {exc.strerror}", ""))
        raise StartError(reason, exc.errno, hint) from None
    sock.setblocking(False)
    return sock


# Linux spreads the connections of SO_REUSEPORT sockets evenly over them (by a hash of the
# addresses); BSD and macOS give them all to one, so elsewhere the workers share one socket.
SPREAD_BY_KERNEL = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_for_workers(host: str, port: int, backlog: int, workers: int) -> list[socket.socket]:
    """The listening sockets: one per worker where the kernel spreads connections over them, else one shared.

    With one shared socket every worker's loop wakes for a new connection and
    the first accepts all that are waiting, so a burst of keep-alive
    connections (a browser, a load tester) can all land on one worker for
    their whole life.  With a socket per worker (SO_REUSEPORT) the kernel
    deals each connection to one of them.  The supervisor keeps every socket
    open, so connections dealt to a worker that is being restarted wait in
    its socket's queue for the new one.

    The address is first bound without SO_REUSEPORT: that fails as "already
    in use" if anything listens there (another devserver included), which
    SO_REUSEPORT alone would let through.
    """
    first = bind(host, port, backlog)
    if workers == 1 or not SPREAD_BY_KERNEL:
        return [first]
    port = first.getsockname()[1]
    first.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sockets.append(bind(host, port, backlog, reuse_port=True))
    except StartError:  # the port was taken in the moment between: say so as usual
        for sock in sockets:
            sock.close()
        raise
    return sockets


_bound_early: list[socket.socket] = []  # see bind_early


def bind_early(host: str, port: int, backlog: int, workers: int) -> StartError | None:
    """Bind the listening sockets now, before the slow parts of a start (importing APP to check it).

    From then on a request waits in a backlog for the workers instead of
    being refused.  The next :meth:`Supervisor.start` on this address takes
    these sockets.  Where binding fails, the error is returned: the command
    line lets that start bind again and say why, after its own errors; the
    Python API raises it.
    """
    release_early()
    try:
        keep_early(bind_for_workers(host, port, backlog, workers))
    except StartError as exc:
        return exc
    return None


def keep_early(sockets: list[socket.socket]) -> None:
    """Keep ``sockets`` (bound beforehand, by the Python API's ``bind()``) for the next :meth:`Supervisor.start`."""
    release_early()
    _bound_early[:] = sockets


def release_early() -> None:
    """Close sockets bound by :func:`bind_early` that no supervisor took."""
    while _bound_early:
        _bound_early.pop().close()


def take_early(host: str, port: int, workers: int) -> list[socket.socket]:
    """The sockets :func:`bind_early` bound for this address and number of workers, else none."""
    sockets, _bound_early[:] = list(_bound_early), []
    expected = 1 if workers == 1 or not SPREAD_BY_KERNEL else workers
    try:
        address = sockets[0].getsockname() if sockets else None
    except OSError:
        address = None
    wanted = address is not None and len(sockets) == expected and port in (0, address[1]) \
        and _same_host(host, address[0])
    if not wanted:
        for sock in sockets:
            sock.close()
        return []
    return sockets


def _same_host(host: str, bound: str) -> bool:
    try:
        infos = socket.getaddrinfo(_resolvable(host), None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and infos[0][4][0] == bound
