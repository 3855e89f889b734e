"""The real ``devserver`` command in a real terminal (tmux), driven by keys.

These tests start ``devserver`` inside a detached tmux session on a private
socket (``tmux -L <unique>``), talk to it over HTTP with ``http.client``,
read the screen with ``tmux capture-pane -p`` and type with ``send-keys``.
They check what the Pilot tests cannot: the entry-point lookup, the terminal
driver, the supervisor feeding the app across threads and processes, and a
clean shutdown that leaves no process or zombie behind.

The tmux server is always killed at the end, and any devserver process that
outlived a test is killed by its pid (never by name).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
    pytest.mark.timeout(60),
]

COLUMNS, ROWS = 160, 48
HOST = "127.0.0.1"


def devserver_argv() -> list[str]:
    """The installed ``devserver`` script next to this interpreter (else ``python -m devserver``)."""
    script = Path(sys.executable).with_name("devserver")
    if script.exists():
        return [str(script)]
    found = shutil.which("devserver")
    return [found] if found else [sys.executable, "-m", "devserver"]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of ``pid`` from /proc, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """``pid`` and every live descendant, as {pid: start time} (from /proc)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None:
            children.setdefault(stat[1], []).append(int(entry))
            starts[int(entry)] = stat[2]
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        if current in starts:
            found[current] = starts[current]
            todo.extend(children.get(current, []))
    return found


def get(port: int, path: str) -> int:
    """GET ``path`` on a fresh connection; the status (the body is read and dropped)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class Tmux:
    """One private tmux server (its own socket) holding one 160x48 window."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket = f"devserver-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.socket_path = ""
        self.started: dict[int, int] = {}
        """Processes seen under the pane, {pid: start time}: killed at the end if still there."""

    def run(self, *args: str, check: bool = True) -> str:
        # env=os.environ on purpose: importing readline (pytest does, through pdb) puts COLUMNS=80 and
        # LINES=24 into the C environment that children inherit by default, and the tmux server
        # would hand them to devserver, whose terminal size they override.
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10,
                              env=dict(os.environ), check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, argv: list[str], cwd: Path, size: tuple[int, int] = (COLUMNS, ROWS)) -> None:
        """Run ``argv`` in a new detached session; the pane stays after it exits (to read its status)."""
        env = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        env_args = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
        # A config of our own: nothing from ~/.tmux.conf, and the pane stays once its process exits.
        conf = self.workdir / "tmux.conf"
        conf.write_text("set-option -g remain-on-exit on\nset-option -g history-limit 2000\n")
        self.run("-f", str(conf), "new-session", "-d", "-x", str(size[0]), "-y", str(size[1]), "-c", str(cwd),
                 *env_args, "exec " + shlex.join(argv))
        self.socket_path = self.run("display-message", "-p", "#{socket_path}").strip()

    @property
    def pane_pid(self) -> int:
        return int(self.run("display-message", "-p", "#{pane_pid}").strip())

    def exit_status(self) -> str | None:
        """None while the pane's process runs; then ``"status N"`` or ``"signal N"``."""
        fields = self.run("display-message", "-p", "#{pane_dead} #{pane_dead_status} #{pane_dead_signal} #{pid}")
        dead, status, signum, server = (fields.rstrip("\n").split(" ") + ["", "", "", ""])[:4]
        if status:
            return f"status {status}"
        if signum:
            return f"signal {signum}"
        if dead == "1" and server.isdigit():
            # The terminal closed but tmux has not reaped the process yet.  Debian's tmux uses
            # libutempter, whose helper briefly replaces tmux's SIGCHLD handler right when the
            # pane's terminal closes: a child exiting in that window stays a zombie of tmux for
            # good (tmux/tmux#311).  A SIGCHLD to our own tmux server makes it reap and record.
            os.kill(int(server), signal.SIGCHLD)
        return None

    def wait_exit(self, timeout: float = 20.0) -> str:
        """The exit of the pane's process (see :meth:`exit_status`), waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while (status := self.exit_status()) is None:
            if time.monotonic() > deadline:
                raise AssertionError("the pane's process did not exit; screen:\n" + self.screen())
            time.sleep(0.1)
        return status

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-J")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", *keys)

    def wait_screen(self, condition: Callable[[str], bool], what: str, timeout: float = 15.0) -> str:
        """Poll the screen until ``condition(screen)`` holds; fail showing the last screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{screen}")
            time.sleep(0.1)

    def remember_processes(self) -> dict[int, int]:
        """Record every process under the pane now (for the checks and the cleanup)."""
        found = descendants(self.pane_pid)
        self.started.update(found)
        return found

    def close(self) -> None:
        """Kill the tmux server, then any remembered process still alive (same pid and start time)."""
        self.run("kill-server", check=False)
        if self.socket_path:  # tmux leaves its socket file behind
            Path(self.socket_path).unlink(missing_ok=True)
        deadline = time.monotonic() + 5
        for pid, start in self.started.items():
            while time.monotonic() < deadline and _alive(pid, start):
                time.sleep(0.05)
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int, start: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat[2] == start and stat[0] != "Z"


@pytest.fixture
def tmux(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tmux]:
    session = Tmux(tmp_path_factory.mktemp("tmux"))
    try:
        yield session
    finally:
        session.close()


def start_devserver(tmux: Tmux, site: Path, *args: str) -> int:
    """Start ``devserver --port P --workers 2 ARGS`` in tmux on a free port; return the port."""
    port = free_port()
    tmux.start([*devserver_argv(), "--port", str(port), "--workers", "2", *args], site)
    return port


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def workers_of(processes: dict[int, int]) -> set[int]:
    """The worker processes among ``processes``: spawned (multiprocessing's spawn_main) or forked from the
    supervisor (its command line), never multiprocessing's resource tracker."""
    ours = {pid for pid in processes if ("spawn_main" in cmdline(pid) or "devserver" in cmdline(pid))
            and "resource_tracker" not in cmdline(pid)}
    return {pid for pid in ours if parent_of(pid) in ours}  # the supervisor's parent is the pane's shell


def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


class ExitWatch:
    """Watches ``pids`` every 20 ms from before a shutdown until they are all gone.

    Besides what is left at the end, it catches a worker that the supervisor
    did not reap: a zombie handed over to init because its parent exited
    first.  Init reaps such a zombie soon after, so only watching shows it.
    """

    def __init__(self, pids: dict[int, int], supervisor: int, workers: set[int]) -> None:
        self.pids, self.supervisor, self.workers = pids, supervisor, workers
        self.orphaned: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            states = {pid: proc_stat(pid) for pid in self.pids}
            self.orphaned |= {pid for pid, st in states.items()
                              if pid in self.workers and st and st[0] == "Z" and st[1] != self.supervisor}
            if not any(states.values()):
                return
            time.sleep(0.02)

    def wait_all_gone(self, timeout: float = 10.0) -> None:
        """Fail unless every process, zombies included, is gone within ``timeout``, no worker orphaned."""
        self._thread.join(timeout)
        left = {pid: proc_stat(pid) for pid in self.pids if proc_stat(pid) is not None}
        assert not left, f"processes left behind (pid: state, ppid, start): {left}"
        assert not self.orphaned, f"workers {self.orphaned} were left as zombies when the supervisor exited"


def row(screen: str, target: str, status: int) -> bool:
    """Whether a request-log row for ``target`` with ``status`` is on screen."""
    return re.search(rf"\bGET\s+{re.escape(target)}\s+{status}\b", screen) is not None


def test_dashboard_shows_requests_and_details_and_quits_cleanly(tmux: Tmux, site: Path) -> None:
    port = start_devserver(tmux, site)
    url = f"http://{HOST}:{port}/"
    tmux.wait_screen(lambda s: url in s and "Requests" in s and "Workers" in s, "the dashboard")
    tmux.wait_screen(lambda s: "workers 2/2" in s, "both workers in the header")
    processes = tmux.remember_processes()
    supervisor = tmux.pane_pid
    assert supervisor in processes
    assert len(processes) >= 3, f"expected the supervisor and 2 workers, found {processes}"

    assert get(port, "/one_k.txt") == 200
    assert get(port, "/no/such/file.txt") == 404
    # The 500 is requested last, once the others are shown, so it is the last row.
    screen = tmux.wait_screen(lambda s: row(s, "/one_k.txt", 200) and row(s, "/no/such/file.txt", 404),
                              "the 200 and 404 rows")
    assert get(port, "/boom.py") == 500
    screen = tmux.wait_screen(lambda s: row(s, "/boom.py", 500) and "Requests 3" in s, "the 500 row")
    shown_pids = {int(pid) for pid in re.findall(r"\bGET\s+/\S+\s+\d{3}\s+.*?\s(\d+)\s*│", screen)}
    assert shown_pids and shown_pids <= set(processes), f"rows name pids {shown_pids}, not in {processes}:\n{screen}"
    assert re.search(r"2xx 1\s+3xx 0\s+4xx 1\s+5xx 1", screen), screen

    # End selects (and follows) the last row, Enter opens its details.
    tmux.keys("End")
    tmux.keys("Enter")
    detail = tmux.wait_screen(lambda s: "Traceback" in s and "boom from the fixture app" in s, "the traceback")
    assert "GET /boom.py HTTP/1.1" in detail  # a failure opens on its traceback (the Console tab)
    assert "RuntimeError: boom from the fixture app" in detail
    assert 'boom.py", line' in detail  # the frame in the fixture app
    tmux.keys("2")  # the Response tab
    tmux.wait_screen(lambda s: "500 Internal Server Error" in s and "Response headers" in s, "the response tab")

    tmux.keys("Escape")
    tmux.wait_screen(lambda s: "Requests 3" in s and row(s, "/boom.py", 500) and "Traceback" not in s,
                     "the main screen again")

    processes |= tmux.remember_processes()  # the same ones, unless a worker was replaced
    workers = workers_of(processes)
    assert len(workers) == 2, f"expected 2 workers among {processes}"
    with ExitWatch(processes, supervisor, workers) as watch:
        tmux.keys("q")
        assert (status := tmux.wait_exit()) == "status 0", f"{status}:\n{tmux.screen()}"
        watch.wait_all_gone()
    after = tmux.screen()
    assert "Traceback" not in after and "Error" not in after, after  # nothing spilled on the terminal


def test_no_tui_prints_console_lines_in_a_terminal(tmux: Tmux, site: Path) -> None:
    port = start_devserver(tmux, site, "--no-tui")
    url = f"http://{HOST}:{port}/"
    tmux.wait_screen(lambda s: f"listening on {url}" in s, "the listening line")
    processes = tmux.remember_processes()
    supervisor = tmux.pane_pid
    workers = workers_of(processes)
    assert len(workers) == 2, f"expected 2 workers among {processes}"

    assert get(port, "/one_k.txt") == 200
    assert get(port, "/no/such/file.txt") == 404
    assert get(port, "/boom.py") == 500
    screen = tmux.wait_screen(
        lambda s: all(re.search(rf"GET {re.escape(t)} {st} ", s) for t, st in
                      (("/one_k.txt", 200), ("/no/such/file.txt", 404), ("/boom.py", 500)))
        and "RuntimeError: boom from the fixture app" in s,
        "three request lines and the traceback",
    )
    assert "Requests" not in screen and "╭" not in screen  # no dashboard
    assert re.search(r"worker 0\s+pid \d+ started", screen) and re.search(r"worker 1\s+pid \d+ started", screen)

    with ExitWatch(processes, supervisor, workers) as watch:
        tmux.keys("C-c")
        assert (status := tmux.wait_exit()) == "status 0", f"{status}:\n{tmux.screen()}"
        watch.wait_all_gone()
    assert "devserver stopped" in tmux.screen()


def test_replay_of_a_64k_post_is_byte_identical_and_exported_curl_gets_the_same_answer(
    tmux: Tmux, site: Path, tmp_path: Path
) -> None:
    port = free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    data = tmp_path / "data"  # the user's data folder: exports go there, not into the project
    tmux.start(["env", f"TMPDIR={tmp}", f"XDG_DATA_HOME={data}", *devserver_argv(), "--port", str(port),
                "--workers", "2"], site)
    tmux.wait_screen(lambda s: "workers 2/2" in s, "both workers in the header")
    tmux.remember_processes()
    payload = os.urandom(64 * 1024)
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("POST", "/hash_echo.py", body=payload, headers={"Content-Type": "application/octet-stream"})
    original = conn.getresponse().read()
    conn.close()
    assert json.loads(original)["sha256"] == hashlib.sha256(payload).hexdigest()
    tmux.wait_screen(lambda s: re.search(r"\bPOST\s+/hash_echo\.py\s+200\b", s) is not None, "the POST row")

    tmux.keys("End")
    tmux.keys("r")  # replay the selected (last) row
    tmux.wait_screen(lambda s: "Requests 2" in s and "200 OK" in s, "the replay and its notification")
    tmux.keys("End")
    tmux.keys("Enter")
    # The app answers with the hash of what it received: an identical answer means an identical body.
    detail = tmux.wait_screen(lambda s: "Replay of POST /hash_echo.py" in s and "body: same" in s, "the diff")
    assert "status: 200 (same)" in detail  # a replay opens on its Response tab, with the diff
    tmux.keys("1")
    tmux.wait_screen(lambda s: f"Request body ({len(payload)} bytes)" in s and "b shows everything" in s,
                     "the request tab, its body folded")
    [spool] = tmp.glob("devserver-bodies-*")  # the recorded bodies: private, and gone after quitting
    assert spool.stat().st_mode & 0o777 == 0o700 and any(spool.iterdir())

    tmux.keys("y")  # copy as curl: also saved in the export folder
    found = []
    deadline = time.monotonic() + 15
    while not (found := list((data / "devserver" / "exports").glob("*-request.curl.sh"))):
        assert time.monotonic() < deadline, "no curl file saved; screen:\n" + tmux.screen()
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while not found[0].read_text().endswith("\n"):
        assert time.monotonic() < deadline, "the curl file was not completed"
        time.sleep(0.05)
    run = subprocess.run(["bash", str(found[0])], capture_output=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout == original
    tmux.keys("Escape")  # then wait: Escape and q sent at once would read as Alt+q
    # The main screen again, with the row of the curl run too.
    tmux.wait_screen(lambda s: "Requests 3" in s and "Replay of" not in s, "the main screen again")
    tmux.keys("q")
    assert tmux.wait_exit() == "status 0"
    assert not spool.exists()
    assert not list(site.glob("*.sh")) and not list(site.glob("*.har"))  # the project holds no export


def test_at_80x24_the_footer_keeps_its_keys_the_url_is_whole_and_a_64k_request_leaves_the_response_one_key_away(
    tmux: Tmux, site: Path
) -> None:
    port = free_port()
    tmux.start([*devserver_argv(), "--port", str(port), "--workers", "2"], site, size=(80, 24))
    url = f"http://{HOST}:{port}/"
    screen = tmux.wait_screen(lambda s: "workers 2/2" in s and "Quit" in s, "both workers and the footer")
    tmux.remember_processes()
    lines = [line for line in screen.splitlines() if line.strip()]
    header, footer = lines[0], lines[-1]
    assert url in header, header  # the whole URL, never cut
    for key in ("⏎ View", "? Help", "/ Filter", "r Replay", "P Profile", "yYW Save", "o Open", "q Quit"):
        assert key in footer, footer
    payload = bytes(range(256)) * 256  # 64 KiB that is not text: hundreds of lines of hex
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("POST", "/hash_echo.py", body=payload, headers={"Content-Type": "application/octet-stream"})
    assert conn.getresponse().status == 200
    conn.close()
    tmux.wait_screen(lambda s: re.search(r"\bPOST\s+/hash_echo\.py\s+200\b", s) is not None, "the POST row")
    tmux.keys("End")
    tmux.keys("Enter")
    detail = tmux.wait_screen(lambda s: "Request body (65536 bytes)" in s and "b shows everything" in s
                              and all(key in s for key in ("esc Back", "12345 Tabs", "b Expand", "? Help", "q Quit")),
                              "the request tab, its body folded, and the footer with its keys")
    assert "000000  00 01 02 03" in detail
    tmux.keys("2")  # one key: the response's status and headers
    response = tmux.wait_screen(lambda s: "200 OK" in s and "Response headers" in s, "the response tab")
    assert "Content-Type: application/json" in response and "000000  00 01" not in response
    tmux.keys("Escape")  # then wait: Escape and q sent at once would read as Alt+q
    tmux.wait_screen(lambda s: "Requests 1" in s, "the main screen again")
    tmux.keys("?")
    tmux.wait_screen(lambda s: "Esc, q or ? closes" in s, "the help, saying how to close it")
    tmux.keys("q")  # closes the help
    tmux.wait_screen(lambda s: "Requests 1" in s and "closes" not in s, "the main screen again")
    tmux.keys("q")
    assert tmux.wait_exit() == "status 0"
