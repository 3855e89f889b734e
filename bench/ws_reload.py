"""A save with 20 WebSockets open: devserver against `uvicorn --reload`, interleaved rounds.

    python bench/ws_reload.py [--rounds 5] [--sockets 20] [--bound 10] [--app echo|waiting]

Each round starts each server in turn on the same ASGI app (a raw echo
that answers "version" with its VERSION), opens SOCKETS WebSockets, then
saves a new VERSION and measures, from the save: when each socket was
closed and with which code (a socket still open after BOUND seconds
counts as hung), and when a new connection first answers the new version.
Printed per round and as medians: the last socket's close (ms), the close
codes seen, the time to the new code (ms); the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from common import HOST, ServerSpec, free_port, python_argv, running
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

APP = '''
VERSION = "{version}"


async def app(scope, receive, send):
    if scope["type"] == "http":
        await receive()
        await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}})
        await send({{"type": "http.response.body", "body": VERSION.encode()}})
        return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({{"type": "websocket.accept"}})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({{"type": "websocket.send", "text": VERSION}})
        {then}
'''
# What the app does after answering: reads on (an echo), or waits on something else, never reading again
# (a handler waiting on a queue or a pub/sub feed: the case uvicorn's reload hangs on, uvicorn #2943, #675).
THEN = {"echo": "pass", "waiting": "import asyncio; await asyncio.Event().wait()"}


def specs(project: Path) -> list[ServerSpec]:
    port = free_port()
    common = {"port": port, "paths": {}, "cwd": project}
    return [
        ServerSpec(name="devserver", argv=python_argv("-m", "devserver", "echo:app", "--no-tui", "--host", HOST,
                                                      "--port", str(port), "--workers", "2"),
                   ready_path="/ready.txt", **common),  # type: ignore[arg-type]
        ServerSpec(name="uvicorn --reload", argv=python_argv("-m", "uvicorn", "echo:app", "--reload", "--host", HOST,
                                                             "--port", str(port), "--log-level", "warning"),
                   ready_path="/", **common),  # type: ignore[arg-type]
    ]


def version(port: int) -> str:
    with connect(f"ws://{HOST}:{port}/echo", open_timeout=2) as ws:
        ws.send("version")
        return str(ws.recv(2))


def one_round(port: int, project: Path, sockets: int, bound: float, source: str) -> tuple[float, Counter[str], float]:
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(f"ws://{HOST}:{port}/echo", open_timeout=10)) for _ in range(sockets)]
        return measure(clients, port, project, bound, source)


def measure(clients: list[ClientConnection], port: int, project: Path, bound: float,
            source: str) -> tuple[float, Counter[str], float]:
    old, new = "old", "new"
    for client in clients:
        client.send("version")
        assert client.recv(10) == old
    closed: list[tuple[float, str]] = []

    def watch(client: ClientConnection) -> None:
        try:
            client.recv(bound)
            closed.append((time.monotonic(), "message"))
        except ConnectionClosed as exc:
            closed.append((time.monotonic(), str(exc.rcvd.code) if exc.rcvd is not None else "no close frame"))
        except TimeoutError:
            closed.append((time.monotonic(), "hung"))

    watchers = [threading.Thread(target=watch, args=(client,)) for client in clients]
    for watcher in watchers:
        watcher.start()
    (project / "echo.py").write_text(source)
    saved = time.monotonic()
    fresh = float("nan")
    while time.monotonic() - saved < bound:
        try:
            if version(port) == new:
                fresh = time.monotonic() - saved
                break
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
            pass
        time.sleep(0.01)
    for watcher in watchers:
        watcher.join()
    codes = Counter(code for _, code in closed)
    last = max(at for at, code in closed if code != "hung") - saved if len(codes) > ("hung" in codes) else float("nan")
    return last * 1000, codes, fresh * 1000


def ms(value: float) -> str:
    """Milliseconds, or "never" (nan: not within the bound)."""
    return "   never" if math.isnan(value) else f"{value:5.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--bound", type=float, default=10.0)
    parser.add_argument("--app", choices=sorted(THEN), default="echo")
    opts = parser.parse_args(argv)
    results: dict[str, list[tuple[float, Counter[str], float]]] = {}
    with tempfile.TemporaryDirectory(prefix="devserver-ws-reload-") as tmp:
        project = Path(tmp)
        (project / "html_page").mkdir()
        (project / "html_page" / "ready.txt").write_text("ok")
        logs = project / "logs"
        logs.mkdir()
        for round_ in range(opts.rounds):
            order = specs(project)
            for spec in order if round_ % 2 == 0 else order[::-1]:
                (project / "echo.py").write_text(APP.format(version="old", then=THEN[opts.app]))
                with running(spec, logs):
                    row = one_round(spec.port, project, opts.sockets, opts.bound, APP.format(version="new",
                                    then=THEN[opts.app]))
                results.setdefault(spec.name, []).append(row)
                closes, codes, fresh = row
                print(f"round {round_ + 1} {spec.name:18} last close {ms(closes)}  codes {dict(codes)}  "
                      f"new code after {ms(fresh)}", flush=True)
    print()
    for name, rows in results.items():
        codes = sum((c for _, c, _ in rows), Counter())
        print(f"{name:18} last close (median) {ms(statistics.median(r[0] for r in rows))}  "
              f"new code (median) {ms(statistics.median(r[2] for r in rows))}  codes {dict(codes)}")
    print(f"{opts.sockets} sockets, bound {opts.bound:g} s; load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
