"""HTTPS: devserver --https against uvicorn with the same certificate and key, in interleaved rounds.

Two workloads, each against the ASGI hello world (``asgihello:app``, the same
worker count):

  handshake  ``Connection: close``: every request is a new TCP connection and a
             full TLS handshake (wrk resumes no sessions), 16 connections
  keepalive  hello world over 50 TLS keep-alive connections

devserver runs as a user runs it (``--https``, its CA and certificate in a
tmp data folder); uvicorn gets that certificate and key through
``--ssl-certfile/--ssl-keyfile``.  Before each run the server is checked with
Python's ``ssl`` against the CA (200, ``hello``).  Each round runs both
servers, the first one alternating; the median of the per-round req/s ratios
(devserver over uvicorn) is printed with each server's CPU time per request
(its process tree, from /proc) and the load average before and after.

    python bench/tls.py [--rounds 3] [--duration 5] [--warmup 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import (
    BENCH_DIR,
    HOST,
    BenchError,
    ServerSpec,
    cpu_seconds,
    free_port,
    make_site,
    process_tree,
    run_wrk,
    start_server,
    stop_server,
)

sys.path.insert(0, str(BENCH_DIR.parent))  # this checkout's devserver, for its certificate files

from devserver.tls.certs import ServerFiles, ensure_server_files

WORKLOADS = {"handshake": (16, ("Connection: close",)), "keepalive": (50, ())}


@dataclass(frozen=True)
class Run:
    server: str
    workload: str
    round: int
    rps: float
    cpu_us_per_request: float
    errors: int


def devserver_spec(dynamic: Path, data: Path, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name="devserver", port=port, paths={"hello": "/"}, ready_path="/", cwd=dynamic,
        argv=(sys.executable, "-m", "devserver", "asgihello:app", "--no-tui", "--https", "--host", HOST,
              "--port", str(port), "--workers", str(workers)),
        env={"XDG_DATA_HOME": str(data)}, note=f"--https, {workers} workers, console log to a file")


def uvicorn_spec(dynamic: Path, files: ServerFiles, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name="uvicorn", port=port, paths={"hello": "/"}, ready_path="/",
        argv=(sys.executable, "-m", "uvicorn", "--http", "httptools", "--loop", "asyncio", "--host", HOST,
              "--port", str(port), "--workers", str(workers), "--ssl-certfile", str(files.cert),
              "--ssl-keyfile", str(files.key), "asgihello:app"),
        env={"PYTHONPATH": str(dynamic)}, note=f"--http httptools --loop asyncio --workers {workers}, same cert")


def https_get(port: int, context: ssl.SSLContext) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("localhost", port, timeout=5, context=context)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextmanager
def serving(spec: ServerSpec, logs: Path, context: ssl.SSLContext, timeout: float = 30.0):
    server = start_server(spec, logs)
    try:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            if server.proc.poll() is not None:
                raise BenchError(f"{spec.name} exited:\n{server.log_tail()}")
            try:
                status, body = https_get(spec.port, context)
                if status == 200 and body.startswith(b"Hello"):
                    break
                last = f"{status} {body[:60]!r}"
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise BenchError(f"{spec.name} not ready over TLS ({last}):\n{server.log_tail()}")
            time.sleep(0.05)
        yield server
    finally:
        stop_server(server)


def measure(spec: ServerSpec, workload: str, round_: int, opts: argparse.Namespace, logs: Path,
            context: ssl.SSLContext) -> Run:
    conns, headers = WORKLOADS[workload]
    url = f"https://{HOST}:{spec.port}/"
    with serving(spec, logs, context) as server:
        run_wrk(url, conns, opts.warmup, headers=headers)
        pids = process_tree(server.proc.pid)
        before = cpu_seconds(pids)
        result = run_wrk(url, conns, opts.duration, headers=headers)
        used = cpu_seconds(pids) - before
    return Run(spec.name, workload, round_, result.requests_per_sec, used / max(result.requests, 1) * 1e6,
               result.socket_errors + result.non_2xx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        base = Path(tmp)
        site = make_site(base)
        data = base / "data"
        files = ensure_server_files(data / "devserver" / "tls", ())  # the file devserver --https will serve
        context = ssl.create_default_context(cafile=str(files.ca))
        logs = base / "logs"
        logs.mkdir()
        builders: dict[str, Callable[[int], ServerSpec]] = {
            "devserver": lambda port: devserver_spec(site.dynamic, data, port, opts.workers),
            "uvicorn": lambda port: uvicorn_spec(site.dynamic, files, port, opts.workers),
        }
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        runs: list[Run] = []
        for round_ in range(opts.rounds):
            for workload in WORKLOADS:
                order = list(builders) if (round_ + len(runs)) % 2 == 0 else list(reversed(builders))
                for name in order:
                    run = measure(builders[name](free_port()), workload, round_, opts, logs, context)
                    runs.append(run)
                    print(f"round {round_ + 1} {workload:9} {name:9} {run.rps:9.0f} req/s "
                          f"{run.cpu_us_per_request:7.0f} us CPU/request  errors {run.errors}", flush=True)
        print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print()
        print("| workload | devserver req/s | uvicorn req/s | ratio (median of rounds) | devserver CPU/req | uvicorn CPU/req |")
        print("|---|---|---|---|---|---|")
        for workload in WORKLOADS:
            mine = {r.round: r for r in runs if r.workload == workload and r.server == "devserver"}
            peer = {r.round: r for r in runs if r.workload == workload and r.server == "uvicorn"}
            ratio = statistics.median(mine[n].rps / peer[n].rps for n in mine if peer[n].rps)
            print(f"| {workload} | {statistics.median(r.rps for r in mine.values()):.0f} "
                  f"| {statistics.median(r.rps for r in peer.values()):.0f} | {ratio:.2f}x "
                  f"| {statistics.median(r.cpu_us_per_request for r in mine.values()):.0f} us "
                  f"| {statistics.median(r.cpu_us_per_request for r in peer.values()):.0f} us |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
