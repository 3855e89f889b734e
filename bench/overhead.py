"""What a server adds to an app, in instructions per request: devserver against gunicorn and granian.

The time a request takes is the app's own work plus the server's.  This
separates the two with a count a busy machine cannot move (valgrind's
callgrind, as ``instructions.py``):

1. **the app alone**: the same WSGI app called in one process with a
   ready-made environ, ``--requests`` times, body joined and closed (the
   least any server must spend);
2. **each server** under the same load (``--requests`` GETs over
   ``--conns`` keep-alive connections after a 500-request warm-up), one
   worker, every process of the server counted (devserver's supervisor,
   gunicorn's arbiter, granian's main process);

and prints each server's total, and its *overhead*: the total less the app
alone.  Instructions are not time: a Rust server's instructions are cheaper
per instruction than an interpreter's, and thread hand-offs cost in waits
that are not counted here.  The wall clock is ``rounds.py``'s job.

    python bench/overhead.py [--case hello|flask] [--requests 1000] [--servers devserver,gunicorn-gthread,granian]

Needs valgrind; about a minute per server.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from common import HOST, free_port, make_site
from instructions import PATIENT, count_during_load, instructions

CASES = {"hello": ("hello", "application"), "flask": ("flaskapp", "app")}  # case: (module, callable)
GUNICORN_THREADS = 8

APP_ALONE = '''\
import io, sys
from {module} import {attribute} as app
def environ():
    return {{"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "",
             "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
             "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1:8000",
             "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
             "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
             "wsgi.run_once": False}}
def start_response(status, headers, exc_info=None):
    return None
for _ in range(int(sys.argv[1])):
    body = app(environ(), start_response)
    b"".join(body)
    if hasattr(body, "close"):
        body.close()
'''


def _callgrind(argv: list[str], out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}.%p", *argv]


def app_alone(site_dynamic: Path, case: str, requests: int, work: Path) -> float:
    """Instructions per call of the app by itself: (N + requests calls) − (N calls), N a warm-up."""
    module, attribute = CASES[case]
    script = work / "app_alone.py"
    script.write_text(APP_ALONE.format(module=module, attribute=attribute))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site_dynamic), "HOME": str(work)}
    totals = []
    for calls in (500, 500 + requests):
        out = work / f"alone-{calls}"
        subprocess.run(_callgrind([sys.executable, str(script), str(calls)], out), env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        totals.append(instructions(glob.glob(f"{out}.*")))
    return (totals[1] - totals[0]) / requests


def _server_argv(server: str, case: str, port: int, site_html: Path, site_dynamic: Path) -> list[str]:
    module, attribute = CASES[case]
    app = f"{module}:{attribute}"
    table = {
        "devserver": ["-m", "devserver", app, "--port", str(port), "--workers", "1", "--root", str(site_html),
                      "--dynamic", str(site_dynamic), "--no-tui", *PATIENT],
        "gunicorn-gthread": ["-m", "gunicorn", "--bind", f"{HOST}:{port}", "--workers", "1", "--worker-class",
                             "gthread", "--threads", str(GUNICORN_THREADS),
                             # under valgrind a request is ~50× slower: no keep-alive or worker timeout may fire
                             "--keep-alive", "600", "--timeout", "600", app],
        "granian": ["-m", "granian", "--interface", "wsgi", "--host", HOST, "--port", str(port), "--workers", "1",
                    app],
    }
    return [sys.executable, *table[server]]


def server_total(server: str, case: str, requests: int, conns: int, checkout: Path, work: Path) -> float:
    """Instructions per request of every process of ``server``, counted only while the load runs."""
    base = work / f"site-{server}"
    base.mkdir()
    site = make_site(base)
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{checkout.resolve()}:{site.dynamic}", "HOME": str(work)}
    counts = count_during_load(_server_argv(server, case, port, site.html_page, site.dynamic), env, site.base, port,
                               "/", requests, conns, False, work / f"cg-{server}", _tree)
    return sum(counts.values()) / requests


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's worker may fork helpers of its own)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in glob.glob(f"/proc/{current}/task/*/children"):
            todo.extend(int(child) for child in Path(task).read_text().split())
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="flask")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--servers", default="devserver,gunicorn-gthread,granian")
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the devserver checkout to measure (default: this one)")
    opts = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("bench/overhead.py: valgrind is not installed (apt install valgrind)")
        return 2
    with tempfile.TemporaryDirectory(prefix="devserver-overhead-") as tmp:
        work = Path(tmp)
        (work / "alone-site").mkdir()
        site = make_site(work / "alone-site")
        alone = app_alone(site.dynamic, opts.case, opts.requests, work)
        print(f"case {opts.case}: the app alone {alone:,.0f} instructions per call\n")
        print("| server | instructions/request (all processes) | overhead (less the app alone) |")
        print("| --- | ---: | ---: |")
        for server in opts.servers.split(","):
            total = server_total(server, opts.case, opts.requests, opts.conns, opts.checkout, work)
            print(f"| {server} | {total:,.0f} | {total - alone:,.0f} |", flush=True)
    print(f"\n{opts.requests} requests over {opts.conns} keep-alive connections after a 500-request warm-up, "
          "1 worker each; counted by callgrind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
