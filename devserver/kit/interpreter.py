"""Every use devserver makes of CPython internals, each behind one function with its fallback.

What devserver relies on that Python's documentation does not promise:
a multiprocessing forkserver of its own (warm templates), the resource
tracker's pipe (workers start without a tracker process), asyncio's
transport maker and the sockets' raw accept (the acceptor's fast path),
the C API's asynchronous exceptions (the console interrupts runaway
code), ``sys._getframe`` (the project app's audit hook) and when ``MimeTypes()`` reads the system's
files (the static handler's table), argparse's list of a parser's
options (the settings' layers) and ``sqlite3.connect`` replaced (the
probes' DB-API hook).  Each is reached only here, each
says what it relies on, and each has a fallback for an interpreter where
it is missing or changed: slower or plainer, never wrong.
``tests/test_interpreter_internals.py`` fails loudly when a CPython release
changes one (it checks the internal is there and behaves as relied on),
checks every fallback with the internal taken away, and checks that no
other module of devserver touches a private name of the standard library.

Each function says the CPython versions it was checked on: run on 3.11
(the only one on this machine), read in later sources where said.  In
CPython 3.14 forkserver becomes Linux's default start method: devserver
names its start methods (``spawn`` for workers, ``forkserver`` for
templates), so the default does not change what it does.
"""

from __future__ import annotations

import contextlib
import inspect
import mimetypes
import multiprocessing
import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

if TYPE_CHECKING:
    import argparse
    import asyncio
    from collections.abc import Mapping
    from multiprocessing.process import BaseProcess

# -- warm templates: a forkserver of devserver's own -----------------------------------------------------------

T = TypeVar("T")
_FORKING = threading.Lock()  # one start through an own forkserver at a time: a module global is swapped meanwhile


def own_forkservers() -> bool:
    """True where processes can be forked from a forkserver of devserver's own (a warm template).

    Relies on ``multiprocessing.forkserver``: ``ForkServer()`` makes a
    server independent of the module-wide one, with ``set_forkserver_preload``,
    ``_forkserver_pid`` (None until it starts) and ``_forkserver_alive_fd``
    (the pipe whose closing tells it to exit once the processes forked from
    it have); ``popen_forkserver.Popen._launch`` reaches a server through the
    module global ``connect_to_new_process``, looked up at each start, so
    swapping it for our server's method starts one process through ours.
    Fallback where any of that is missing (or there is no forkserver, as on
    Windows): False, and warm restarts spawn their standbys (slower: each
    imports the app itself; correct).  Checked on CPython 3.11 (run) and in
    3.14's source (its server also checks an authentication key: unchanged
    for us).
    """
    try:
        from multiprocessing import forkserver, popen_forkserver
    except ImportError:
        return False
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    launch = getattr(getattr(popen_forkserver, "Popen", None), "_launch", None)
    if not callable(getattr(forkserver, "connect_to_new_process", None)) or launch is None \
            or "connect_to_new_process" not in getattr(getattr(launch, "__code__", None), "co_names", ()):
        return False
    try:
        probe = forkserver.ForkServer()
    except (AttributeError, TypeError):
        return False
    return all(hasattr(probe, name) for name in
               ("_forkserver_pid", "_forkserver_alive_fd", "set_forkserver_preload", "connect_to_new_process"))


class _ForkServerFields(Protocol):
    """What this module reads and sets of a ``multiprocessing.forkserver.ForkServer``: private fields, here only."""

    _forkserver_pid: int | None
    _forkserver_alive_fd: int | None

    def set_forkserver_preload(self, modules_names: list[str]) -> None: ...

    def connect_to_new_process(self, fds: Sequence[int]) -> tuple[int, int]: ...


class _TrackerFields(Protocol):
    """The private field of ``multiprocessing.resource_tracker``'s tracker this module sets."""

    _fd: int | None


class ForkServer:
    """A forkserver of devserver's own, importing ``preload`` when it starts (only where :func:`own_forkservers`)."""

    def __init__(self, preload: list[str]) -> None:
        from multiprocessing import forkserver

        self._server = cast(_ForkServerFields, forkserver.ForkServer())
        self._server.set_forkserver_preload(preload)
        self.context = multiprocessing.get_context("forkserver")

    @property
    def pid(self) -> int | None:
        """The server's process (None until a start through it started it)."""
        pid: int | None = self._server._forkserver_pid
        return pid

    def start(self, process: BaseProcess, environ: Mapping[str, str]) -> None:
        """Start ``process`` (made by :attr:`context`) forked from this server.

        ``environ`` is in ``os.environ`` while the server itself starts (on
        the first start): the server inherits it, the processes it forks
        later see it too.
        """
        from multiprocessing import forkserver

        with _FORKING:
            saved = forkserver.connect_to_new_process
            forkserver.connect_to_new_process = self._server.connect_to_new_process  # what popen_forkserver calls
            added = environ if self.pid is None else {}
            os.environ.update(added)
            try:
                process.start()
            finally:
                forkserver.connect_to_new_process = saved
                for name in added:
                    os.environ.pop(name, None)

    def release(self) -> None:
        """Let the server go: it exits once the last process forked from it has (no more starts through it)."""
        fd = self._server._forkserver_alive_fd
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
            self._server._forkserver_alive_fd = None


# -- workers without a resource tracker process ----------------------------------------------------------------

_quiet_tracker_fd: int | None = None  # our /dev/null descriptor, once handed to the tracker


def skip_resource_tracker() -> bool:
    """Keep multiprocessing from starting its resource tracker process (~8 MiB, and its start); True if so.

    The tracker unlinks named semaphores and shared memory that crashed
    processes leave behind; devserver makes none (pipes, and a RawValue in
    an anonymous arena).  Spawning a worker would start one anyway and hand
    its pipe to every worker.  Relies on ``resource_tracker._resource_tracker``
    keeping its pipe in ``_fd`` (None until it starts) and on its liveness
    probe ``_check_alive`` taking a pipe it can write to for a running
    tracker: given /dev/null, it never starts one, and 3.13's ``_stop``
    (with no ``_pid``) leaves it alone.  Fallback where the tracker started
    already or its fields differ: False, and it runs as usual (a process
    more; what it would clean up, devserver does not make).  Checked on
    CPython 3.11 (run) and in the 3.13+ source (``__del__`` and ``_stop``).
    """
    global _quiet_tracker_fd
    try:
        from multiprocessing import resource_tracker

        tracker = cast(_TrackerFields, getattr(resource_tracker, "_resource_tracker"))  # noqa: B009 - private
        if _quiet_tracker_fd is not None and getattr(tracker, "_fd", None) == _quiet_tracker_fd:
            return True
        if getattr(tracker, "_fd", 0) is not None or not hasattr(tracker, "_check_alive"):
            return False
        _quiet_tracker_fd = os.open(os.devnull, os.O_WRONLY)
        tracker._fd = _quiet_tracker_fd
        return True
    except (ImportError, AttributeError, OSError):
        return False


# -- the acceptor's transports ---------------------------------------------------------------------------------


class TransportMaker(Protocol):
    """Gives an accepted socket its transport for ``protocol`` (whose ``connection_made`` comes on a later turn)."""

    def __call__(self, sock: socket.socket, protocol: asyncio.Protocol, *, extra: dict[str, object]) -> object: ...


def transport_maker(loop: asyncio.AbstractEventLoop) -> TransportMaker:
    """How the acceptor makes a transport for each socket it accepted on ``loop``.

    Relies on asyncio's selector loop (and proactor loop) method
    ``_make_socket_transport(sock, protocol, waiter=None, *, extra=None,
    server=None)``: it makes the transport at once, with no waiter and no
    task, and schedules ``protocol.connection_made`` with ``call_soon``.  It
    is returned itself, so a connection costs no call of ours.  Fallback on
    a loop without it (uvloop) or where its parameters changed: the public
    ``loop.connect_accepted_socket`` in a task, as ``loop.create_server``
    does it (a task and a future more per connection; the same protocol
    calls).  Checked on CPython 3.11 (run) and in CPython's current source
    (the same signature).
    """
    make = getattr(loop, "_make_socket_transport", None)
    if make is not None and _takes_extra(make):
        return make
    tasks: set[asyncio.Task[object]] = set()  # the loop keeps only weak references to its tasks

    def in_task(sock: socket.socket, protocol: asyncio.Protocol, *, extra: dict[str, object]) -> object:
        task = loop.create_task(loop.connect_accepted_socket(lambda: protocol, sock))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return None

    return in_task


def _takes_extra(make: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(make).parameters
    except (TypeError, ValueError):
        return False
    names = list(parameters)
    extra = parameters.get("extra")
    return names[:2] == ["sock", "protocol"] and extra is not None and extra.kind is extra.KEYWORD_ONLY


class AcceptedSocket(socket.socket):
    """An accepted connection's socket whose ``family`` and ``type`` are plain attributes, the listening socket's.

    ``socket.socket`` makes each an enum member anew on every read (``AddressFamily(2)``: some 7,700
    instructions on CPython 3.11), and every accept reads both of the listening socket, and asyncio's transport
    both of the connection's when it sets it up (``_set_nodelay``): four per connection, about a sixth of what a
    ``Connection: close`` request cost a worker beyond a keep-alive one (~190,000 instructions).  Here they are
    the same enum members, read as attributes.
    """

    __slots__ = ("family", "type")
    family: socket.AddressFamily  # a plain attribute where socket.socket has a property
    type: socket.SocketKind


def accepter(sock: socket.socket) -> Callable[[], tuple[socket.socket, object]]:
    """``sock.accept`` for the acceptor: a connection's socket (an :class:`AcceptedSocket`) and its peer's address.

    Relies on ``socket.socket._accept()``, the C accept that ``accept()``
    wraps: it returns the new descriptor and the address, and ``accept()``
    makes the socket of it with the listening socket's family, type and
    protocol, as done here.  Fallback where it is missing: ``sock.accept``
    itself (the enum members made on each connection: slower, the same
    sockets).  Checked on CPython 3.11 (run) and in CPython's current source
    (the same ``accept``).
    """
    raw = getattr(sock, "_accept", None)
    if not callable(raw) or type(sock).accept is not socket.socket.accept:
        return sock.accept
    family, kind, proto = sock.family, sock.type, sock.proto

    def accept() -> tuple[socket.socket, object]:
        fd, address = raw()
        conn = AcceptedSocket(family, kind, proto, fileno=fd)
        conn.family, conn.type = family, kind
        return conn, address

    return accept


# -- the console: interrupting runaway code --------------------------------------------------------------------


def interrupt_thread(thread_id: int, exception: type[BaseException]) -> bool:
    """Raise ``exception`` in the thread ``thread_id`` at its next bytecode; False where that cannot be done.

    Relies on the C API's ``PyThreadState_SetAsyncExc(unsigned long id,
    PyObject *exc)`` reached through ``ctypes.pythonapi``: it returns how
    many threads it set the exception in (1; 0 for an unknown id; more, the
    documentation says, must be undone by a second call with NULL).  A
    thread blocked in a C call gets it only when the call returns.
    Fallback where there is no ``ctypes.pythonapi`` or no such function
    (PyPy, a build without ctypes): False, and the console's answer says the
    code goes on in its thread.  Checked on CPython 3.11 (run); the
    function's signature has been this one since 3.7.
    """
    try:
        import ctypes

        set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError):
        return False
    changed = set_async_exc(ctypes.c_ulong(thread_id), ctypes.py_object(exception))
    if changed > 1:
        set_async_exc(ctypes.c_ulong(thread_id), None)
    return bool(changed == 1)


# -- inline WSGI calls: the worker's loop hidden from the app -------------------------------------------------


def hides_running_loop() -> bool:
    """Whether :func:`call_without_running_loop` can hide the running loop (False: WSGI calls stay in the pool).

    Relies on ``asyncio.events._get_running_loop`` and ``_set_running_loop``,
    the pair every loop's ``run_forever`` sets its thread's running loop with
    (listed in ``asyncio.events.__all__`` for loops written outside asyncio,
    uvloop's among them).  Fallback where either is missing: False, and
    worker/inline.py runs every call in the pool, as before it existed.
    Checked on CPython 3.11 (run) and read in 3.12 and 3.13.
    """
    return _running_loop_setters() is not None


def _running_loop_setters() -> tuple[Callable[[], object], Callable[[object], None]] | None:
    from asyncio import events  # here, not at the top: the supervisor's start imports no asyncio for this

    get, set_ = getattr(events, "_get_running_loop", None), getattr(events, "_set_running_loop", None)
    return (get, set_) if callable(get) and callable(set_) else None


_setters: tuple[Callable[[], object], Callable[[object], None]] | None = None  # found at the first call


def call_without_running_loop(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on the loop's thread with no running loop, as in a pool thread; the loop is back after.

    Only where :func:`hides_running_loop` said it can.
    """
    global _setters
    if _setters is None:
        _setters = _running_loop_setters()
        assert _setters is not None, "asked without hides_running_loop()"
    get, set_ = _setters
    running = get()
    set_(None)
    try:
        return fn(*args)
    finally:
        set_(running)


# -- the project app's audit hook: whose open was it -----------------------------------------------------------


def frame_from_traceback(depth: int = 0) -> FrameType:
    """The frame ``depth`` calls up from the caller (0: the caller's own), read from a caught exception.

    The fallback of :data:`stack_frame` where there is no ``sys._getframe``
    (an interpreter that does not promise it): slower, the same frame.
    """
    try:
        raise ZeroDivisionError
    except ZeroDivisionError as exc:
        assert exc.__traceback__ is not None
        frame = exc.__traceback__.tb_frame.f_back  # the caller's
    for _ in range(depth):
        assert frame is not None
        frame = frame.f_back
    assert frame is not None
    return frame


# ``sys._getframe(depth)``, documented as a CPython detail "not guaranteed to exist in all implementations": taken
# as it is where it exists (the project app's audit hook calls it on every open), else frame_from_traceback.
# Checked on CPython 3.11 (run).
stack_frame: Callable[[int], FrameType] = getattr(sys, "_getframe", frame_from_traceback)


def on_open(callback: Callable[[tuple[object, ...]], None]) -> None:
    """Call ``callback`` with the arguments of every audited ``open`` (the hook cannot be removed).

    The hook installed is a plain function that passes only "open" on, never a
    bound method: every audited event (a frame's ``f_code`` read,
    ``sys._getframe``: the probes' frame walks) calls each hook, and the
    interpreter looks up ``__cantrace__`` on it, which on a bound method fails
    the slow way (an AttributeError made and dropped, some 4,000 instructions
    an event on CPython 3.11).
    """
    sys.addaudithook(lambda event, args: callback(args) if event == "open" else None)


# -- sqlite3.connect, replaced ---------------------------------------------------------------------------------

def replace_sqlite3_connect(make: Callable[[Callable[..., object]], Callable[..., object]],
                            replace: Callable[[object, str, object], bool]) -> Callable[..., object] | None:
    """Replace ``sqlite3.connect`` by ``make(connect)`` (the probes' DB-API hook: its connections' cursors record
    what a request ran) through ``replace(module, name, value)`` (the probes' one way to replace a library's
    attribute); the replacement, or None where there is no sqlite3.

    sqlite3's connections and cursors are C types that cannot be patched: only its module function can be
    replaced.  Relies on callers looking ``connect`` up on the module when they call it (Django's backend:
    ``Database.connect``, SQLAlchemy's pysqlite: ``dbapi.connect``; ``sqlite3.dbapi2`` holds the same function
    and is replaced with it); a module that took the function itself by name before (``from sqlite3 import
    connect``) keeps the original, and its statements are not recorded: fewer records, never wrong ones.
    Checked on CPython 3.11 (run).
    """
    try:
        import sqlite3
        import sqlite3.dbapi2
    except ImportError:  # built without _sqlite3
        return None
    replacement = make(sqlite3.connect)
    for module in (sqlite3, sqlite3.dbapi2):
        replace(module, "connect", replacement)
    return replacement


# -- the settings: a parser's options ---------------------------------------------------------------------------


def parser_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every option of ``parser`` (its groups' too), in the order they were added: its --help's.

    Relies on ``ArgumentParser._actions``, the list every ``add_argument``
    appends its Action to (a group's adds to its parser's): argparse has no
    public way to list a parser's options.  Fallback where it is gone or no
    longer a list: none are listed, so the settings read no pyproject.toml
    table and no ``DEVSERVER_*`` variable (the command line works as
    before).  Checked on CPython 3.11 (run) and in 3.13's source.
    """
    actions = getattr(parser, "_actions", None)
    return list(actions) if isinstance(actions, list) else []


# -- media types: the built-in table only ----------------------------------------------------------------------


def builtin_mime_types() -> mimetypes.MimeTypes:
    """A ``MimeTypes`` holding Python's built-in table only: the same answers on every machine, no file read.

    Relies on ``MimeTypes()`` calling ``mimetypes.init()`` (which reads the
    system's mime.types files into the module's tables: milliseconds of
    every start) only while the documented flag ``mimetypes.inited`` is
    False; it is set for the construction and put back.  Fallback where the
    flag is gone or no longer consulted: the system's files are read too (a
    slower start; devserver's own table, applied on top, still decides the
    types it names).  Checked on CPython 3.11 (run).
    """
    inited = getattr(mimetypes, "inited", False)
    mimetypes.inited = True
    try:
        return mimetypes.MimeTypes()
    finally:
        mimetypes.inited = inited
