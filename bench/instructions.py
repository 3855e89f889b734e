"""Instructions per request, counted by valgrind: a figure a busy machine cannot move.

CPU time per request swings by ±30% on a shared 2-core machine, so small
changes of the request path cannot be judged by it.  This counts the
instructions devserver's processes execute per request instead, which is
the same for the same code and inputs whatever else runs:

1. devserver runs under ``valgrind --tool=callgrind --instr-atstart=no``
   (one worker, the hello-world app as ``/hello.py``, as ``APP``, or a 1 KiB
   static file), so nothing is counted while it starts; ``app-project`` and
   ``app-project-html`` run the APP as a project app in a folder of its own
   (``hello.py``, and an ``html_page/`` for the second), with no options;
2. after a warm-up, counting is switched on in the worker and the supervisor
   (``callgrind_control -i on``), ``--requests`` requests are sent over
   ``--conns`` keep-alive connections (one request in flight on each, all
   connections at once; case ``close``: ``--conns`` fresh connections at a
   time, one ``Connection: close`` request on each), and the counts are dumped.
   Counting starts once the server has logged every warm-up request and stops
   once it has logged every counted one (its access lines, read from its
   output): the supervisor logs after the worker answers, and a figure taken
   while it lags behind would move with how far it lags;
3. instructions / requests is printed per process.

Each checkout given is measured the same way, so two checkouts compare a
change (the first is the reference).  Instructions are not time (cache
misses and syscalls differ), but the interpreter's work is most of a
request here.

    python bench/instructions.py CHECKOUT [CHECKOUT ...] [--case script|app|static|static-1m|flask|close|close-script|app-project|app-project-html|asgi|fastapi]
        [--requests 2000] [--conns 50] [--uvicorn]

``--uvicorn`` (cases ``asgi`` and ``fastapi``) counts uvicorn too, on the
same app and load (``--http httptools --loop asyncio``, one process): user
space instructions of both servers, which a busy machine does not move
(the kernel's share of each request, its socket calls, is not counted).

Needs valgrind (Debian package ``valgrind``).  About a minute per checkout.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from common import HOST, free_port, make_project, make_site

CASES = {  # case: (APP argument or None, path, a fresh connection per request, the folder it runs in)
    "script": (None, "/hello.py", False, "site"),
    "app": ("hello:application", "/", False, "site"),
    "static": (None, "/one_k.txt", False, "site"),
    "static-1m": (None, "/one_m.bin", False, "site"),  # the 1 MiB file: sent by sendfile
    "flask": ("flaskapp:app", "/", False, "site"),  # the Flask app of the peers' workload (a template loop)
    "close": ("hello:application", "/", True, "site"),  # the APP with `Connection: close`: the accept path
    "close-script": (None, "/hello.py", True, "site"),  # the same as /hello.py: what the APP's route adds
    # The APP as a project app, run in its own folder with no options: without html_page/ and with it.
    "app-project": ("hello:application", "/", False, "project"),
    "app-project-html": ("hello:application", "/", False, "project+html"),
    # ASGI: the apps of rounds.py's asgi and fastapi workloads, run from the site's dynamic/ as rounds.py does.
    "asgi": ("asgihello:app", "/", False, "site-dynamic"),
    "fastapi": ("fastapiapp:app", "/items", False, "site-dynamic"),
}
ASGI_CASES = ("asgi", "fastapi")  # the cases --uvicorn can serve too
# Under callgrind on a busy machine a round of --conns Flask requests can outlast the 15 s keep-alive timeout:
# the connections waiting for their next request would be closed under the load (a reset, no figure).
PATIENT = ("--header-timeout", "600", "--keepalive-timeout", "600")
SUMMARY = re.compile(r"^summary:\s*(\d+)", re.MULTILINE)


def load(port: int, path: str, requests: int, conns: int, close: bool = False) -> None:
    """``requests`` GETs over ``conns`` keep-alive connections, one in flight on each (``close``: a new one each)."""
    if close:
        load_closing(port, path, requests, conns)
        return
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    socks = [socket.create_connection((HOST, port), timeout=60) for _ in range(conns)]
    try:
        for _ in range(max(1, requests // conns)):
            for sock in socks:
                sock.sendall(request)
            for sock in socks:
                _read_response(sock)
    finally:
        for sock in socks:
            sock.close()


def load_closing(port: int, path: str, requests: int, conns: int) -> None:
    """``requests`` GETs with ``Connection: close``, ``conns`` connections open at once, each for one request."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    for _ in range(max(1, requests // conns)):
        socks = [socket.create_connection((HOST, port), timeout=60) for _ in range(conns)]
        try:
            for sock in socks:
                sock.sendall(request)
            for sock in socks:
                _read_response(sock)
                if sock.recv(1):  # the server closes after the response
                    raise ConnectionError("bytes after a Connection: close response")
        finally:
            for sock in socks:
                sock.close()


def _read_response(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        data += chunk
    head, _, first = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
    got = len(first)
    while got < length:  # counted, not joined: a 1 MiB body must not cost the client quadratic copies
        chunk = sock.recv(262144)
        if not chunk:
            raise ConnectionError("closed inside a response")
        got += len(chunk)


def wait_ready(port: int, path: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start")
        try:
            load(port, path, 1, 1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not answer within the deadline")


def measure(checkout: Path, case: str, requests: int, conns: int, work: Path) -> dict[str, float]:
    """Instructions per request of the worker and of the supervisor, for one checkout."""
    app, path, close, layout = CASES[case]
    base = work / f"site-{len(list(work.iterdir()))}"
    port = free_port()
    argv = [sys.executable, "-m", "devserver", *([app] if app else []), "--port", str(port), "--workers", "1",
            "--no-tui", *PATIENT]
    cwd = base
    if layout.startswith("site"):
        base.mkdir()
        site = make_site(base)
        argv += ["--root", str(site.html_page), "--dynamic", str(site.dynamic)]
        cwd = site.dynamic if layout == "site-dynamic" else base
    else:
        make_project(base, html_page=layout == "project+html")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(checkout.resolve()), "HOME": str(work)}
    # DEVSERVER_INLINE=always passes on: under callgrind every app call is slow, so only then are calls made inline.
    env.update({name: value for name, value in os.environ.items() if name == "DEVSERVER_INLINE"})
    counts = count_during_load(argv, env, cwd, port, path, requests, conns, close,
                               work / f"callgrind-{checkout.name}-{case}", lambda pid: [pid, *_children(pid)])
    figures: dict[str, float] = {}
    for number, total in enumerate(counts.values()):
        role = "worker" if number else "supervisor"
        figures[role] = figures.get(role, 0.0) + total / requests
    return figures


def measure_uvicorn(case: str, requests: int, conns: int, work: Path) -> float:
    """Instructions per request of uvicorn (one process, httptools, asyncio) serving ``case``'s app."""
    app, path, close, _ = CASES[case]
    assert app is not None
    base = work / f"site-{len(list(work.iterdir()))}"
    base.mkdir()
    site = make_site(base)
    port = free_port()
    # Under callgrind a round of 50 requests can outlast uvicorn's 5 s keep-alive: it would close idle ones.
    argv = [sys.executable, "-m", "uvicorn", "--http", "httptools", "--loop", "asyncio", "--host", HOST,
            "--port", str(port), "--timeout-keep-alive", "600", app]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site.dynamic), "HOME": str(work)}
    counts = count_during_load(argv, env, site.dynamic, port, path, requests, conns, close,
                               work / f"callgrind-uvicorn-{case}", lambda pid: [pid])
    return sum(counts.values()) / requests


def count_during_load(argv: list[str], env: dict[str, str], cwd: Path, port: int, path: str, requests: int,
                      conns: int, close: bool, out: Path, processes: Callable[[int], list[int]]) -> dict[int, int]:
    """Run ``argv`` under callgrind and count, per process, only while ``requests`` GETs of ``path`` are served.

    Counting starts after a 500-request warm-up (modules loaded, caches filled, threads started) in the
    processes ``processes(pid of argv)`` names, in that order; the figures are their dumps' totals.
    """
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
               f"--callgrind-out-file={out}.%p", *argv]
    log = out.with_suffix(".log")
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, path, proc, time.monotonic() + 180)
        load(port, path, 500, conns, close)
        # The server logs a request after answering it: counting starts once the warm-up's lines are all
        # written, and stops once the counted requests' are, so neither the warm-up's logging nor a backlog
        # left behind by the load moves the figure.
        logged = wait_logged(log, path, 1 + 500, proc)
        pids = processes(proc.pid)
        for pid in pids:
            subprocess.run(["callgrind_control", "-i", "on", str(pid)], capture_output=True, check=False)
        load(port, path, requests, conns, close)
        wait_logged(log, path, logged + max(1, requests // conns) * conns, proc)
        for pid in pids:
            subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=False)
            subprocess.run(["callgrind_control", "-i", "off", str(pid)], capture_output=True, check=False)
    finally:
        proc.terminate()
        proc.wait(60)
    return {pid: instructions(glob.glob(f"{out}.{pid}.*")) for pid in pids}  # the dumps, not the final file


def wait_logged(log: Path, path: str, lines: int, proc: subprocess.Popen[bytes], patience: float = 120) -> int:
    """Wait until ``log`` holds ``lines`` request lines for ``path`` (devserver's and uvicorn's access lines
    both read "GET <path> "); the count found, which falls short only when ``patience`` seconds ran out."""
    line = re.compile(rb"GET " + re.escape(path.encode()) + rb"[ \"]")
    deadline = time.monotonic() + patience
    found = 0
    while time.monotonic() < deadline and proc.poll() is None:
        found = len(line.findall(log.read_bytes()))
        if found >= lines:
            return found
        time.sleep(0.1)
    print(f"bench/instructions.py: {found} of {lines} request lines logged; counting anyway", file=sys.stderr)
    return found


def instructions(files: list[str]) -> int:
    """The instructions callgrind counted in ``files``."""
    return sum(int(m.group(1)) for f in files for m in SUMMARY.finditer(Path(f).read_text(errors="replace")))


def _children(pid: int) -> list[int]:
    """Worker processes (the resource tracker of older checkouts is left out)."""
    found = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        for child in Path(task).read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in cmdline:
                found.append(int(child))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", type=Path, nargs="+")
    parser.add_argument("--case", choices=sorted(CASES), default="script")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--uvicorn", action="store_true", help="count uvicorn too (cases asgi and fastapi)")
    opts = parser.parse_args(argv)
    if opts.uvicorn and opts.case not in ASGI_CASES:
        parser.error(f"--uvicorn takes --case {' or '.join(ASGI_CASES)}")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench/instructions.py: valgrind is not installed (apt install valgrind)")
        return 2
    print("| checkout | worker instructions/request | supervisor instructions/request | worker vs first |")
    print("| --- | ---: | ---: | ---: |")
    first = None
    with tempfile.TemporaryDirectory(prefix="devserver-instr-") as tmp:
        for checkout in opts.checkouts:
            figures = measure(checkout, opts.case, opts.requests, opts.conns, Path(tmp))
            worker = figures.get("worker", 0.0)
            first = first or worker
            print(f"| {checkout} | {worker:,.0f} | {figures.get('supervisor', 0.0):,.0f} | {worker / first:.2f}× |",
                  flush=True)
        if opts.uvicorn:
            uvicorn = measure_uvicorn(opts.case, opts.requests, opts.conns, Path(tmp))
            print(f"| uvicorn (one process) | {uvicorn:,.0f} | | {uvicorn / first:.2f}× |", flush=True)
    how = (f"a new connection per request (Connection: close), {opts.conns} at once" if CASES[opts.case][2]
           else f"over {opts.conns} keep-alive connections")
    print(f"\ncase {opts.case}: {opts.requests} requests {how}, 1 worker, "
          "hello-world app; counted by callgrind after a 500-request warm-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
