"""Soak test: a long run of mixed requests; do the workers leak memory or descriptors?

Starts devserver (``--workers 2``) on a temp fixture site and sends N requests
(default 1 000 000) from several client processes over raw sockets on
127.0.0.1: 2/5 the static ``/one_k.txt``, 2/5 the WSGI ``/hello.py`` and 1/5
404s (a new path each time, so no cache can hide a leak).  Half go over
keep-alive connections (``--per-conn`` requests each), half one request per
connection (``Connection: close``; the server closes first, so the client
side piles up no TIME_WAIT sockets).

Every answer is checked: status, and the exact body of the 200s.  An error is
an unexpected status or body, a reset, an early close, a timeout or a refused
connection.  Each worker's RSS (``VmRSS``) and open descriptors are read after
a warm-up and again at the end; ``VmHWM`` is its peak.

    python bench/soak.py [--requests 1000000] [--clients 4] [--per-conn 100] [--workers 2]

Exit status 1 when a request failed, a worker was replaced during the run,
or a worker ended with more descriptors than it started with.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import HELLO_BODY, HOST, ONE_K, BenchError, free_port, make_site, running
from servers import devserver

TIMEOUT = 10.0  # seconds a client waits on a socket before counting a timeout
FD_SLACK = 2  # descriptors a worker may hold at the end beyond its start (a closing connection)
_WORKER_LINE = re.compile(r"worker (\d+) pid (\d+) (started|restarted)")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)


class Broken(Exception):
    """The connection cannot be used any more (closed early or reset)."""


# --------------------------------------------------------------------------- client side

def _target(i: int) -> tuple[bytes, int, bytes | None]:
    """Request ``i`` of a client: (path, expected status, expected body or None)."""
    kind = i % 5
    if kind in (0, 2):
        return f"/{ONE_K}".encode(), 200, _BODIES["static"]
    if kind in (1, 3):
        return b"/hello.py", 200, _BODIES["hello"]
    return b"/missing/%d.txt" % i, 404, None


_BODIES: dict[str, bytes] = {}


def _read_response(sock: socket.socket, buf: bytes) -> tuple[int, bytes, bool, bytes]:
    """One response: (status, body, server will close, bytes already read past it)."""
    while (end := buf.find(b"\r\n\r\n")) < 0:
        data = sock.recv(65536)
        if not data:
            raise Broken("closed before a response head")
        buf += data
    head, rest = buf[:end], buf[end + 4:]
    status = int(head[9:12])
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        raise Broken("response without Content-Length")
    length = int(match.group(1))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise Broken("closed in the middle of a body")
        rest += data
    return status, rest[:length], bool(_CONNECTION_CLOSE.search(head)), rest[length:]


def _kind(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, Broken)):
        return "reset/closed"
    if isinstance(exc, OSError):
        return f"oserror {exc.errno}"
    return type(exc).__name__


class Client:
    """Sends its share of requests: keep-alive segments alternating with one-shot ones."""

    def __init__(self, port: int, first: int, count: int, per_conn: int, progress: Any) -> None:
        self.port = port
        self.first = first
        self.count = count
        self.per_conn = per_conn
        self.progress = progress
        self.errors: Counter[str] = Counter()
        self.done = 0
        self.worst = 0.0

    def run(self) -> None:
        i, end = self.first, self.first + self.count
        keep_alive = (self.first // self.per_conn) % 2 == 0
        while i < end:
            n = min(self.per_conn, end - i)
            if keep_alive:
                self._keep_alive(i, n)
            else:
                for j in range(i, i + n):
                    self._one_shot(j)
            i += n
            keep_alive = not keep_alive
            self._report()
        self._report()

    def _report(self) -> None:
        with self.progress.get_lock():
            self.progress.value += self.done
        self.done = 0

    def _check(self, i: int, status: int, body: bytes) -> None:
        _, want_status, want_body = _target(i)
        if status != want_status:
            self.errors[f"status {status}"] += 1
        elif want_body is not None and body != want_body:
            self.errors["wrong body"] += 1

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _keep_alive(self, first: int, n: int) -> None:
        sock: socket.socket | None = None
        buf = b""
        for i in range(first, first + n):
            started = time.perf_counter()
            try:
                if sock is None:
                    sock, buf = self._connect(), b""
                sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % _target(i)[0])
                status, body, close, buf = _read_response(sock, buf)
                self._check(i, status, body)
                if close:
                    self.errors["closed a keep-alive connection"] += 1
                    sock.close()
                    sock = None
            except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
                self.errors[_kind(exc)] += 1
                if sock is not None:
                    sock.close()
                sock = None
            self.worst = max(self.worst, time.perf_counter() - started)
            self.done += 1
        if sock is not None:
            sock.close()

    def _one_shot(self, i: int) -> None:
        started = time.perf_counter()
        try:
            with self._connect() as sock:
                sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % _target(i)[0])
                status, body, _, rest = _read_response(sock, b"")
                self._check(i, status, body)
                # Wait for the server's FIN: it closes first, so TIME_WAIT stays on its side.
                if rest or sock.recv(1024):
                    self.errors["bytes after the response"] += 1
        except Exception as exc:  # noqa: BLE001
            self.errors[_kind(exc)] += 1
        self.worst = max(self.worst, time.perf_counter() - started)
        self.done += 1


def client_main(port: int, first: int, count: int, per_conn: int, bodies: dict[str, bytes],
                progress: Any, results: Any) -> None:
    """Entry point of a client process; puts (errors, worst latency) on ``results``."""
    _BODIES.update(bodies)
    client = Client(port, first, count, per_conn, progress)
    try:
        client.run()
    finally:
        results.put((dict(client.errors), client.worst))


@dataclass
class Outcome:
    requests: int
    elapsed: float
    errors: Counter[str] = field(default_factory=Counter)
    worst: float = 0.0


def run_clients(port: int, requests: int, clients: int, per_conn: int, bodies: dict[str, bytes],
                first: int = 0, label: str = "", progress_every: float = 10.0) -> Outcome:
    """Split ``requests`` over ``clients`` processes and wait for them all."""
    ctx = multiprocessing.get_context("spawn")
    progress = ctx.Value("Q", 0)
    results = ctx.Queue()
    share = -(-requests // clients)
    procs = []
    started = time.monotonic()
    try:
        for n in range(clients):
            count = max(0, min(share, requests - n * share))
            if count:
                start = first + n * share
                procs.append(ctx.Process(target=client_main, name=f"soak-client-{n}",
                                         args=(port, start, count, per_conn, bodies, progress, results)))
        for proc in procs:
            proc.start()
        outcome = Outcome(requests, 0.0)
        pending = len(procs)
        last_print = time.monotonic()
        while pending:
            try:
                errors, worst = results.get(timeout=0.5)
            except Exception:  # noqa: BLE001 - queue.Empty: check the processes are alive
                if all(not p.is_alive() for p in procs) and results.empty():
                    outcome.errors["client process died"] += pending
                    break
            else:
                outcome.errors.update(errors)
                outcome.worst = max(outcome.worst, worst)
                pending -= 1
            if label and time.monotonic() - last_print >= progress_every:
                last_print = time.monotonic()
                done = progress.value
                rate = done / (last_print - started)
                print(f"  {label}: {done}/{requests} requests, {rate:.0f} req/s, "
                      f"{sum(outcome.errors.values())} errors so far", file=sys.stderr, flush=True)
        outcome.elapsed = time.monotonic() - started
        return outcome
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()  # by its own pid
                proc.join(5)


# --------------------------------------------------------------------------- server side

@dataclass(frozen=True)
class Snapshot:
    rss_kib: int
    hwm_kib: int
    fds: int


def snapshot(pid: int) -> Snapshot | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    values = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith(("VmRSS", "VmHWM"))}
    return Snapshot(int(values["VmRSS"]), int(values["VmHWM"]), fds)


def worker_pids(log: Path, workers: int, timeout: float = 10.0) -> dict[int, int]:
    """Worker index -> pid, from the console log's "worker N pid P started" lines."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[int, int] = {}
        try:
            with open(log, errors="replace") as f:
                for line in f:
                    if "pid" in line and (match := _WORKER_LINE.search(line)):
                        found[int(match.group(1))] = int(match.group(2))
        except OSError:
            pass
        if len(found) >= workers or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests to send (default %(default)s)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default %(default)s)")
    parser.add_argument("--per-conn", type=int, default=100,
                        help="requests per keep-alive connection, and per run of one-shot ones (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="devserver workers (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=2000, help="requests before the start figures (default %(default)s)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="devserver-soak-") as tmp:
        base = Path(tmp)
        (base / "site").mkdir()
        site = make_site(base / "site")
        bodies = {"static": site.body(ONE_K), "hello": HELLO_BODY}
        spec = devserver(site, free_port(), args.workers)
        print(f"devserver soak: {args.requests} requests, {args.clients} client processes, "
              f"{args.workers} workers, port {spec.port}; half keep-alive ({args.per_conn} per connection), "
              "half one per connection; 2/5 /one_k.txt, 2/5 /hello.py, 1/5 404", flush=True)
        try:
            with running(spec, base) as server:
                pids = worker_pids(server.log, args.workers)
                if len(pids) < args.workers:
                    raise BenchError("the workers' pids are not in the log:\n" + server.log_tail())
                warm = run_clients(spec.port, args.warmup, args.clients, args.per_conn, bodies, first=0)
                time.sleep(0.5)  # the server closes its side of the last connections
                before = {i: snapshot(pid) for i, pid in pids.items()}
                outcome = run_clients(spec.port, args.requests, args.clients, args.per_conn, bodies,
                                      first=args.warmup, label="soak")
                time.sleep(1.0)
                after = {i: snapshot(pid) for i, pid in pids.items()}
                pids_after = worker_pids(server.log, args.workers)
        except BenchError as exc:
            print(f"soak: {exc}", file=sys.stderr)
            return 1

    errors = sum(outcome.errors.values())
    rate = outcome.requests / outcome.elapsed if outcome.elapsed else 0.0
    print()
    print(f"{'requests':>10} {'errors':>7} {'elapsed':>9} {'req/s':>8} {'worst':>8}")
    print(f"{outcome.requests:>10} {errors:>7} {outcome.elapsed:>8.1f}s {rate:>8.0f} {outcome.worst * 1000:>6.0f}ms")
    print()
    print(f"{'worker':>6} {'pid':>7} {'RSS start':>10} {'RSS end':>10} {'RSS peak':>10} {'fds start':>9} {'fds end':>7}")
    failed = errors > 0 or sum(warm.errors.values()) > 0
    for index, pid in sorted(pids.items()):
        start, end = before[index], after[index]
        if start is None or end is None:
            print(f"{index:>6} {pid:>7}  (gone)")
            failed = True
            continue
        print(f"{index:>6} {pid:>7} {_mib(start.rss_kib):>10} {_mib(end.rss_kib):>10} {_mib(end.hwm_kib):>10} "
              f"{start.fds:>9} {end.fds:>7}")
        if end.fds > start.fds + FD_SLACK:
            print(f"  worker {index}: {end.fds - start.fds} more open descriptors than at the start")
            failed = True
    if outcome.errors or warm.errors:
        print("\nerrors by kind:", ", ".join(f"{k}: {v}" for k, v in (outcome.errors + warm.errors).most_common()))
    if pids_after != pids:
        print(f"\nworkers were replaced during the run: {pids} -> {pids_after}")
        failed = True
    print("\nFAIL" if failed else "\nOK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
