"""Reload latency: how soon after a save does a dev server serve the new code?

Every server is started (each in a folder of its own), then ``--rounds``
times, one server after the other (each round from another one): rewrite a
WSGI module so it returns a new token, then poll with a fresh connection every
~2 ms until a response carries that token.  Latency runs from the end of the
write (file closed) to the end of that response.  Counted in the window: stale
responses (the old token), failed requests (errors, resets, timeouts, non-200)
and refused connections.  Beside it, the median time of the fresh-connection
requests made between edits: the floor under any reload on the machine as it
is (on a busy one, a reload's figure minus its floor is what the reload cost).

Servers, each on its default reload settings:
  devserver       python -m devserver --no-tui        (/tokenapp.py from dynamic/: in-process module purge)
  devserver-app   python -m devserver tokenapp:application --no-tui
                                                      (the module as a project APP, in a folder of its own)
  uvicorn         uvicorn --interface wsgi --reload   (restarts its worker process)
  granian         granian --interface wsgi --reload --workers 2
                                                      (restarts its workers)
  werkzeug        run_simple(use_reloader=True)       (restarts its child process)

``--app fastapi`` edits a FastAPI app (``tokenapp:app``, ``GET /`` returning
the token as text) instead of the WSGI one: devserver-app, uvicorn and
granian then serve it as ASGI (``devserver`` with /tokenapp.py from dynamic/
and werkzeug take WSGI only).  ``--poll-every`` sets the gap between the
fresh connections (the issue's benchmark: 5 ms).

Consecutive tokens differ in length, so a server that restarts and trusts
``.pyc`` files is not fooled by Python's mtime-in-seconds check; ``--same-size``
keeps the length fixed to show that trap (rounds that never see the new token
within ``--timeout`` are counted as "missed").  Bytecode writing is on, as on
a user's machine (PYTHONDONTWRITEBYTECODE is removed from the servers' env).

    python bench/reload_latency.py [--rounds N] [--servers devserver,devserver-app,uvicorn,werkzeug] [--json PATH]
    python bench/reload_latency.py --app fastapi --rounds 20 --poll-every 0.005 --servers devserver-app,uvicorn,granian
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import load_average

POLL_EVERY = 0.002  # seconds between polls
SETTLE = 0.2  # seconds between rounds, once the new token was seen
WARMUP = 1.0  # seconds after the first answer: uvicorn sets up its watcher after its worker answers
APP = '''TOKEN = {token!r}


def application(environ, start_response):
    body = TOKEN.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''
FASTAPI_APP = '''from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

TOKEN = {token!r}
app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def index():
    return TOKEN
'''
# The module's text and the attribute an APP names, per kind of app.
APPS = {"wsgi": (APP, "application"), "fastapi": (FASTAPI_APP, "app")}
WSGI_ONLY = ("devserver", "werkzeug")  # the servers that cannot take --app fastapi (no APP, or no ASGI)
WERKZEUG_RUNNER = '''import sys
from werkzeug.serving import run_simple
sys.path.insert(0, {folder!r})
from tokenapp import application
run_simple("127.0.0.1", {port}, application, use_reloader=True)
'''


@dataclass
class Result:
    server: str
    latencies: list[float] = field(default_factory=list)  # ms
    requests: list[float] = field(default_factory=list)  # ms, fresh-connection requests between edits (the floor)
    stale: int = 0
    failed: int = 0
    refused: int = 0
    missed: int = 0  # rounds whose token never showed up
    note: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def write(path: Path, token: str, kind: str) -> float:
    """Rewrite the module (the ``kind`` of APPS); returns the time the file was closed."""
    with open(path, "w") as f:
        f.write(APPS[kind][0].format(token=token))
    return time.perf_counter()


class Server:
    """A server under test: its command, the module it serves, its URL path."""

    name = ""
    path = "/"
    folders = ("html_page", "dynamic")  # made in the server's folder before it starts

    def __init__(self, folder: Path, port: int, kind: str = "wsgi") -> None:
        self.folder = folder
        self.port = port
        self.kind = kind
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def module(self) -> Path:
        return self.folder / "tokenapp.py"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.proc = subprocess.Popen(self.command(), cwd=self.folder, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                if fetch(self.port, self.path)[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGINT, 5), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue


class DevServer(Server):
    name = "devserver"
    path = "/tokenapp.py"

    @property
    def module(self) -> Path:
        return self.folder / "dynamic" / "tokenapp.py"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "devserver", "--no-tui", "--port", str(self.port),
                "--root", "html_page", "--dynamic", "dynamic"]


class DevServerApp(Server):
    """The same module named as a project APP (``devserver tokenapp:application``), from a folder with no
    html_page/ or dynamic/: the app's own freshness check and purge (project.py), not dynamic.py's."""

    name = "devserver APP"
    path = "/"
    folders = ()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "devserver", f"tokenapp:{APPS[self.kind][1]}", "--no-tui",
                "--port", str(self.port)]


class Uvicorn(Server):
    name = "uvicorn --reload"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", f"tokenapp:{APPS[self.kind][1]}",
                *(["--interface", "wsgi"] if self.kind == "wsgi" else []), "--reload",
                "--reload-dir", str(self.folder), "--app-dir", str(self.folder), "--port", str(self.port),
                "--log-level", "warning"]


class Granian(Server):
    name = "granian --reload"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "granian", "--interface", "wsgi" if self.kind == "wsgi" else "asgi",
                "--reload", "--reload-paths", str(self.folder), "--workers", "2", "--host", "127.0.0.1",
                "--port", str(self.port), f"tokenapp:{APPS[self.kind][1]}"]


class Werkzeug(Server):
    name = "werkzeug run_simple"

    def command(self) -> list[str]:
        runner = self.folder / "serve_werkzeug.py"
        runner.write_text(WERKZEUG_RUNNER.format(folder=str(self.folder), port=self.port))
        return [sys.executable, str(runner)]


SERVERS = {"devserver": DevServer, "devserver-app": DevServerApp, "uvicorn": Uvicorn, "granian": Granian,
           "werkzeug": Werkzeug}
REQUIRES = {"uvicorn": "uvicorn", "granian": "granian", "werkzeug": "werkzeug"}


def token_for(round_: int, same_size: bool) -> str:
    token = f"token-{round_:04d}"
    return token if same_size else token + "+" * (round_ % 2)


def edit_once(server: Server, result: Result, round_: int, same_size: bool, timeout: float,
              poll_every: float = POLL_EVERY) -> None:
    """One edit: write the next token, poll until it is served, then keep the server warm (into ``result``)."""
    token = token_for(round_, same_size)
    expected = token.encode()
    written = write(server.module, token, server.kind)
    deadline = written + timeout
    while True:
        now = time.perf_counter()
        if now > deadline:
            result.missed += 1
            break
        try:
            status, body = fetch(server.port, server.path)
        except ConnectionRefusedError:
            result.refused += 1
        except (OSError, http.client.HTTPException):
            result.failed += 1
        else:
            if status == 200 and body == expected:
                result.latencies.append((time.perf_counter() - written) * 1000)
                break
            if status == 200:
                result.stale += 1
            else:
                result.failed += 1
        time.sleep(poll_every)
    result.requests.extend(warm(server, SETTLE))


def warm(server: Server, seconds: float) -> list[float]:
    """Keep requesting for a while, so every worker has the module loaded before the next edit.

    Otherwise a worker whose module was purged but not yet re-imported would
    answer with the new code at once, and the watcher's path would go unmeasured.
    Returns how long each of those requests took (ms), the half settled after
    the edit: what a request costs without a reload, on the machine as it is.
    """
    started = time.perf_counter()
    until = started + seconds
    timed = []
    while (now := time.perf_counter()) < until:
        try:
            fetch(server.port, server.path)
        except (OSError, http.client.HTTPException):
            pass
        else:
            if now - started > seconds / 2:
                timed.append((time.perf_counter() - now) * 1000)
        time.sleep(0.005)
    return timed


def run(names: list[str], rounds: int, same_size: bool, timeout: float, kind: str = "wsgi",
        poll_every: float = POLL_EVERY) -> list[Result]:
    """Every server started at once (each in a folder of its own), then edited in turn, round after round.

    The servers' rounds are interleaved, each round starting from another
    server, so a busy minute of the machine falls on all of them alike.
    """
    with contextlib.ExitStack() as stack:
        servers, results = [], []
        for name in names:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reload-bench-")))
            server = SERVERS[name](folder, free_port(), kind)
            for sub in server.folders:
                (folder / sub).mkdir()
            if "html_page" in server.folders:
                (folder / "html_page" / "index.html").write_text("<html><body>bench</body></html>\n")
            write(server.module, token_for(0, same_size), kind)
            stack.callback(server.stop)
            result = Result(server.name)
            try:
                server.start()
                warm(server, WARMUP)
            except RuntimeError as exc:
                result.note = str(exc)
            else:
                servers.append((server, result))
            results.append(result)
        for round_ in range(1, rounds + 1):
            shift = round_ % max(1, len(servers))
            for server, result in servers[shift:] + servers[:shift]:
                edit_once(server, result, round_, same_size, timeout, poll_every)
        return results


def p95(values: list[float]) -> float:
    """The 95th percentile (inclusive method) of sorted ``values``; the value itself for one."""
    return statistics.quantiles(values, n=100, method="inclusive")[94] if len(values) > 1 else values[0]


def write_json(path: Path, names: list[str], results: list[Result], args: argparse.Namespace) -> None:
    """Every latency and counter per server, with the options, for bench/report.py and later readers."""
    entries = []
    for name, r in zip(names, results):
        values = sorted(r.latencies)
        entries.append({
            "key": name, "server": r.server, "rounds": args.rounds, "latencies_ms": r.latencies,
            "p50_ms": statistics.median(values) if values else None, "p95_ms": p95(values) if values else None,
            "max_ms": values[-1] if values else None, "stale": r.stale, "failed": r.failed, "refused": r.refused,
            "missed": r.missed, "note": r.note,
            "request_p50_ms": statistics.median(r.requests) if r.requests else None,
        })
    payload = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv, "rounds": args.rounds, "app": args.app,
               "same_size": args.same_size, "timeout_s": args.timeout, "results": entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def table(results: list[Result], rounds: int) -> str:
    header = (f"{'server':<22}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'request ms':>12}"
              f"{'stale':>8}{'failed':>8}{'refused':>9}{'missed':>8}")
    lines = [header, "-" * len(header)]
    for r in results:
        if not r.latencies:
            lines.append(f"{r.server:<22}  {r.note or 'no round completed'}")
            continue
        values = sorted(r.latencies)
        floor = statistics.median(r.requests) if r.requests else float("nan")
        lines.append(f"{r.server:<22}{statistics.median(values):>9.1f}{p95(values):>9.1f}{values[-1]:>9.1f}"
                     f"{floor:>12.1f}{r.stale:>8}{r.failed:>8}{r.refused:>9}{r.missed:>8}")
    lines.append(f"({rounds} rounds each, interleaved; request ms: median of the fresh-connection requests "
                 "between edits, the floor under any reload; stale/failed/refused: requests during the reload "
                 "windows; missed: rounds without the new token in time)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="edits per server (default %(default)s)")
    parser.add_argument("--servers", default="devserver,devserver-app,uvicorn,werkzeug",
                        help="comma-separated, from: " + ", ".join(SERVERS))
    parser.add_argument("--same-size", action="store_true",
                        help="keep every token the same length (the stale-bytecode trap)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each new token")
    parser.add_argument("--app", choices=sorted(APPS), default="wsgi", help="the app edited (default %(default)s)")
    parser.add_argument("--poll-every", type=float, default=POLL_EVERY,
                        help="seconds between the fresh connections (default %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results (every latency) to PATH as JSON")
    args = parser.parse_args()
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    missing: dict[str, Result] = {}
    for name in names:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}")
        if args.app != "wsgi" and name in WSGI_ONLY:
            parser.error(f"{name} cannot serve --app {args.app}")
        module = REQUIRES.get(name)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                missing[name] = Result(name, note=f"{module} is not installed (pip install -e '.[bench]')")
    print(f"load average before: {load_average()}", flush=True)
    measured = iter(run([name for name in names if name not in missing], args.rounds, args.same_size, args.timeout,
                        args.app, args.poll_every))
    results = [missing[name] if name in missing else next(measured) for name in names]
    print(table(results, args.rounds))
    print(f"load average after: {load_average()}")
    if args.json:
        write_json(Path(args.json), names, results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
