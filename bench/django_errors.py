"""How long a Django project's error pages take: a view with a syntax error against a view that raises.

A Django project (``startproject`` plus an app) is served by devserver with
2 workers.  Each round saves a good ``views.py`` and times ``--requests``
requests to a view that raises (Django's technical 500), then saves
``views.py`` with a syntax error and times as many requests to the page
(the import error page), starting with the other one every other round.
Printed per round and in the end: the median time of each page, the median
of the per-round ratios (syntax error / runtime error), the server's CPU
per request (/proc, every process of the server), and the load average.

    python bench/django_errors.py [--rounds 3] [--requests 20] [--repo DIR]

``--repo`` serves another checkout (its devserver/ first on PYTHONPATH), so
the figures of two commits can be put side by side.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO_DIR, BenchError, ServerSpec, cpu_seconds, free_port, http_get, process_tree, running

VIEWS = '''
from django.http import HttpResponse


def index(request):
    return HttpResponse("catalog index")


def broken(request):
    shelf = "third shelf"
    raise ValueError(f"no book on the {shelf}")
'''
URLS = '''
from django.urls import path

from . import views

urlpatterns = [path("", views.index), path("broken/", views.broken)]
'''
GOOD, BAD = "def index(request):", "def index(request:"


def make_project(base: Path) -> Path:
    base.mkdir()
    env = {**os.environ}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(base)], check=True, env=env)
    subprocess.run([sys.executable, "manage.py", "startapp", "catalog"], cwd=base, check=True, env=env)
    (base / "catalog/views.py").write_text(VIEWS.lstrip())
    (base / "catalog/urls.py").write_text(URLS.lstrip())
    settings = base / "mysite/settings.py"
    settings.write_text(settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'catalog',"))
    urls = base / "mysite/urls.py"
    urls.write_text(urls.read_text().replace("from django.urls import path", "from django.urls import include, path")
                    .replace("urlpatterns = [", "urlpatterns = [\n    path('catalog/', include('catalog.urls')),"))
    return base


def wait_until(port: int, path: str, status: int, text: bytes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got, _, body = http_get(port, path, timeout=30)
        except (OSError, http.client.HTTPException):
            continue  # a request that old workers were still answering when the restart stopped them
        if got == status and text in body:
            return
        time.sleep(0.05)
    raise BenchError(f"{path} never answered {status} with {text!r}")


def timed(port: int, pid: int, path: str, count: int, text: bytes) -> tuple[float, float]:
    """(median seconds per request, server CPU seconds per request) over ``count`` requests."""
    before = {p: cpu_seconds([p]) for p in process_tree(pid)}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        status, _, body = http_get(port, path, timeout=60)
        times.append(time.perf_counter() - started)
        if status != 500 or text not in body:
            raise BenchError(f"{path} answered {status} without {text!r}")
    # Workers a restart just replaced may exit meanwhile: only the processes alive at both ends count.
    after = {p: cpu_seconds([p]) for p in process_tree(pid)}
    used = sum(after[p] - before[p] for p in before.keys() & after.keys())
    return statistics.median(times), used / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--repo", type=Path, default=REPO_DIR, help="the checkout to serve (default: this one)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="django-errors-") as tmp:
        project = make_project(Path(tmp) / "project")
        views = project / "catalog/views.py"
        port = free_port()
        env = {"PYTHONPATH": str(args.repo.resolve())}
        spec = ServerSpec("devserver", (sys.executable, "-m", "devserver", "--no-tui", "--port", str(port),
                                        "--workers", "2", "mysite.wsgi:application"),
                          port, {}, "/catalog/", cwd=project, env=env)
        ratios, syntax_times, runtime_times, syntax_cpu, runtime_cpu = [], [], [], [], []
        with running(spec, Path(tmp), timeout=60) as server:
            pid = server.proc.pid
            for number in range(args.rounds):
                measured = {}
                for case in (("runtime", "syntax") if number % 2 == 0 else ("syntax", "runtime")):
                    if case == "runtime":
                        views.write_text(VIEWS.lstrip())
                        wait_until(port, "/catalog/broken/", 500, b"ValueError at /catalog/broken/")
                        measured[case] = timed(port, pid, "/catalog/broken/", args.requests, b"no book on the")
                    else:
                        views.write_text(VIEWS.lstrip().replace(GOOD, BAD))
                        wait_until(port, "/catalog/", 500, b"SyntaxError")
                        measured[case] = timed(port, pid, "/catalog/", args.requests, b"SyntaxError")
                (syntax, s_cpu), (runtime, r_cpu) = measured["syntax"], measured["runtime"]
                ratios.append(syntax / runtime)
                syntax_times.append(syntax)
                runtime_times.append(runtime)
                syntax_cpu.append(s_cpu)
                runtime_cpu.append(r_cpu)
                print(f"round {number + 1}: syntax error page {syntax * 1000:.1f} ms (CPU {s_cpu * 1000:.1f} ms/req), "
                      f"runtime error page {runtime * 1000:.1f} ms (CPU {r_cpu * 1000:.1f} ms/req), "
                      f"ratio {syntax / runtime:.2f}", flush=True)
    print(f"syntax error page: median {statistics.median(syntax_times) * 1000:.1f} ms, "
          f"server CPU {statistics.median(syntax_cpu) * 1000:.1f} ms/request")
    print(f"runtime error page: median {statistics.median(runtime_times) * 1000:.1f} ms, "
          f"server CPU {statistics.median(runtime_cpu) * 1000:.1f} ms/request")
    print(f"median of per-round ratios (syntax / runtime): {statistics.median(ratios):.2f}")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
