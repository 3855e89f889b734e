"""WebSocket echo, 50 clients: devserver against uvicorn (websockets and wsproto backends), interleaved rounds.

    python bench/ws_echo.py [--rounds 5] [--duration 5] [--clients 50] [--size 32] [--workers 2]

Each round starts every server in turn (order rotated each round) on the
same raw ASGI echo app, with the same worker count; 50 clients (asyncio,
the `websockets` client, in a process of their own) each send a message and
wait for its echo, over and over, for DURATION seconds.  Printed per round
and as medians: messages echoed per second, server CPU µs per message (every
process of its tree, /proc), and the median of the per-round ratios
devserver / uvicorn; how the CPU was shared between the server's processes
(the parent first: devserver's supervisor, uvicorn's master); the load
average at the start and the end.  ``--servers`` picks some of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from common import HOST, ServerSpec, cpu_seconds, free_port, process_tree, python_argv, running

APP = '''
async def app(scope, receive, send):
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
'''


SERVERS = ("devserver", "uvicorn-websockets", "uvicorn-wsproto")


def servers(project: Path, workers: int) -> dict[str, ServerSpec]:
    def spec(name: str, argv: tuple[str, ...], ready: str) -> ServerSpec:
        return ServerSpec(name=name, argv=argv, port=port, paths={}, ready_path=ready, cwd=project)

    port = free_port()
    uvicorn = ("-m", "uvicorn", "echo:app", "--host", HOST, "--port", str(port), "--workers", str(workers),
               "--log-level", "warning", "--no-access-log")
    return {
        # Served with its console log, as a developer runs it; the ready file is static (html_page/).
        "devserver": spec("devserver", python_argv("-m", "devserver", "echo:app", "--no-tui", "--host", HOST,
                                                   "--port", str(port), "--workers", str(workers)), "/ready.txt"),
        "uvicorn-websockets": spec("uvicorn-websockets", python_argv(*uvicorn, "--ws", "websockets"), "/"),
        "uvicorn-wsproto": spec("uvicorn-wsproto", python_argv(*uvicorn, "--ws", "wsproto"), "/"),
    }


CLIENTS = '''
import asyncio, sys, time
from websockets.asyncio.client import connect

async def client(url, message, until, counts):
    async with connect(url, max_size=None, compression=None) as ws:
        await ws.send(message)  # one round trip before the clock starts
        await ws.recv()
        count = 0
        while time.monotonic() < until:
            await ws.send(message)
            await ws.recv()
            count += 1
        counts.append(count)

async def main(url, clients, size, duration):
    counts = []
    until = time.monotonic() + 2 + duration  # connect first; then the measured window
    start = until - duration
    await asyncio.gather(*(client(url, "x" * size, until, counts) for _ in range(clients)))
    print(sum(counts), time.monotonic() - start)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
'''


def load(port: int, clients: int, size: int, duration: float) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", CLIENTS, f"ws://{HOST}:{port}/echo", str(clients), str(size),
                          str(duration)], capture_output=True, text=True, timeout=duration + 60, check=True)
    count, seconds = out.stdout.split()
    return int(count), float(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated, from: %(default)s")
    opts = parser.parse_args(argv)
    figures: dict[str, list[tuple[float, float]]] = {}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="devserver-ws-echo-") as tmp:
        project = Path(tmp)
        (project / "echo.py").write_text(APP)
        (project / "html_page").mkdir()
        (project / "html_page" / "ready.txt").write_text("ok")
        logs = project / "logs"
        logs.mkdir()
        for round_ in range(opts.rounds):
            table = servers(project, opts.workers)
            specs = [table[name] for name in opts.servers.split(",")]
            shift = round_ % len(specs)
            for spec in specs[shift:] + specs[:shift]:
                with running(spec, logs) as server:
                    load(spec.port, opts.clients, opts.size, 0.5)  # warm up
                    pids = process_tree(server.proc.pid)
                    before = {pid: cpu_seconds([pid]) for pid in pids}
                    count, seconds = load(spec.port, opts.clients, opts.size, opts.duration)
                    used = {pid: cpu_seconds([pid]) - before[pid] for pid in pids}
                cpu = sum(used.values())
                rate, cpu_us = count / seconds, cpu / max(count, 1) * 1e6
                figures.setdefault(spec.name, []).append((rate, cpu_us))
                # Where the CPU went: the parent (devserver's supervisor, uvicorn's master) and each worker.
                shares = " ".join(f"{used[pid] / cpu:.0%}" for pid in pids) if cpu > 0 else ""
                print(f"round {round_ + 1} {spec.name:20} {rate:10.0f} msg/s {cpu_us:8.1f} µs CPU/msg  "
                      f"CPU by process (parent first) {shares}", flush=True)
    print()
    # Two ratios, read in opposite directions: devserver's msg/s over the peer's (above 1: devserver echoes
    # more), and its CPU per message over the peer's (below 1: devserver spends less).
    print(f"{'server':20} {'msg/s':>10} {'µs CPU/msg':>11} {'msg/s: devserver / it':>22} "
          f"{'CPU/msg: devserver / it':>24}")
    ours = figures["devserver"]
    for name, rows in figures.items():
        rate = statistics.median(r for r, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        speed = statistics.median(a[0] / b[0] for a, b in zip(ours, rows, strict=True))
        cost = statistics.median(a[1] / b[1] for a, b in zip(ours, rows, strict=True))
        print(f"{name:20} {rate:10.0f} {cpu:11.1f} {speed:21.2f}x {cost:23.2f}x")
    print(f"clients {opts.clients}, {opts.size}-byte text messages, {opts.workers} workers each; "
          f"load average at the start {' '.join(f'{x:.2f}' for x in load_start)}, at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} ({time.strftime('%H:%M:%S')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
