"""Benchmark helpers: fixture site, server processes, and ``wrk`` runs.

Everything here talks to 127.0.0.1 only.  Servers are started as
subprocesses and always stopped by their own pid (SIGTERM, then SIGKILL);
worker processes they forked are found through /proc and killed by pid if
they outlive their parent.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

ONE_K = "one_k.txt"
ONE_M = "one_m.bin"
HELLO_BODY = b"Hello, world!\n"

HELLO_APP = '''\
"""Hello-world WSGI app for the benchmarks (fixed body, Content-Length set)."""

BODY = b"Hello, world!\\n"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", list(HEADERS))
    return [BODY]
'''

ASGI_HELLO_APP = '''\
"""Hello-world ASGI app for the benchmarks: the same body and headers as hello.py's."""

BODY = b"Hello, world!\\n"
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(BODY)).encode())]}
END = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: not supported (both servers then serve without it)
    await send(START)
    await send(END)
'''


FLASK_APP = '''\
"""A Flask app rendering a template with a loop, for the benchmarks (compiled once, cached by Jinja)."""

from flask import Flask, render_template
from jinja2 import DictLoader

app = Flask(__name__)
app.jinja_loader = DictLoader({
    "index.html": "<ul>{% for item in items %}<li>{{ item.name }}: {{ item.value }}</li>{% endfor %}</ul>",
})
ITEMS = [{"name": f"item {i}", "value": i * i} for i in range(50)]


@app.route("/")
def index():
    return render_template("index.html", items=ITEMS)
'''
FASTAPI_APP = '''\
"""A FastAPI JSON endpoint for the benchmarks: a path the router matches, a dict FastAPI validates and encodes."""

from fastapi import FastAPI

app = FastAPI()
ITEMS = [{"name": f"item {i}", "value": i * i} for i in range(10)]


@app.get("/items")
async def items():
    return {"message": "Hello, world!", "items": ITEMS}
'''
# FastAPI's JSONResponse: compact separators, no ASCII escaping.
FASTAPI_BODY = json.dumps({"message": "Hello, world!", "items": [{"name": f"item {i}", "value": i * i}
                                                                  for i in range(10)]},
                          ensure_ascii=False, separators=(",", ":")).encode()
FLASK_BODY = ("<ul>" + "".join(f"<li>item {i}: {i * i}</li>" for i in range(50)) + "</ul>").encode()  # Jinja drops the trailing newline


class BenchError(Exception):
    """A benchmark step failed (server did not start, wrk output unreadable, ...)."""


# --------------------------------------------------------------------------
# Fixture site


@dataclass(frozen=True)
class Site:
    """A temporary site: ``html_page/`` with the static files, ``dynamic/hello.py``."""

    base: Path
    html_page: Path
    dynamic: Path
    bodies: Mapping[str, bytes] = field(repr=False)

    def body(self, name: str) -> bytes:
        """The exact bytes a server must answer for ``name`` (a file name or ``hello``)."""
        return self.bodies[name]


def make_site(base: Path) -> Site:
    """Write the fixture site into ``base`` (which must exist) and describe it.

    ``one_k.txt`` is 1 KiB of text, ``one_m.bin`` is 1 MiB of seeded random
    bytes, so every run serves the same content.  Folders are made
    world-readable because nginx workers run as an unprivileged user.
    """
    html_page = base / "html_page"
    dynamic = base / "dynamic"
    html_page.mkdir()
    dynamic.mkdir()
    line = b"devserver benchmark fixture: 1 KiB of plain text for the small-file case.\n"
    one_k = (line * (1024 // len(line) + 1))[:1023] + b"\n"
    one_m = random.Random(20240601).randbytes(1024 * 1024)
    (html_page / ONE_K).write_bytes(one_k)
    (html_page / ONE_M).write_bytes(one_m)
    (dynamic / "hello.py").write_text(HELLO_APP)
    (dynamic / "flaskapp.py").write_text(FLASK_APP)
    (dynamic / "asgihello.py").write_text(ASGI_HELLO_APP)
    (dynamic / "fastapiapp.py").write_text(FASTAPI_APP)
    for path in (base, html_page, dynamic):
        path.chmod(0o755)
    for path in (html_page / ONE_K, html_page / ONE_M, dynamic / "hello.py", dynamic / "flaskapp.py",
                 dynamic / "asgihello.py", dynamic / "fastapiapp.py"):
        path.chmod(0o644)
    return Site(base, html_page, dynamic, {ONE_K: one_k, ONE_M: one_m, "hello": HELLO_BODY, "flask": FLASK_BODY,
                                            "asgi": HELLO_BODY, "fastapi": FASTAPI_BODY})


def make_project(base: Path, html_page: bool) -> Path:
    """A project folder for ``devserver hello:application`` as a project APP: ``hello.py`` at its top and, with
    ``html_page``, an ``html_page/`` holding the 1 KiB file (files win there); no ``dynamic/``.  Returns it."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "hello.py").write_text(HELLO_APP)
    if html_page:
        (base / "html_page").mkdir()
        line = b"devserver benchmark fixture: 1 KiB of plain text for the small-file case.\n"
        (base / "html_page" / ONE_K).write_bytes((line * (1024 // len(line) + 1))[:1023] + b"\n")
    return base


def nginx_config(site: Site, port: int, workers: int) -> Path:
    """Write a minimal nginx.conf serving ``site.html_page`` on ``port``; return its path.

    Every path nginx writes (pid, logs, temp folders) lies in ``site.base``.
    """
    base = site.base
    temp = base / "nginx-temp"
    temp.mkdir(exist_ok=True)
    conf = base / "nginx.conf"
    conf.write_text(f"""\
daemon off;
master_process on;
worker_processes {workers};
pid {base / "nginx.pid"};
error_log {base / "nginx-error.log"} warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    types {{
        text/plain txt;
        text/html html;
    }}
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};

    server {{
        listen {HOST}:{port};
        root {site.html_page};
    }}
}}
""")
    return conf


# --------------------------------------------------------------------------
# Server processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server under test.

    ``paths`` maps a case name (``1k``, ``1m``, ``hello``) to the URL path
    that serves it; ``ready_path`` must answer 200 once the server is up.
    """

    name: str
    argv: tuple[str, ...]
    port: int
    paths: Mapping[str, str]
    ready_path: str
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    tty: bool = False  # run on a pseudo-terminal (160x48), as the dashboard needs

    def url(self, case: str) -> str:
        return f"http://{HOST}:{self.port}{self.paths[case]}"


@dataclass
class RunningServer:
    """A started server; ``log`` holds its stdout and stderr."""

    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection: (status, headers with lower-case names, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def _wait_ready(server: RunningServer, timeout: float) -> None:
    """Wait until the server accepts TCP connections and answers 200 on its ready path."""
    spec = server.spec
    deadline = time.monotonic() + timeout
    last = "no connection yet"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"{spec.name} exited with {server.proc.returncode} before it was ready:\n"
                             + server.log_tail())
        try:
            with socket.create_connection((HOST, spec.port), timeout=1.0):
                pass
            status, _, _ = http_get(spec.port, spec.ready_path)
            if status == 200:
                return
            last = f"GET {spec.ready_path} answered {status}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.05)
    raise BenchError(f"{spec.name} not ready after {timeout:.0f}s ({last}):\n" + server.log_tail())


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[19])  # ppid is field 4, starttime field 22 (proc(5))


def descendants(pid: int) -> list[tuple[int, int]]:
    """Every live descendant of ``pid`` as (pid, start time), found through /proc."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(entry), stat[1]))
    found: list[tuple[int, int]] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (a server's supervisor or master and its workers)."""
    return [pid, *(child for child, _ in descendants(pid))]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def load_average() -> str:
    """The machine's load averages and core count, as every benchmark prints them beside its figures."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + f" (1, 5, 15 min; {os.cpu_count()} cores)"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by ``pids`` (from /proc/PID/stat; gone processes count 0)."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 (proc(5))
    return total / CLOCK_TICKS


def pss_bytes(pids: list[int]) -> int:
    """Proportional set size of ``pids`` together (shared pages split between sharers), from smaps_rollup."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        if match:
            total += int(match.group(1)) * 1024
    return total


def stop_server(server: RunningServer, grace: float = 10.0) -> None:
    """SIGTERM the server's pid, SIGKILL it after ``grace`` seconds, then reap.

    Worker processes it forked that are still alive afterwards (same pid and
    start time as before the stop) are killed by pid too.
    """
    proc = server.proc
    forked = descendants(proc.pid) if proc.poll() is None else []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + grace
    for pid, started in forked:
        while time.monotonic() < deadline and _proc_stat(pid) is not None:
            time.sleep(0.05)
        stat = _proc_stat(pid)
        if stat is not None and stat[1] == started:
            os.kill(pid, signal.SIGKILL)


def start_server(spec: ServerSpec, log_dir: Path) -> RunningServer:
    """Launch ``spec`` with its output going to ``log_dir/<name>.log``; do not wait for it."""
    log = log_dir / f"{spec.name}.log"
    env = dict(os.environ)
    if "devserver" in spec.argv and "PYTHONPATH" not in spec.env:
        # This checkout's devserver, not a copy pip installed earlier: servers start in the site's folder,
        # where only site-packages would be found.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH_DIR.parent), env.get("PYTHONPATH", "")) if p)
    env.update(spec.env)
    if spec.tty:
        return _start_on_pty(spec, env, log)
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(spec.argv), cwd=spec.cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    return RunningServer(spec, proc, log)


def _start_on_pty(spec: ServerSpec, env: dict[str, str], log: Path) -> RunningServer:
    """Run on a 160x48 pseudo-terminal; a thread copies the screen output to the log until EOF."""
    import fcntl
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    env.setdefault("TERM", "xterm-256color")
    try:
        proc = subprocess.Popen(list(spec.argv), cwd=spec.cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True)
    finally:
        os.close(slave)

    def copy() -> None:
        with open(log, "wb") as out:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave end is closed
                    break
                if not data:
                    break
                out.write(data)
        os.close(master)

    threading.Thread(target=copy, name=f"pty-{spec.name}", daemon=True).start()
    return RunningServer(spec, proc, log)


@contextmanager
def running(spec: ServerSpec, log_dir: Path, timeout: float = 30.0) -> Iterator[RunningServer]:
    """Start ``spec`` with output to ``log_dir/<name>.log``, wait until ready, stop on exit."""
    server = start_server(spec, log_dir)
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        stop_server(server)


# --------------------------------------------------------------------------
# wrk


@dataclass(frozen=True)
class WrkResult:
    """The figures of one ``wrk --latency`` run (latencies in milliseconds)."""

    requests: int
    seconds: float
    requests_per_sec: float
    transfer_per_sec: float  # bytes
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0
    non_2xx: int = 0  # wrk's "Non-2xx or 3xx responses"

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts


_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_TRANSFER = re.compile(r"^Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)", re.M)
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def parse_wrk(output: str) -> WrkResult:
    """Read the figures out of wrk's text output; BenchError if it has none."""
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    percentiles = {int(p): float(v) * _TIME_UNITS_MS[u] for p, v, u in _PERCENTILE.findall(output)}
    if rps is None or total is None or set(percentiles) != {50, 75, 90, 99}:
        raise BenchError("cannot read wrk output:\n" + output)
    transfer = _TRANSFER.search(output)
    sock = _SOCKET.search(output)
    non_2xx = _NON_2XX.search(output)
    errors = [int(n) for n in sock.groups()] if sock else [0, 0, 0, 0]
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _TIME_UNITS_MS[total.group(3)] / 1000.0,
        requests_per_sec=float(rps.group(1)),
        transfer_per_sec=float(transfer.group(1)) * _SIZE_UNITS[transfer.group(2)] if transfer else 0.0,
        p50_ms=percentiles[50], p75_ms=percentiles[75], p90_ms=percentiles[90], p99_ms=percentiles[99],
        connect_errors=errors[0], read_errors=errors[1], write_errors=errors[2], timeouts=errors[3],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def run_wrk(url: str, conns: int, seconds: int, threads: int = 2, timeout: str = "5s",
            headers: tuple[str, ...] = ()) -> WrkResult:
    """``wrk -t{threads} -c{conns} -d{seconds}s --latency --timeout {timeout} [-H header]... URL``.

    Keep-alive unless ``headers`` holds ``Connection: close`` (wrk then opens a connection per request).
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed (apt-get install wrk)")
    argv = [wrk, f"-t{min(threads, conns)}", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", timeout,
            *(arg for header in headers for arg in ("-H", header)), url]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(argv)}") from exc
    if done.returncode != 0:
        raise BenchError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout)


def python_argv(*args: str) -> tuple[str, ...]:
    """The running interpreter with ``args`` (so peers come from the same environment)."""
    return (sys.executable, *args)
