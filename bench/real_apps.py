"""Real framework projects edited under light load: devserver against each framework's own reloader.

For each app (Flask package with an app factory and a Jinja template, a
Django project from ``startproject`` with a polls app, a Bottle app, a Falcon
app), each server is started in a fresh copy of the project, then ``--edits``
times: a view's token is rewritten (its length varies, as real edits do) and
a prober polls with fresh connections until the new token is served.
Meanwhile ``--clients`` clients (4) in another process request the page
``--rate`` times a second each (25: a light, steady 100 requests a second),
a new connection each time, except ``--keepalive`` of them (2) that reuse one
``http.client`` connection while the server allows it, as ``requests`` and
browsers do.  Reported per app and server:

* save-to-fresh latency (end of the write → end of the first fresh response):
  p50, p95, max;
* failed requests (errors, resets, timeouts, non-200), refused connections,
  and stale answers (an old token, to a request sent after the save ended:
  the time a reloader takes to notice is counted too).

Peers, on their default reload settings: ``flask run --debug`` (werkzeug's
reloader), ``manage.py runserver`` (Django's autoreloader) and
``uvicorn --interface wsgi --reload`` (Bottle, Falcon).  Bytecode writing is
on (PYTHONDONTWRITEBYTECODE removed), as on a user's machine.

    python bench/real_apps.py [--edits 20] [--keepalive 2] [--apps flask,django,bottle,falcon] [--json PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
POLL_EVERY = 0.002
SETTLE = 0.3  # seconds between edits once the new token is served (--settle)
START_TIMEOUT = 90.0

FLASK = {
    "shop/__init__.py": "from flask import Flask\n\n\ndef create_app():\n    app = Flask(__name__)\n"
                        "    from .views import main\n    app.register_blueprint(main)\n    return app\n",
    "shop/views.py": "from flask import Blueprint, render_template\n\nmain = Blueprint('main', __name__)\n"
                     "TOKEN = 'tok-0'\n\n\n@main.route('/')\ndef index():\n"
                     "    return render_template('index.html', token=TOKEN)\n",
    "shop/templates/index.html": "<!DOCTYPE html><html><body><p>[{{ token }}]</p></body></html>\n",
}
BOTTLE = {"app.py": "import bottle\n\napp = bottle.Bottle()\nTOKEN = 'tok-0'\n\n\n@app.route('/')\n"
                    "def index():\n    return '[' + TOKEN + ']'\n"}
FALCON = {"app.py": "import falcon\n\nTOKEN = 'tok-0'\n\n\nclass Page:\n    def on_get(self, req, resp):\n"
                    "        resp.text = '[' + TOKEN + ']'\n\n\napp = falcon.App()\napp.add_route('/', Page())\n"}
DJANGO_VIEWS = ("from django.http import HttpResponse\n\nTOKEN = 'tok-0'\n\n\ndef index(request):\n"
                "    return HttpResponse('[' + TOKEN + ']')\n")


@dataclass(frozen=True)
class AppCase:
    name: str
    view: str  # the file whose TOKEN is edited
    path: str  # the URL probed
    devserver_app: str
    peer: str
    peer_argv: Callable[[int], list[str]]
    make: Callable[[Path], None]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _make_django(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)], check=True)
    subprocess.run([sys.executable, "manage.py", "startapp", "polls"], cwd=root, check=True)
    (root / "polls/views.py").write_text(DJANGO_VIEWS)
    (root / "polls/urls.py").write_text("from django.urls import path\n\nfrom . import views\n\n"
                                        "urlpatterns = [path('', views.index)]\n")
    settings = root / "mysite/settings.py"
    settings.write_text(settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'polls',"))
    urls = root / "mysite/urls.py"
    urls.write_text(urls.read_text().replace("from django.urls import path", "from django.urls import include, path")
                    .replace("urlpatterns = [", "urlpatterns = [\n    path('polls/', include('polls.urls')),"))


def _uvicorn(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--interface", "wsgi", "--reload", "--port", str(port), "app:app"]


CASES = {
    "flask": AppCase("flask", "shop/views.py", "/", "shop:create_app()", "flask run --debug",
                     lambda port: [sys.executable, "-m", "flask", "--app", "shop:create_app", "run", "--debug",
                                   "--port", str(port)], lambda root: _write(root, FLASK)),
    "django": AppCase("django", "polls/views.py", "/polls/", "mysite.wsgi:application", "manage.py runserver",
                      lambda port: [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"], _make_django),
    "bottle": AppCase("bottle", "app.py", "/", "app:app", "uvicorn --reload", _uvicorn,
                      lambda root: _write(root, BOTTLE)),
    "falcon": AppCase("falcon", "app.py", "/", "app:app", "uvicorn --reload", _uvicorn,
                      lambda root: _write(root, FALCON)),
}


@dataclass
class Result:
    app: str
    server: str
    latencies_ms: list[float] = field(default_factory=list)
    missed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    stale: int = 0
    stale_after_ms: list[float] = field(default_factory=list)  # how long after its save each stale request was sent
    failures: Counter[str] = field(default_factory=Counter)
    note: str = ""

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies_ms)
        pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
        failed = sum(v for k, v in self.outcomes.items() if k not in ("200", "refused"))
        return {"app": self.app, "server": self.server, "edits": len(lat) + self.missed, "missed": self.missed,
                "p50_ms": round(statistics.median(lat), 1) if lat else None, "p95_ms": pick(0.95),
                "max_ms": round(lat[-1], 1) if lat else None, "requests": sum(self.outcomes.values()),
                "failed": failed, "refused": self.outcomes["refused"], "stale": self.stale,
                "stale_after_ms": sorted(self.stale_after_ms)[-10:], "failures": dict(self.failures), "note": self.note}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, timeout: float = 30.0, conn: http.client.HTTPConnection | None = None
         ) -> tuple[str, str]:
    """(outcome, body): outcome is the status, "refused" or "failed: <error>".

    With ``conn``, the request goes on that connection (reused, kept open
    unless it failed); else on a new one.
    """
    keep = conn is not None
    if conn is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return str(response.status), response.read().decode("utf-8", "replace")
    except ConnectionRefusedError:
        keep = False
        return "refused", ""
    except (OSError, http.client.HTTPException) as exc:
        keep = False
        return f"failed: {type(exc).__name__}", ""
    finally:
        if not keep:
            conn.close()


def _token(body: str) -> str | None:
    start = body.find("[tok-")
    return body[start + 1:body.find("]", start)] if start >= 0 else None


def _load_main(port: int, path: str, clients: int, rate: float, keepalive: int, stop: Any, out: Any) -> None:
    """The load, in its own process (so its threads do not slow the prober): (send time, outcome, token)s."""
    seen: list[tuple[float, str, str | None]] = []
    lock = threading.Lock()

    def client(reuse: bool) -> None:
        interval = 1 / rate if rate > 0 else 0.0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30) if reuse else None
        while True:
            sent = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process on Linux
            outcome, body = _get(port, path, conn=conn)
            with lock:
                seen.append((sent, outcome, _token(body)))
            if stop.wait(max(0.0, sent + interval - time.monotonic())):  # pacing, not synchronisation
                return

    threads = [threading.Thread(target=client, args=(i < keepalive,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.send(seen)


class Load:
    """Client threads in a child process requesting ``path`` in a loop, a new connection each time."""

    def __init__(self, port: int, path: str, clients: int, rate: float, keepalive: int = 0) -> None:
        ctx = multiprocessing.get_context("fork")
        self.stop = ctx.Event()
        self._receiver, sender = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_load_main, args=(port, path, clients, rate, keepalive, self.stop, sender), daemon=True)

    def __enter__(self) -> Load:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()

    def finish(self, saves: list[tuple[float, str]], result: Result) -> None:
        """Stop, then count outcomes and stale answers (an old token to a request sent after a save)."""
        self.stop.set()
        seen = self._receiver.recv() if self._receiver.poll(60) else []
        self.process.join(30)
        order = {token: i for i, (_, token) in enumerate(saves)}
        for sent, outcome, token in seen:
            result.outcomes[outcome] += 1
            current = next((i for i, (saved, _) in reversed(list(enumerate(saves))) if saved <= sent), None)
            # Older than the last save that ended before the request was sent (a request sent while the
            # next save was being written may already get that newer token: not stale).
            if outcome == "200" and current is not None and order.get(token or "", -1) < current:
                result.stale += 1
                result.stale_after_ms.append(round((sent - saves[current][0]) * 1000, 1))
            elif outcome not in ("200", "refused"):
                result.failures[outcome] += 1


def _start(argv: list[str], cwd: Path, port: int, path: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv} exited:\n{log.read_text()[-2000:]}")
        if _get(port, path, timeout=5)[0] == "200":
            return proc
        time.sleep(0.05)
    _stop(proc)
    raise RuntimeError(f"{argv} did not answer:\n{log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its reloader's children: a group we started
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def measure(case: AppCase, server: str, edits: int, clients: int, rate: float, timeout: float,
            settle: float = SETTLE, keepalive: int = 0) -> Result:
    result = Result(case.name, server)
    with tempfile.TemporaryDirectory(prefix=f"realapp-{case.name}-") as tmp:
        root = Path(tmp)
        case.make(root)
        port = _free_port()
        argv = ([sys.executable, "-m", "devserver", "--no-tui", "--port", str(port), case.devserver_app]
                if server == "devserver" else case.peer_argv(port))
        proc = _start(argv, root, port, case.path, root.parent / f"{root.name}.log")
        time.sleep(1.0)  # let every reloader finish setting up its watch (uvicorn's starts after it answers)
        load = Load(port, case.path, clients, rate, keepalive)
        saves: list[tuple[float, str]] = []
        view = root / case.view
        try:
            with load:
                for i in range(1, edits + 1):
                    token = f"tok-{'x' * (i % 3)}{i}"
                    text = view.read_text()
                    old = text[text.index("TOKEN = '"):]
                    old = old[:old.index("\n")]
                    view.write_text(text.replace(old, f"TOKEN = '{token}'"))
                    saved = time.monotonic()
                    saves.append((saved, token))
                    while True:
                        _, body = _get(port, case.path)
                        if _token(body) == token:
                            result.latencies_ms.append((time.monotonic() - saved) * 1000)
                            break
                        if time.monotonic() - saved > timeout:
                            result.missed += 1
                            break
                        time.sleep(POLL_EVERY)
                    time.sleep(settle)
                load.finish(saves, result)
        finally:
            load.stop.set()
            _stop(proc)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4, help="load clients (new connection per request)")
    parser.add_argument("--keepalive", type=int, default=2, help="of the clients, how many reuse one connection")
    parser.add_argument("--rate", type=float, default=25.0, help="requests a second per client (0: flat out)")
    parser.add_argument("--apps", default="flask,django,bottle,falcon")
    parser.add_argument("--servers", default="devserver,peer")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds an edit may take to be served")
    parser.add_argument("--settle", type=float, default=SETTLE,
                        help="seconds between one edit being served and the next save (default %(default)s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
    for name in args.apps.split(","):
        case = CASES[name]
        for server in args.servers.split(","):
            label = "devserver" if server == "devserver" else case.peer
            try:
                row = measure(case, server, args.edits, args.clients, args.rate, args.timeout, args.settle,
                              args.keepalive).summary()
            except RuntimeError as exc:
                row = Result(case.name, label, note=str(exc).splitlines()[0]).summary()
            row["server"] = label
            row["load_avg"] = round(os.getloadavg()[0], 2)  # the 1-minute load average once this row was measured
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(f"{'app':8} {'server':22} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'missed':>6} {'requests':>8} "
          f"{'failed':>6} {'refused':>7} {'stale':>6} {'load':>5}")
    for r in rows:
        print(f"{r['app']:8} {r['server']:22} {r['p50_ms']!s:>8} {r['p95_ms']!s:>8} {r['max_ms']!s:>8} "
              f"{r['missed']:>6} {r['requests']:>8} {r['failed']:>6} {r['refused']:>7} {r['stale']:>6} "
              f"{r['load_avg']:>5}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
