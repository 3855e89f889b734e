"""What recording a request's inside (SQL, templates: devserver.probes) costs: the same server, on and off.

Two pages: a Flask + SQLAlchemy page (8 queries on SQLite, a Jinja2 template) and a Django page (an ORM
list with an N+1 of 6, a template).  Each is served by this checkout with ``--no-tui --log-format json``
(JSON lines to a file), once with recording on (what JSON lines do) and once with it off (Config.record_inside
turned off by the launcher below, nothing else changed).  Rounds interleave the setups (from another one each
round); each setup is started, warmed up, loaded with wrk (keep-alive, ``--conns`` connections) and stopped.
Printed: req/s and server CPU per request (every process of the server, from /proc) per round, the median of
the per-round on/off ratios, and the load average at the start and the end.  Target: recording costs at most
10% of req/s.

``--instructions`` counts instead what a busy machine cannot move: each page's app is called in one process,
in-process through WSGI (no server, no sockets), under ``valgrind --tool=callgrind``, with recording on (the
hooks installed, each call recorded and its record finished, as a worker does) and off; the instructions of a
run of 10 calls are taken from those of a run of 60, so what is left, divided by 50, is one call's, start-up
and import excluded.  ``--server-instructions`` counts the whole server instead (bench/instructions.py's
count_during_load: one worker and the supervisor, JSON lines formatted, under callgrind, counted only while
``--requests`` requests are served after a 500-request warm-up), each process apart and both together, each
setup ``--repeats`` times: the median of the per-run on/off ratios and their spread (a server's count moves
by a few percent from run to run).  Both need valgrind (Debian package ``valgrind``).

    python bench/inside.py [--rounds 5] [--duration 5] [--conns 20] [--workers 2] [--only flask,django]
    python bench/inside.py --instructions [--only flask,django]
    python bench/inside.py --server-instructions [--requests 300] [--repeats 3] [--only flask,django]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import (
    BENCH_DIR,
    ServerSpec,
    cpu_seconds,
    free_port,
    http_get,
    load_average,
    process_tree,
    python_argv,
    run_wrk,
    running,
)

FLASK_APP = '''
import os

from flask import Flask, render_template_string
from sqlalchemy import create_engine, text

engine = create_engine("sqlite:///" + os.path.join(os.path.dirname(os.path.abspath(__file__)), "shop.db"))
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)"))
    if not conn.execute(text("SELECT COUNT(*) FROM items")).scalar():
        conn.execute(text("INSERT INTO items (name) VALUES (:n)"), [{"n": f"item {i}"} for i in range(8)])
app = Flask(__name__)
PAGE = "<ul>{% for row in rows %}<li>{{ row }}</li>{% endfor %}</ul>"


@app.get("/")
def index():
    with engine.connect() as conn:
        rows = [conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": i}).scalar() for i in range(1, 9)]
    return render_template_string(PAGE, rows=rows)
'''

DJANGO_SETTINGS = '''
from pathlib import Path
BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["catalog"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]  # a Content-Length, as instructions.py reads
ROOT_URLCONF = "catalog.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
USE_TZ = True
'''
DJANGO_FILES = {
    "benchsite/__init__.py": "",
    "benchsite/settings.py": DJANGO_SETTINGS,
    "benchsite/wsgi.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")\n'
                         'from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n',
    "manage.py": 'import os, sys\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")\n'
                 'from django.core.management import execute_from_command_line\nexecute_from_command_line(sys.argv)\n',
    "catalog/__init__.py": "",
    "catalog/models.py": '''
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=50)


class Book(models.Model):
    title = models.CharField(max_length=50)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
''',
    "catalog/views.py": '''
from django.shortcuts import render

from catalog.models import Book


def books(request):
    return render(request, "catalog/books.html", {"rows": [(b.title, b.author.name) for b in Book.objects.all()]})
''',
    "catalog/urls.py": 'from django.urls import path\nfrom catalog import views\nurlpatterns = [path("", views.books)]\n',
    "catalog/templates/catalog/books.html": "<ul>{% for t, a in rows %}<li>{{ t }} by {{ a }}</li>{% endfor %}</ul>\n",
}
# The server command with Config.record_inside forced: the same build, the same options, only that differs.
LAUNCHER = ("import sys; from dataclasses import replace; from devserver import cli; made = cli.config_from_args; "
            "cli.config_from_args = lambda args, parser: replace(made(args, parser), record_inside={on}); "
            "sys.exit(cli.main(sys.argv[1:]))")
PAGES = {"flask": ("app:app", "<li>item 7</li>"), "django": ("benchsite.wsgi:application", "<li>t5 by a5</li>")}
# One process calling a page's app CALLS times in-process, recording ({on}) as a worker does: the hooks
# installed once the app is imported, each call made in a recorder, and the record finished.
CALLER = """
import importlib, sys
from wsgiref.util import setup_testing_defaults
from devserver.ipc.config import Config
from devserver.probes import hooks, recorder

module, name = {app!r}.split(":")
app = getattr(importlib.import_module(module), name)
on = {on} and hooks.install(Config(app_dir="."))


class Request:
    method, target = "GET", "/"


class Exchange:
    request, recorder = Request(), None


def call(environ):
    body = app(environ, lambda status, headers, exc_info=None: None)
    try:
        return b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()


for _ in range({calls}):
    environ = {{}}
    setup_testing_defaults(environ)
    exchange = Exchange()
    page = recorder.recorded(exchange, call)(environ)
    assert {expected!r}.encode() in page, page[:200]
    if on:
        assert exchange.recorder.finish().queries
"""
CALLS = (10, 60)
SUMMARY = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)


def make_projects(base: Path) -> dict[str, Path]:
    flask = base / "flask"
    flask.mkdir()
    (flask / "app.py").write_text(FLASK_APP.lstrip())
    django = base / "django"
    for name, text in DJANGO_FILES.items():
        (django / name).parent.mkdir(parents=True, exist_ok=True)
        (django / name).write_text(text.lstrip())
    seed = ("from catalog.models import Author, Book\n"
            "for n in range(6): Book.objects.create(title=f't{n}', author=Author.objects.create(name=f'a{n}'))")
    for command in (["makemigrations", "catalog"], ["migrate", "-v0"], ["shell", "-c", seed]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=django, check=True, capture_output=True)
    return {"flask": flask, "django": django}


def spec(page: str, on: bool, folder: Path, port: int, workers: int) -> ServerSpec:
    argv = python_argv("-c", LAUNCHER.format(on=on), PAGES[page][0], "--port", str(port), "--workers", str(workers),
                       "--no-tui", "--log-format", "json")
    path = os.pathsep.join(p for p in (str(BENCH_DIR.parent), os.environ.get("PYTHONPATH", "")) if p)
    return ServerSpec(name=f"{page}-{'on' if on else 'off'}", argv=argv, port=port, paths={"page": "/"},
                      ready_path="/", cwd=folder, env={"PYTHONPATH": path})


def instructions_of(page: str, on: bool, calls: int, folder: Path, out: Path) -> int:
    """The instructions callgrind counts in a process calling ``page``'s app ``calls`` times."""
    app, expected = PAGES[page]
    code = CALLER.format(app=app, on=on, calls=calls, expected=expected)
    path = os.pathsep.join(p for p in (str(folder), str(BENCH_DIR.parent), os.environ.get("PYTHONPATH", "")) if p)
    # One hash seed for every run: the dicts' layout, and so the counts, the same from run to run.
    env = os.environ | {"PYTHONPATH": path, "DJANGO_SETTINGS_MODULE": "benchsite.settings", "PYTHONHASHSEED": "0"}
    ran = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", code],
                         cwd=folder, env=env, capture_output=True, text=True, check=False)
    if ran.returncode != 0:
        raise SystemExit(f"{page} {'on' if on else 'off'} x{calls}: exit {ran.returncode}\n{ran.stderr[-2000:]}")
    return sum(int(m.group(1)) for m in SUMMARY.finditer(out.read_text(errors="replace")))


def app_call_instructions(page: str, on: bool, folder: Path, work: Path) -> float:
    """One in-process app call's instructions: a run of CALLS[1] calls less a run of CALLS[0]."""
    few, many = CALLS
    counts = [instructions_of(page, on, calls, folder, work / f"{page}-{on}-{calls}.out") for calls in CALLS]
    return (counts[1] - counts[0]) / (many - few)


def server_instructions(page: str, on: bool, folder: Path, out: Path, requests: int) -> dict[str, float]:
    """One request's instructions in each process of the server (the supervisor, its one worker), counted
    during load."""
    from instructions import PATIENT, count_during_load

    server_spec = spec(page, on, folder, free_port(), 1)
    env = os.environ | server_spec.env | {"DJANGO_SETTINGS_MODULE": "benchsite.settings"}
    counts = count_during_load([*server_spec.argv, *PATIENT], env, folder, server_spec.port, "/", requests, 10, False,
                               out, lambda pid: [pid, *children(pid)])
    supervisor, *workers = counts.values()  # in the order asked: the server's own process first
    return {"supervisor": supervisor / requests, "worker": sum(workers) / requests}


def _check_valgrind() -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench/inside.py: valgrind is not installed (apt install valgrind)")


def count_app_calls(pages: list[str]) -> int:
    """Print one in-process app call's instructions per page, recording off and on, and their ratio."""
    _check_valgrind()
    print(f"load average at start: {load_average()} (instruction counts do not depend on it)", flush=True)
    print("| page | off instructions/call | on instructions/call | on/off |")
    print("| --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="devserver-inside-") as tmp:
        work = Path(tmp)
        folders = make_projects(work)
        for page in pages:
            off, on = (app_call_instructions(page, recording, folders[page], work) for recording in (False, True))
            print(f"| {page} | {off:,.0f} | {on:,.0f} | {on / off:.3f} |", flush=True)
    print(f"\ncallgrind, (I({CALLS[1]}) - I({CALLS[0]})) / {CALLS[1] - CALLS[0]}, in-process WSGI calls; "
          f"load average at end: {load_average()}")
    return 0


PROCESSES = ("supervisor", "worker", "server")  # "server": both together, what a request costs the machine


def count_server(pages: list[str], requests: int, repeats: int) -> int:
    """Print each process's instructions per request, recording off and on, run ``repeats`` times (off and on
    one after the other, their order swapped each time), and the median and spread of the per-run ratios.

    A server's count moves from run to run (when the garbage collector runs, how requests fall into the
    event loop's batches): one run's ratio is not a figure, the median of several is.
    """
    _check_valgrind()
    print(f"load average at start: {load_average()} (instruction counts do not depend on it)", flush=True)
    runs: dict[tuple[str, bool], list[dict[str, float]]] = {(page, on): [] for page in pages for on in (False, True)}
    with tempfile.TemporaryDirectory(prefix="devserver-inside-") as tmp:
        work = Path(tmp)
        folders = make_projects(work)
        for repeat in range(repeats):
            for page in pages:
                for on in (False, True) if repeat % 2 == 0 else (True, False):
                    out = work / f"{page}-{'on' if on else 'off'}-{repeat}"
                    counts = server_instructions(page, on, folders[page], out, requests)
                    counts["server"] = counts["supervisor"] + counts["worker"]
                    runs[(page, on)].append(counts)
                    print(f"run {repeat + 1} {page:<6} {'on' if on else 'off':<3} "
                          + "  ".join(f"{name} {counts[name]:,.0f}" for name in PROCESSES), flush=True)
    print()
    print("| page | process | off instructions/request | on instructions/request | on/off (median) | on/off (runs) |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for page in pages:
        for name in PROCESSES:
            off_counts = [run[name] for run in runs[(page, False)]]
            on_counts = [run[name] for run in runs[(page, True)]]
            ratios = [a / b for a, b in zip(on_counts, off_counts)]
            print(f"| {page} | {name} | {statistics.median(off_counts):,.0f} | {statistics.median(on_counts):,.0f} | "
                  f"{statistics.median(ratios):.3f} | {', '.join(f'{r:.3f}' for r in ratios)} "
                  f"(spread {max(ratios) - min(ratios):.3f}) |")
    print(f"\ncallgrind, supervisor + 1 worker, {requests} requests over 10 keep-alive connections after a "
          f"500-request warm-up, JSON lines, {repeats} runs; load average at end: {load_average()}")
    return 0


def children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds of measured load per server")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--conns", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="flask,django")
    parser.add_argument("--instructions", action="store_true", help="count instructions per app call (callgrind)")
    parser.add_argument("--server-instructions", action="store_true",
                        help="count instructions per request of the whole server (callgrind)")
    parser.add_argument("--requests", type=int, default=300, help="with --server-instructions: requests counted")
    parser.add_argument("--repeats", type=int, default=3, help="with --server-instructions: runs of each setup")
    opts = parser.parse_args(argv)
    pages = [name for name in opts.only.split(",") if name]
    for name in pages:
        if name not in PAGES:
            parser.error(f"unknown page {name!r} (from: {', '.join(PAGES)})")
    if opts.instructions:
        return count_app_calls(pages)
    if opts.server_instructions:
        return count_server(pages, opts.requests, opts.repeats)
    setups = [(page, on) for page in pages for on in (False, True)]
    runs: dict[tuple[str, bool], list[tuple[float, float]]] = {setup: [] for setup in setups}  # (req/s, CPU us/req)
    print(f"load average at start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="devserver-inside-") as tmp:
        base = Path(tmp)
        folders = make_projects(base)
        logs = base / "logs"
        logs.mkdir()
        for round_ in range(opts.rounds):
            shift = round_ % len(setups)
            for page, on in setups[shift:] + setups[:shift]:
                server_spec = spec(page, on, folders[page], free_port(), opts.workers)
                with running(server_spec, logs) as server:
                    status, _, body = http_get(server_spec.port, "/")
                    if status != 200 or PAGES[page][1].encode() not in body:
                        raise SystemExit(f"{server_spec.name} answered {status} {body[:200]!r}")
                    url = server_spec.url("page")
                    if opts.warmup:
                        run_wrk(url, opts.conns, opts.warmup)
                    pids = process_tree(server.proc.pid)
                    before = cpu_seconds(pids)
                    result = run_wrk(url, opts.conns, opts.duration)
                    cpu_us = (cpu_seconds(pids) - before) * 1e6 / max(1, result.requests)
                    recorded = '"queries": [{' in server.log.read_text(errors="replace")
                if recorded != on:
                    raise SystemExit(f"{server_spec.name}: JSON lines {'lack' if on else 'carry'} queries")
                runs[(page, on)].append((result.requests_per_sec, cpu_us))
                print(f"round {round_ + 1} {server_spec.name:<11} {result.requests_per_sec:9,.0f} req/s "
                      f"{cpu_us:8.1f} us CPU/req", flush=True)
    print()
    print("| page | off req/s | on req/s | on/off req/s (rounds) | off CPU us/req | on CPU us/req | on/off CPU (rounds) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for page in pages:
        off_runs, on_runs = runs[(page, False)], runs[(page, True)]
        rps = [a[0] / b[0] for a, b in zip(on_runs, off_runs)]
        cpu = [a[1] / b[1] for a, b in zip(on_runs, off_runs)]
        print(f"| {page} | {statistics.median(r[0] for r in off_runs):,.0f} | {statistics.median(r[0] for r in on_runs):,.0f} | "
              f"{statistics.median(rps):.3f} ({', '.join(f'{x:.2f}' for x in rps)}) | "
              f"{statistics.median(r[1] for r in off_runs):.0f} | {statistics.median(r[1] for r in on_runs):.0f} | "
              f"{statistics.median(cpu):.3f} ({', '.join(f'{x:.2f}' for x in cpu)}) |")
    print(f"\n{opts.rounds} rounds, wrk -t2 -c{opts.conns} -d{opts.duration}s, {opts.workers} workers, JSON lines to a "
          f"file; load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
