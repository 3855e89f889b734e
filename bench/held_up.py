"""Is a request held up by what else its worker holds?  GETs next to a held app request, idle keep-alive
connections and slowloris heads, against the same GETs with nothing else going on.

    python bench/held_up.py [--rounds 5] [--requests 200] [--idle 1000] [--slow 200]

The tests check that these requests are answered while the others are pending (in order, with no
timing: tests/test_server_core.py, test_wsgi.py, test_robustness.py, conftest.held_in_app); how fast
they are answered is this script's figure.  One devserver of this checkout with one worker serves
``--requests`` GETs on fresh connections, alternately the 1 KiB file and ``/hello.py``, under each
condition in turn; the conditions run in ``--rounds`` rounds, each round starting from a different one.
Printed per condition: median and worst latency over all rounds, the median of the per-round ratios
of median latency to "alone" (the figure that holds on a busy machine), and the server's CPU per
request (user + system of the supervisor and worker, /proc/PID/stat); the load average at the start
and the end.  Only 127.0.0.1 is used; the server is stopped by its pid.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from common import HOST, ONE_K, ServerSpec, cpu_seconds, free_port, make_site, process_tree, python_argv, running

HELD_APP = '''\
"""Holds its request until the file ``release`` appears (at most a minute); says so with ``started``."""

import time
from pathlib import Path


def application(environ, start_response):
    Path("started").write_text("started")
    deadline = time.monotonic() + 60
    while not Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"released"]
'''


def get(port: int, path: str) -> None:
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        first = sock.recv(65536)
        while sock.recv(65536):  # to the server's close
            pass
        if not first.startswith(b"HTTP/1.1 200 "):
            raise SystemExit(f"GET {path} answered {first[:60]!r}")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not reached within {timeout:g} s")
        time.sleep(0.01)


@contextmanager
def held_request(port: int, cwd: Path) -> Iterator[None]:
    """A request to held.py, in the app for the length of the block."""
    started, release = cwd / "started", cwd / "release"
    started.unlink(missing_ok=True)
    release.unlink(missing_ok=True)
    thread = threading.Thread(target=get, args=(port, "/held.py"), daemon=True)
    thread.start()
    wait_for(started.exists, "the held request reaching the app")
    try:
        yield
    finally:
        release.write_text("go")
        thread.join(60)


@contextmanager
def idle_connections(port: int, count: int) -> Iterator[None]:
    """``count`` keep-alive connections, each after one answered request."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection((HOST, port), timeout=30)
            sock.sendall(f"GET /{ONE_K} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            received = b""
            while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < 1024:
                received += sock.recv(65536)
            socks.append(sock)
        yield
    finally:
        for sock in socks:
            sock.close()


@contextmanager
def slowloris(port: int, count: int) -> Iterator[None]:
    """``count`` connections with an unfinished head (the server runs with a 120 s header timeout)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection((HOST, port), timeout=30)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: ppp")
            socks.append(sock)
        yield
    finally:
        for sock in socks:
            sock.close()


def measure(port: int, pids: list[int], requests: int) -> tuple[list[float], float]:
    """Latencies (s) of ``requests`` GETs, and the server's CPU seconds per request meanwhile."""
    cpu = cpu_seconds(pids)
    latencies = []
    for i in range(requests):
        started = time.perf_counter()
        get(port, f"/{ONE_K}" if i % 2 else "/hello.py")
        latencies.append(time.perf_counter() - started)
    return latencies, (cpu_seconds(pids) - cpu) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=200)
    opts = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # our client sockets; the server raises its own
    print(f"load average at the start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="held-up-") as tmp:
        site = make_site(Path(tmp))
        (site.dynamic / "held.py").write_text(HELD_APP)
        port = free_port()
        spec = ServerSpec("devserver", python_argv("-m", "devserver", "--no-tui", "--port", str(port), "--workers", "1",
                                                   "--header-timeout", "120", "--keepalive-timeout", "120",
                                                   "--root", str(site.html_page), "--dynamic", str(site.dynamic)),
                          port, {}, f"/{ONE_K}", cwd=site.base)
        conditions: dict[str, Callable[[], AbstractContextManager[None]]] = {
            "alone": nullcontext,
            "next to a held app request": lambda: held_request(port, site.base),
            f"next to {opts.idle} idle keep-alive connections": lambda: idle_connections(port, opts.idle),
            f"next to {opts.slow} slowloris heads": lambda: slowloris(port, opts.slow),
        }
        names = list(conditions)
        latencies: dict[str, list[float]] = {name: [] for name in names}
        medians: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        with running(spec, Path(tmp)) as server:
            pids = process_tree(server.proc.pid)
            measure(port, pids, 50)  # warm-up: the app imported, the pool's threads started
            for round_ in range(opts.rounds):
                order = names[round_ % len(names):] + names[:round_ % len(names)]
                for name in order:
                    with conditions[name]():
                        times, per_request = measure(port, pids, opts.requests)
                    latencies[name] += times
                    medians[name].append(statistics.median(times))
                    cpu[name].append(per_request)
    print(f"{opts.rounds} rounds of {opts.requests} GETs (1 KiB file and /hello.py alternately), one worker")
    print(f"{'condition':48} {'median ms':>10} {'worst ms':>10} {'x alone':>8} {'CPU µs/req':>11}")
    for name in names:
        ratio = statistics.median(m / a for m, a in zip(medians[name], medians["alone"], strict=True))
        print(f"{name:48} {statistics.median(latencies[name]) * 1e3:10.2f} {max(latencies[name]) * 1e3:10.2f} "
              f"{ratio:8.2f} {statistics.median(cpu[name]) * 1e6:11.0f}")
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
