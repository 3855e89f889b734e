"""Shared fixtures: a real devserver in a subprocess, and a raw HTTP client."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from textual.pilot import Pilot

REPO = Path(__file__).resolve().parent.parent
FIXTURE_APPS = Path(__file__).resolve().parent / "fixtureapps"
T = TypeVar("T")
LISTENING = re.compile(r'listening on (https?://\S+/)|"state": "listening", "url": "(https?://\S+/)"')


def wait_until(condition: Callable[[], T], timeout: float = 10.0,
               what: str | Callable[[], str] = "the condition") -> T:
    """Poll ``condition`` until it returns something true, and return that; fail naming ``what`` after ``timeout``.

    The way a test waits for something to happen: never a fixed sleep, which passes without
    testing anything when the thing is late, and wastes the time when it is early.  ``what`` may
    be a function, for a message that says how things stood when the time ran out.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what if isinstance(what, str) else what()}: not reached within {timeout:g} s")
        time.sleep(0.01)


def does_not_block(call: Callable[[], object], deadline: float = 30.0) -> None:
    """Run ``call`` in a thread and fail if it has not returned by ``deadline``; its exception is raised here.

    For what must never wait on a reader that is not reading: a call that blocks would block for ever,
    so a generous deadline tells the two apart on any machine, where bounding the duration would not.
    """
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(deadline)
    assert not thread.is_alive(), f"{getattr(call, '__name__', 'the call')} blocked (still running after {deadline:g} s)"
    if raised:
        raise raised[0]


class LiveServer:
    """``python -m devserver --no-tui`` on port 0, stopped by its pid at the end.

    The console log is collected line by line in ``lines`` so tests can wait
    for the events the server printed.
    """

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 preexec: Callable[[], None] | None = None) -> None:
        self.args = args
        self.preexec = preexec  # run in the child before exec (lower a limit, drop a capability)
        self.cwd = cwd
        self.env = env
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.port = 0
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> LiveServer:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["COLUMNS"] = "250"
        cmd = [sys.executable, "-m", "devserver", "--no-tui", "--port", "0", *self.args]
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1, preexec_fn=self.preexec)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = LISTENING.search(line)
                if match:
                    self.url = match.group(1) or match.group(2)
                    self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
                    return self
            if self.proc.poll() is not None:
                self._reader.join(5)  # it ends at the output's end: every line the server wrote is in the message
                raise RuntimeError("devserver exited early:\n" + "\n".join(self.lines))
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("devserver did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 10.0, start: int = 0) -> str:
        """The first log line from index ``start`` matching ``pattern`` (regex)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if regex.search(line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {pattern!r}; log:\n" + "\n".join(self.lines[-40:]))

    def worker_pids(self) -> list[int]:
        """Pids of the live workers, from the console's worker lines."""
        alive: dict[int, int] = {}
        for line in list(self.lines):
            match = re.search(r"worker (\d+) pid (\d+) (\w+)", line)
            if match:
                index, pid, state = int(match.group(1)), int(match.group(2)), match.group(3)
                if state in ("started", "restarted"):
                    alive[index] = pid
                elif alive.get(index) == pid:
                    del alive[index]
        return [alive[i] for i in sorted(alive)]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in children_of(self.proc.pid):
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(5)
            raise

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return sock


def http_get(server: LiveServer, path: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` on a fresh connection: status, headers (lower-case names) and body."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def proc_stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, name, the fields after the name: state, ppid, pgrp...) of every process, from /proc/PID/stat."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        yield int(entry), head.split("(", 1)[1], rest.split()


def children_of(pid: int) -> list[int]:
    """Direct child process ids of ``pid`` (from /proc)."""
    return [child for child, _, fields in proc_stats() if int(fields[1]) == pid]


def client_connections(pid: int) -> int:
    """TCP connections (not listening sockets) the process ``pid`` holds open, from /proc."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            held.add(link[8:-1])
    connected = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in list(f)[1:]:
                fields = row.split()
                if fields[3] != "0A":  # 0A: LISTEN
                    connected.add(fields[9])
    return len(held & connected)


def pid_exists(pid: int) -> bool:
    """True while ``pid`` is a process, zombies included (a zombie is a leak too)."""
    return os.path.exists(f"/proc/{pid}")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of tiny fixture site: html_page/ with files, dynamic/ with fixture apps."""
    root = tmp_path / "html_page"
    root.mkdir()
    (root / "index.html").write_text("<!DOCTYPE html><html><body><h1>fixture index</h1></body></html>\n")
    (root / "one_k.txt").write_bytes(b"x" * 1024)
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    dynamic = tmp_path / "dynamic"
    dynamic.mkdir()
    for app in FIXTURE_APPS.glob("*.py"):
        (dynamic / app.name).write_text(app.read_text())
    return tmp_path


@pytest.fixture
def server_factory(site: Path) -> Iterator:
    """Start devservers on the fixture site; all are stopped at the end."""
    started: list[LiveServer] = []

    def start(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> LiveServer:
        server = LiveServer(list(args), cwd or site, env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory) -> LiveServer:
    """One devserver with a single worker on the fixture site."""
    return server_factory("--workers", "1")


def http_exchange(sock: socket.socket, data: bytes, responses: int = 1, timeout: float = 10.0) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``data`` and read ``responses`` responses with h11 (an independent parser)."""
    sock.settimeout(timeout)
    sock.sendall(data)
    method = data.split(b" ", 1)[0]
    return read_responses(sock, responses, method if method == b"HEAD" else b"GET")


@contextmanager
def held_in_app(server: LiveServer, name: str = "held") -> Iterator[list[tuple[int, dict[str, str], bytes]]]:
    """A request to the fixture app slow.py, in the app for the length of the ``with`` block.

    On entry the request is known to have reached the app (it wrote a file); on exit it is let go
    (the test writes one) and its response is in the yielded list, which stays empty until then: a test
    can check that other requests are answered while this one is in flight, in order, with no timing.
    """
    started, release = server.cwd / f"{name}-started", server.cwd / f"{name}-release"
    answer: list[tuple[int, dict[str, str], bytes]] = []
    target = f"/slow.py?s=60&started={started.name}&until={release.name}"

    def ask() -> None:
        with server.connect(timeout=60) as sock:
            answer.extend(http_exchange(sock, f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode(), timeout=60))

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    try:
        wait_until(started.exists, 20, "the held request reaching the app")
        yield answer
    finally:
        release.write_text("go")
        thread.join(60)
    assert [(status, body) for status, _, body in answer] == [(200, b"released")], answer


def read_responses(sock: socket.socket, count: int, method: bytes = b"GET") -> list[tuple[int, dict[str, str], bytes]]:
    import h11

    conn = h11.Connection(h11.CLIENT)
    # h11 needs to know a request was sent to read a response.
    results = []
    for _ in range(count):
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        status = 0
        headers: dict[str, str] = {}
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        results.append((status, headers, bytes(body)))
        if conn.our_state is h11.MUST_CLOSE or conn.their_state in (h11.MUST_CLOSE, h11.CLOSED):
            break
        conn.start_next_cycle()
    return results


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as the end)."""
    chunks = []
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        chunks.append(piece)
    return b"".join(chunks)


def raw(server: LiveServer, data: bytes, timeout: float = 10.0, half_close: bool = False) -> bytes:
    """Send ``data`` on a fresh connection; return all the server sends until it closes.

    ``half_close`` shuts our sending side after the data: the server then
    knows no more is coming and must answer or close at once.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_all(sock)


async def until(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Let a dashboard under Pilot run until ``condition()`` holds (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await pilot.pause(0.02)


@contextmanager
def dashboard_over(config: Any) -> Iterator[tuple[Any, int]]:
    """A dashboard fed by a real supervisor on ``config``, as tui.run starts them: (the app, the port)."""
    from devserver.ipc.events import ServerEvent
    from devserver.supervisor.core import Supervisor
    from tui.app import DashboardApp

    app = DashboardApp(config, None, drain_interval=0.0)
    supervisor = Supervisor(config, sink=app.feed)
    app.control = supervisor
    supervisor.start()
    try:
        app.feed([ServerEvent(time.time(), "listening", url=supervisor.config.url)])
        yield app, supervisor.config.port
    finally:
        supervisor.stop()
