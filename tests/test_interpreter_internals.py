"""The CPython internals devserver relies on, all in devserver/kit/interpreter.py (issue 21 item 4).

For each internal: a test that fails loudly when a CPython release changes
it (the internal is there and behaves as relied on), and a test that its
fallback works with the internal taken away or changed, with real
processes and sockets.  First, a scan of devserver/ that fails on any other
module touching a private name of the standard library.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import functools
import importlib.util
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import REPO, LiveServer, children_of, http_get

from devserver.debug.failures import Console, FrameStore
from devserver.ipc.control import Evaluate, Evaluated
from devserver.kit import interpreter
from devserver.worker.accept import Acceptor

PACKAGE = REPO / "devserver"
HOME = PACKAGE / "kit" / "interpreter.py"  # the one module allowed to reach into the interpreter
DOCUMENTED = frozenset({("os", "_exit")})  # underscore names the documentation makes public
REPLACEABLE = frozenset({("sys", "stdout"), ("sys", "stderr")})  # globals the documentation lets a program replace
C_API = frozenset({("ctypes", "pythonapi")})  # the interpreter's C functions, called from Python
LINUX = sys.platform.startswith("linux")
DEADLINE = 60.0  # seconds: a busy 2-core machine starts processes slowly

# ---------------------------------------------------------------------------------------- the scan


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined_privates(tree: ast.AST) -> set[str]:
    """Private names a module defines: its functions, classes, module and class names, slots and ``self._x``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            found.add(node.attr)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
            found.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return {name for name in found if private(name)}


@functools.cache
def stdlib_privates(top: str) -> frozenset[str]:
    """The private names the standard library's package or module ``top`` defines (all its submodules)."""
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return frozenset()  # built in, or an extension module: nothing to read
    origin = Path(spec.origin)
    files = sorted(origin.parent.rglob("*.py")) if spec.submodule_search_locations else [origin]
    found: set[str] = set()
    for path in files:
        try:
            found |= defined_privates(ast.parse(path.read_bytes()))
        except (SyntaxError, ValueError):
            continue  # test data of the standard library
    return frozenset(found)


@functools.cache
def devserver_privates() -> frozenset[str]:
    """Private names devserver's own modules define (their objects' fields are theirs to touch)."""
    return frozenset().union(*(defined_privates(ast.parse(p.read_text())) for p in PACKAGE.rglob("*.py") if p != HOME))


def stdlib_bindings(tree: ast.AST) -> dict[str, str]:
    """Local names bound to standard library modules or their objects (``import os``, ``from x import y as z``)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in sys.stdlib_module_names:
                    bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in sys.stdlib_module_names:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def root_of(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def internal_uses(source: str, own: frozenset[str]) -> list[str]:
    """Where ``source`` reaches into the standard library's internals: "line: what", in order.

    * a private attribute of a standard module or of an object imported from one (``resource_tracker._fd``);
    * a standard module's global replaced or deleted (``forkserver.connect_to_new_process = ...``);
    * the C API reached from Python (``ctypes.pythonapi``);
    * on any object, a private name (as an attribute, or a string given to getattr, setattr, hasattr,
      delattr) that a standard module this file imports defines and devserver itself (``own``) does not.
    """
    tree = ast.parse(source)
    bound = stdlib_bindings(tree)
    theirs = frozenset().union(*(stdlib_privates(module.split(".")[0]) for module in bound.values())) - own \
        - defined_privates(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            root = root_of(node)
            module = bound.get(root or "", "")
            dotted = ast.unparse(node)
            if module and private(node.attr) and (module, node.attr) not in DOCUMENTED:
                found.append((node.lineno, f"{dotted}: a private name of {module}"))
            elif module and isinstance(node.ctx, (ast.Store, ast.Del)) and isinstance(node.value, ast.Name) \
                    and (module, node.attr) not in REPLACEABLE:
                found.append((node.lineno, f"{dotted}: a global of {module} replaced"))
            elif module and (module, node.attr) in C_API:
                found.append((node.lineno, f"{dotted}: the C API"))
            elif not module and private(node.attr) and node.attr in theirs:
                found.append((node.lineno, f"{dotted}: {node.attr} is a private name of the standard library"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and private(name.value) \
                    and (name.value in theirs or bound.get(root_of(node.args[0]) or "")):
                found.append((node.lineno, f"{ast.unparse(node)}: {name.value} is a private name of the standard library"))
    return [f"{line}: {what}" for line, what in sorted(set(found))]


def test_no_module_but_the_interpreter_module_touches_a_private_of_the_standard_library() -> None:
    own = devserver_privates()
    found = {str(path.relative_to(REPO)): uses for path in sorted(PACKAGE.rglob("*.py")) if path != HOME
             for uses in [internal_uses(path.read_text(), own)] if uses}
    assert found == {}, "move these into devserver/kit/interpreter.py, behind a function with its fallback:\n" + \
        "\n".join(f"{path}:{use}" for path, uses in found.items() for use in uses)


# Each use as it stood in devserver's own modules before interpreter.py held them (870806e): the scan finds it.
BEFORE = {
    "forktemplate": ('''
from multiprocessing import forkserver as mp_forkserver

class Template:
    def start(self):
        saved = mp_forkserver.connect_to_new_process
        mp_forkserver.connect_to_new_process = self.server.connect_to_new_process
        starting = self.server._forkserver_pid is None
''', ["mp_forkserver.connect_to_new_process: a global of multiprocessing.forkserver replaced",
      "self.server._forkserver_pid: _forkserver_pid is a private name of the standard library"]),
    "supervisor": ('''
import os

def _without_resource_tracker():
    from multiprocessing import resource_tracker

    tracker = resource_tracker._resource_tracker
    if getattr(tracker, "_fd", 0) is None and hasattr(tracker, "_check_alive"):
        setattr(tracker, "_fd", os.open(os.devnull, os.O_WRONLY))
''', ["resource_tracker._resource_tracker: a private name of multiprocessing.resource_tracker",
      "hasattr(tracker, '_check_alive'): _check_alive is a private name of the standard library"]),
    "accept": ('''
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

def _transport_maker(loop):
    make = getattr(loop, "_make_socket_transport", None)
''', ["getattr(loop, '_make_socket_transport', None): _make_socket_transport is a private name of the standard "
      "library"]),
    "project": ('''
import sys

def _audit(self, event, args):
    self._opened(sys._getframe(1), *args)
''', ["sys._getframe: a private name of sys"]),
    "static": ('''
import mimetypes

_inited, mimetypes.inited = mimetypes.inited, True
''', ["mimetypes.inited: a global of mimetypes replaced"]),
    "framestore": ('''
def _interrupt(thread_id):
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(EvaluationTimeout))
''', ["ctypes.pythonapi: the C API"]),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_the_scan_finds_each_internal_devserver_used_in_its_own_modules(name: str) -> None:
    source, expected = BEFORE[name]
    found = [use.split(": ", 1)[1] for use in internal_uses(source, devserver_privates())]
    assert all(any(want in use for use in found) for want in expected), found


def test_the_scan_leaves_public_names_and_devservers_own_privates_alone() -> None:
    source = '''
import os, sys
from multiprocessing import forkserver

class Slot:
    def __init__(self):
        self._fd = 3

def done(slot, app):
    os._exit(0)
    sys.stdout = sys.stderr
    forkserver.set_forkserver_preload([])
    return slot._fd, getattr(app, "_error_handlers", None), os.environ["HOME"]
'''
    assert internal_uses(source, frozenset()) == []  # slot._fd: the file defines it itself


# ------------------------------------------------------------------------- warm templates: own forkservers

needs_forkserver = pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                                      reason="no forkserver on this platform: templates are off by design")


def ppid_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def environ_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [entry.split(b"=", 1) for entry in f.read().split(b"\0") if b"=" in entry]
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def wait_until(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def server_exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done != 0


def test_forkservers_of_our_own_are_there_wherever_multiprocessing_has_forkservers() -> None:
    # Fails when a CPython release changes ForkServer's fields or how popen_forkserver reaches the server.
    assert interpreter.own_forkservers() == ("forkserver" in multiprocessing.get_all_start_methods()), \
        "multiprocessing's forkserver changed (see interpreter.own_forkservers): warm templates are off, standbys spawn"


@needs_forkserver
@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_a_process_started_through_an_own_forkserver_is_forked_by_it_and_the_server_exits_when_released() -> None:
    from multiprocessing import forkserver

    module_wide = forkserver.connect_to_new_process
    server = interpreter.ForkServer(["json"])
    assert server.pid is None  # not started until the first process
    process = server.context.Process(target=time.sleep, args=(60,), name="internals-forked")
    server.start(process, {"DEVSERVER_INTERNALS_TEST": "template-env"})
    try:
        assert server.pid is not None and server.pid != process.pid
        assert ppid_of(process.pid) == server.pid  # forked by our server, not by the module-wide one
        assert environ_of(server.pid).get("DEVSERVER_INTERNALS_TEST") == "template-env"  # it started with it
        assert "DEVSERVER_INTERNALS_TEST" not in os.environ  # ... and only it
        assert forkserver.connect_to_new_process == module_wide  # the module global is back
        second = server.context.Process(target=time.sleep, args=(60,), name="internals-forked-2")
        server.start(second, {"DEVSERVER_INTERNALS_TEST": "not read"})
        assert ppid_of(second.pid) == server.pid and "DEVSERVER_INTERNALS_TEST" not in os.environ
        second.terminate()
        second.join(DEADLINE)
        assert second.exitcode == -15  # its exit status came back through our server
        server.release()
        assert not server_exited(server.pid)  # the last process forked from it still runs
    finally:
        process.terminate()
        process.join(DEADLINE)
    wait_until(lambda: server_exited(server.pid), "the released forkserver to exit")


HELLO = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello one"]
'''
CHANGED_FORKSERVER = '''
# As a CPython release whose forkserver no longer reaches its server through this module global would be.
from multiprocessing import forkserver

del forkserver.connect_to_new_process
'''


@pytest.fixture
def hello_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "hello.py").write_text(HELLO.lstrip())
    return project


def server_env(*first: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, first), str(REPO)]))


def body(live: LiveServer) -> bytes:
    return http_get(live, "/", timeout=DEADLINE)[2]


def restart_once(project: Path, env: dict[str, str]) -> str:
    """Serve ``hello:application`` with --reload restart, edit it, and return the warm restart's log line."""
    live = LiveServer(["--workers", "2", "--reload", "restart", "hello:application"], project, env).start(DEADLINE)
    try:
        assert body(live) == b"hello one"
        mark = len(live.lines)
        app = project / "hello.py"
        app.write_text(app.read_text().replace("hello one", "hello two"))
        line = live.wait_for(r"warm restart \(--reload=restart\): 2 new worker\(s\)", DEADLINE, start=mark)
        assert [body(live) for _ in range(6)] == [b"hello two"] * 6  # the new workers, and only they, answer
        return line
    finally:
        live.stop()


@needs_forkserver
def test_a_warm_restart_forks_its_workers_from_the_template(hello_project: Path) -> None:
    assert "forked from the warm template, ready" in restart_once(hello_project, server_env())


@needs_forkserver
def test_with_the_forkserver_internals_changed_a_warm_restart_spawns_its_workers_and_serves(hello_project: Path,
                                                                                             tmp_path: Path) -> None:
    changed = tmp_path / "changed-python"
    changed.mkdir()
    (changed / "sitecustomize.py").write_text(CHANGED_FORKSERVER.lstrip())  # imported by every process at its start
    line = restart_once(hello_project, server_env(changed))
    assert "2 new worker(s) started, ready" in line, line


# ------------------------------------------------------------------- workers without a resource tracker

TRACKER_SCRIPT = '''
import json, multiprocessing, os, sys
from multiprocessing import resource_tracker
from devserver.kit import interpreter

if sys.argv[1] == "changed":  # as a CPython release whose tracker no longer probes its pipe this way
    del resource_tracker.ResourceTracker._check_alive
skipped = interpreter.skip_resource_tracker()
again = interpreter.skip_resource_tracker()
process = multiprocessing.get_context("spawn").Process(target=os.getpid)
process.start()
process.join()
print(json.dumps({"skipped": skipped, "again": again, "exitcode": process.exitcode}), flush=True)
sys.stdin.read()  # the test looks at this process's children meanwhile
'''


def tracker_run(how: str) -> tuple[dict[str, object], list[str]]:
    """Run TRACKER_SCRIPT: what it printed, and the command lines of its children once its spawned process ended."""
    script = subprocess.Popen([sys.executable, "-c", TRACKER_SCRIPT, how], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=server_env())
    try:
        assert script.stdout is not None and script.stdin is not None
        result = json.loads(script.stdout.readline())
        commands = []
        for child in children_of(script.pid):
            with open(f"/proc/{child}/cmdline", "rb") as f:
                commands.append(f.read().replace(b"\0", b" ").decode())
        script.stdin.close()
        assert script.wait(DEADLINE) == 0
        return result, commands
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_spawning_starts_no_resource_tracker_once_it_is_skipped() -> None:
    result, children = tracker_run("as is")
    assert result == {"skipped": True, "again": True, "exitcode": 0}
    assert not [c for c in children if "resource_tracker" in c], children


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_with_the_tracker_internals_changed_it_runs_as_usual_and_spawning_works() -> None:
    result, children = tracker_run("changed")
    assert result == {"skipped": False, "again": False, "exitcode": 0}
    assert [c for c in children if "resource_tracker" in c], children  # the tracker, as multiprocessing starts it


# ------------------------------------------------------------------------------------ the acceptor


class Echo(asyncio.Protocol):
    """Answers each connection's first bytes with themselves and closes (a ``Connection: close`` client's exchange)."""

    made: list[Echo] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        Echo.made.append(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"echo " + data)
        self.transport.close()


class ChangedLoop(asyncio.SelectorEventLoop):
    """A loop whose transport maker took a new shape, as a CPython release could give it (``extra`` renamed)."""

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra_info=None, server=None):
        return super()._make_socket_transport(sock, protocol, waiter, extra=extra_info, server=server)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def exchange_all(port: int, count: int, answers: list[bytes]) -> None:
    for n in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as client:
            client.sendall(b"ping %d" % n)
            received = b""
            while chunk := client.recv(4096):
                received += chunk
            answers.append(received)


async def turns_until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0)


def serve_through_acceptor(loop: asyncio.AbstractEventLoop, sock: socket.socket, count: int) -> list[bytes]:
    """Accept ``count`` connections, one at a time as a Connection: close client makes them, with an Acceptor."""
    Echo.made = []
    acceptor = Acceptor(loop, sock, Echo, batch=16)
    answers: list[bytes] = []
    client = threading.Thread(target=exchange_all, args=(sock.getsockname()[1], count, answers))

    async def run() -> None:
        acceptor.start()
        client.start()
        while client.is_alive():
            await asyncio.sleep(0.01)
        acceptor.stop()

    loop.run_until_complete(asyncio.wait_for(run(), DEADLINE))
    client.join()
    return answers


def test_the_loops_transport_maker_is_used_as_it_is_and_makes_the_protocol_on_the_next_turn(
        listening: socket.socket) -> None:
    loop = asyncio.new_event_loop()
    try:
        make = interpreter.transport_maker(loop)
        assert make == loop._make_socket_transport  # the fast path: no call of ours
        client = socket.create_connection(listening.getsockname())
        conn, peer = listening.accept()
        conn.setblocking(False)
        Echo.made = []
        protocol = Echo()
        transport = make(conn, protocol, extra={"peername": peer})
        assert Echo.made == []  # connection_made comes on the loop's next turn, as under a server
        loop.run_until_complete(asyncio.sleep(0))
        assert Echo.made == [protocol] and protocol.transport is transport
        assert transport.get_extra_info("peername") == client.getsockname()
        client.sendall(b"hi")
        client.settimeout(DEADLINE)
        loop.run_until_complete(asyncio.wait_for(turns_until(transport.is_closing), DEADLINE))  # answered, closed
        assert client.recv(100) == b"echo hi"
        client.close()
    finally:
        loop.close()


def test_the_acceptor_serves_every_connection_on_asyncios_loop(listening: socket.socket) -> None:
    loop = asyncio.new_event_loop()
    try:
        answers = serve_through_acceptor(loop, listening, 20)
    finally:
        loop.close()
    assert answers == [b"echo ping %d" % n for n in range(20)]


def test_with_the_transport_maker_changed_the_acceptor_falls_back_to_the_public_api_and_serves(
        listening: socket.socket) -> None:
    loop = ChangedLoop()
    try:
        assert interpreter.transport_maker(loop) != loop._make_socket_transport  # the fallback: in a task
        answers = serve_through_acceptor(loop, listening, 20)
    finally:
        loop.close()
    assert answers == [b"echo ping %d" % n for n in range(20)]
    assert [p.transport.get_extra_info("peername")[0] for p in Echo.made] == ["127.0.0.1"] * 20


def test_an_accepted_socket_is_the_one_accept_makes_with_its_family_and_type_read_as_attributes(
        listening: socket.socket) -> None:
    accept = interpreter.accepter(listening)
    assert accept != listening.accept  # the fast path: the raw accept
    client = socket.create_connection(listening.getsockname(), timeout=DEADLINE)
    try:
        conn, address = accept()
        with conn:
            assert isinstance(conn, socket.socket) and address == client.getsockname() == conn.getpeername()
            # The listening socket's enum members, the same as the kernel's values the properties convert.
            assert conn.family is socket.AF_INET and conn.type is socket.SOCK_STREAM
            assert (socket.socket.family.__get__(conn), socket.socket.type.__get__(conn)) == (conn.family, conn.type)
            assert conn.proto == listening.proto and conn.gettimeout() is None  # blocking, as accept() makes it
            client.sendall(b"ping")
            assert conn.recv(10) == b"ping"
    finally:
        client.close()


class WithoutRawAccept(socket.socket):
    """A socket without the C accept ``socket.accept`` wraps, as another interpreter could have it."""

    _accept = None  # type: ignore[assignment]

    def accept(self) -> tuple[socket.socket, object]:
        fd, address = socket.socket._accept(self)  # what accept() is, reached only here
        return socket.socket(self.family, self.type, self.proto, fileno=fd), address


def test_without_the_raw_accept_the_acceptor_accepts_with_accept_itself_and_serves() -> None:
    loop = asyncio.new_event_loop()
    sock = WithoutRawAccept(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert interpreter.accepter(sock) == sock.accept  # the fallback
        answers = serve_through_acceptor(loop, sock, 20)
    finally:
        sock.close()
        loop.close()
    assert answers == [b"echo ping %d" % n for n in range(20)]


# ---------------------------------------------------------------------------- the console's interrupt


class Interrupted(BaseException):
    pass


def spin(stop: threading.Event, caught: list[BaseException]) -> None:
    try:
        while not stop.is_set():
            pass
    except Interrupted as exc:
        caught.append(exc)


def test_a_spinning_thread_is_interrupted_with_the_exception_given() -> None:
    stop, caught = threading.Event(), []
    spinner = threading.Thread(target=spin, args=(stop, caught), daemon=True)
    spinner.start()
    try:
        assert spinner.ident is not None and interpreter.interrupt_thread(spinner.ident, Interrupted)
        spinner.join(DEADLINE)
        assert not spinner.is_alive() and len(caught) == 1 and type(caught[0]) is Interrupted
    finally:
        stop.set()
    assert interpreter.interrupt_thread(0, Interrupted) is False  # no such thread: nothing was set


# ------------------------------------------------------------------- inline WSGI calls: the loop hidden


def test_a_call_without_the_running_loop_sees_none_can_run_a_loop_of_its_own_and_the_loop_is_back_after() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        def view() -> str:
            with pytest.raises(RuntimeError):
                asyncio.get_running_loop()
            return asyncio.run(asyncio.sleep(0, "its own loop"))  # refused while a loop runs in the thread

        def failing() -> None:
            raise KeyError("the app's")

        assert interpreter.hides_running_loop()
        assert interpreter.call_without_running_loop(view) == "its own loop"
        assert asyncio.get_running_loop() is loop
        with pytest.raises(KeyError):
            interpreter.call_without_running_loop(failing)
        assert asyncio.get_running_loop() is loop

    asyncio.run(main())


def test_without_the_running_loop_setters_no_loop_is_said_to_be_hidable(monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncio import events

    monkeypatch.delattr(events, "_set_running_loop")  # as on a Python that renamed it
    assert interpreter.hides_running_loop() is False  # and worker/inline.py then calls every app in the pool


def failure_holding(stop: threading.Event) -> BaseException:
    def view(stop: threading.Event) -> None:
        raise ValueError("view failed")

    try:
        view(stop)
    except ValueError as exc:
        return exc
    raise AssertionError("did not raise")


def test_without_the_c_api_the_console_says_runaway_code_goes_on_and_it_does(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    monkeypatch.delattr(ctypes, "pythonapi")  # as on an interpreter with no C API to reach (PyPy)
    assert interpreter.interrupt_thread(threading.get_ident(), Interrupted) is False
    stop = threading.Event()
    store = FrameStore(limit=1)
    store.keep("r1", failure_holding(stop))
    answers: list[Evaluated] = []
    console = Console(store, answers.extend, limit=0.2)
    try:
        console.on_evaluate(Evaluate(7, "r1", -1, "while not stop.is_set(): pass"))
        wait_until(lambda: answers, "the console's answer")
        assert answers == [Evaluated(7, error="timed out after 0.2 s; it could not be interrupted and goes on in a "
                                              "background thread of the worker (this Python cannot interrupt a thread)")]
        assert any(t.name == "devserver-console-eval" for t in threading.enumerate())  # it does go on
    finally:
        stop.set()
    wait_until(lambda: not any(t.name == "devserver-console-eval" for t in threading.enumerate()),
               "the evaluation to end once its loop condition changed")


# ------------------------------------------------------------------ the audit hook's frame, media types


def opener() -> tuple[str, str]:
    def hook() -> tuple[str, str]:
        return interpreter.stack_frame(0).f_code.co_name, interpreter.stack_frame(1).f_code.co_name

    return hook()


def opener_by_traceback() -> tuple[str, str]:
    def hook() -> tuple[str, str]:
        return interpreter.frame_from_traceback(0).f_code.co_name, interpreter.frame_from_traceback(1).f_code.co_name

    return hook()


def test_the_stack_frame_is_sys_getframe_itself_and_counts_up_from_its_caller() -> None:
    assert interpreter.stack_frame is sys._getframe  # CPython has it: no call of ours on every open
    assert opener() == ("hook", "opener")


def test_without_sys_getframe_the_frames_come_from_a_traceback_and_are_the_same() -> None:
    assert opener_by_traceback() == ("hook", "opener_by_traceback")


MIME_SCRIPT = '''
import json, mimetypes, sys
from devserver.kit import interpreter

mimetypes.knownfiles = [sys.argv[1]]  # a system table with a type of its own
if sys.argv[2] == "changed":  # as a CPython release whose MimeTypes() reads the system's files whatever the flag says
    real = mimetypes.MimeTypes.__init__
    def reads_always(self, *args, **kwargs):
        real(self, *args, **kwargs)
        for name in mimetypes.knownfiles:
            self.read(name)
    mimetypes.MimeTypes.__init__ = reads_always
types = interpreter.builtin_mime_types()
print(json.dumps({"own": types.guess_type("a.devservertest")[0], "html": types.guess_type("a.html")[0],
                  "inited": getattr(mimetypes, "inited", "gone")}))
'''


def mime_run(tmp_path: Path, how: str) -> dict[str, object]:
    table = tmp_path / "mime.types"
    table.write_text("application/x-devserver-test devservertest\n")
    run = subprocess.run([sys.executable, "-c", MIME_SCRIPT, str(table), how], capture_output=True, text=True,
                         env=server_env(), timeout=DEADLINE)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_built_in_media_types_read_no_system_file_and_leave_the_flag_as_it_was(tmp_path: Path) -> None:
    assert mime_run(tmp_path, "as is") == {"own": None, "html": "text/html", "inited": False}


def test_with_the_flag_no_longer_consulted_the_media_types_come_with_the_systems_table_too(tmp_path: Path) -> None:
    assert mime_run(tmp_path, "changed") == {"own": "application/x-devserver-test", "html": "text/html",
                                             "inited": False}


# -- the settings: a parser's options ---------------------------------------------------------------------------


def test_a_parsers_actions_are_every_option_its_groups_too_in_the_order_added() -> None:
    parser = argparse.ArgumentParser()
    first = parser.add_argument("--first")
    grouped = parser.add_argument_group("more").add_argument("--grouped", action="store_true")
    listed = interpreter.parser_actions(parser)
    assert listed[1:] == [first, grouped] and listed[0].dest == "help"  # argparse's own --help comes first


def test_where_a_parser_keeps_no_actions_list_no_option_is_a_setting_and_nothing_fails() -> None:
    from devserver.settings.options import options_of

    parser = argparse.ArgumentParser()
    parser.add_argument("--workers")
    del vars(parser)["_actions"]  # as a release that keeps them elsewhere would have it
    assert interpreter.parser_actions(parser) == [] and options_of(parser) == ()


# -- sqlite3.connect, replaced -----------------------------------------------------------------------------------


def test_sqlite3_connect_is_replaced_on_both_names_callers_look_it_up_by(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3
    import sqlite3.dbapi2

    made: list[str] = []

    def make(connect: Callable[..., object]) -> Callable[..., object]:
        def recording(*args: object, **kwargs: object) -> object:
            made.append(str(args[0]))
            return connect(*args, **kwargs)
        return recording

    monkeypatch.setattr(sqlite3, "connect", sqlite3.connect)  # put back at the end
    monkeypatch.setattr(sqlite3.dbapi2, "connect", sqlite3.dbapi2.connect)
    replaced: list[tuple[object, str]] = []

    def replace(owner: object, name: str, value: object) -> bool:
        replaced.append((owner, name))
        setattr(owner, name, value)
        return True

    replacement = interpreter.replace_sqlite3_connect(make, replace)
    assert replaced == [(sqlite3, "connect"), (sqlite3.dbapi2, "connect")]
    assert replacement is not None and sqlite3.connect is replacement and sqlite3.dbapi2.connect is replacement
    with contextlib.closing(sqlite3.connect(":memory:")) as connection:  # as Django's backend calls it: Database.connect
        assert connection.execute("SELECT 41 + 1").fetchone() == (42,)
    assert made == [":memory:"]


def test_an_open_hook_hears_every_open_and_no_other_audited_event() -> None:
    # In a child: an audit hook cannot be removed from this process.
    program = (
        "import sys\n"
        "from devserver.kit import interpreter\n"
        "heard = []\n"
        "interpreter.on_open(heard.append)\n"
        "sys._getframe().f_code\n"  # two audited events that are not an open
        "open(sys.argv[1]).close()\n"
        "print(repr([args[0] for args in heard]))\n"
    )
    done = subprocess.run([sys.executable, "-c", program, __file__], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert ast.literal_eval(done.stdout) == [__file__]
