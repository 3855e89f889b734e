"""The hello-world app as APP against the same app as the script ``/hello.py``, in every setup a user runs.

APP setups:

  site           ``devserver hello:application`` beside html_page/ and dynamic/ (hello.py in dynamic/)
  project        ``devserver hello:application`` in a project folder holding hello.py and no html_page/
  project+html   the same with an html_page/ (files win there)

each logging every request to a file and to a terminal (a pseudo-terminal,
``--no-tui``: the console log, not the dashboard).  The reference is
``/hello.py`` from the site, logging the same way.  Every round starts each
server in turn (from another one each round), warms it up, loads it with wrk
(keep-alive, ``--conns`` connections) and stops it; the APP/script ratio is
taken within the round, and the median of the per-round ratios is printed,
for req/s and for the server's CPU per request (user + system time of every
process of the server, from /proc; "script/APP" so above 1 means APP is
cheaper).  The load average is printed at the start and the end: on a busy
machine trust the CPU column and bench/instructions.py over req/s.

    python bench/app_vs_script.py [--rounds 3] [--duration 5] [--conns 50] [--workers 2] [--only project,site]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import (
    HELLO_BODY,
    ServerSpec,
    cpu_seconds,
    free_port,
    http_get,
    load_average,
    make_project,
    make_site,
    process_tree,
    python_argv,
    run_wrk,
    running,
)

LAYOUTS = ("site", "project", "project+html")
LOGS = ("file", "terminal")


@dataclass(frozen=True)
class Setup:
    layout: str  # "script" (the reference) or one of LAYOUTS
    log: str  # one of LOGS

    @property
    def name(self) -> str:
        return f"{'APP ' + self.layout if self.layout != 'script' else '/hello.py'} ({self.log})"


def spec(setup: Setup, folders: dict[str, Path], port: int, workers: int) -> ServerSpec:
    common = ["--port", str(port), "--workers", str(workers), "--no-tui"]
    if setup.layout == "script":
        argv, path, cwd = python_argv("-m", "devserver", *common), "/hello.py", folders["site"]
    else:
        argv, path, cwd = python_argv("-m", "devserver", "hello:application", *common), "/", folders[setup.layout]
    return ServerSpec(name=f"{setup.layout}-{setup.log}".replace("+", "-"), argv=argv, port=port,
                      paths={"hello": path}, ready_path=path, cwd=cwd, tty=setup.log == "terminal")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of measured load per server")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default=",".join(LAYOUTS), help="APP setups, from: " + ", ".join(LAYOUTS))
    parser.add_argument("--logs", default=",".join(LOGS), help="from: " + ", ".join(LOGS))
    opts = parser.parse_args(argv)
    layouts = [name for name in opts.only.split(",") if name]
    logs = [name for name in opts.logs.split(",") if name]
    for name in layouts:
        if name not in LAYOUTS:
            parser.error(f"unknown setup {name!r}")
    for name in logs:
        if name not in LOGS:
            parser.error(f"unknown log {name!r}")
    setups = [Setup(layout, log) for log in logs for layout in ("script", *layouts)]
    runs: dict[Setup, list[tuple[float, float]]] = {setup: [] for setup in setups}  # (req/s, CPU us/request)
    print(f"load average at start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="devserver-app-vs-script-") as tmp:
        base = Path(tmp)
        (base / "site").mkdir()
        make_site(base / "site")
        folders = {"site": base / "site", "project": make_project(base / "project", html_page=False),
                   "project+html": make_project(base / "project-html", html_page=True)}
        logs_dir = base / "logs"
        logs_dir.mkdir()
        for round_ in range(opts.rounds):
            shift = round_ % len(setups)
            for setup in setups[shift:] + setups[:shift]:
                server_spec = spec(setup, folders, free_port(), opts.workers)
                with running(server_spec, logs_dir) as server:
                    status, _, body = http_get(server_spec.port, server_spec.paths["hello"])
                    if (status, body) != (200, HELLO_BODY):
                        raise SystemExit(f"{setup.name} answered {status} {body[:80]!r}")
                    url = server_spec.url("hello")
                    if opts.warmup:
                        run_wrk(url, opts.conns, opts.warmup)
                    pids = process_tree(server.proc.pid)
                    before = cpu_seconds(pids)
                    result = run_wrk(url, opts.conns, opts.duration)
                    cpu_us = (cpu_seconds(pids) - before) * 1e6 / max(1, result.requests)
                runs[setup].append((result.requests_per_sec, cpu_us))
                print(f"round {round_ + 1} {setup.name:<26} {result.requests_per_sec:9,.0f} req/s "
                      f"{cpu_us:7.1f} us CPU/req", flush=True)
    print()
    print("| setup | median req/s | median CPU us/req | APP/script req/s (rounds) | script/APP CPU (rounds) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for setup in setups:
        reference = runs[Setup("script", setup.log)]
        mine = runs[setup]
        rps = [a[0] / b[0] for a, b in zip(mine, reference)]
        cpu = [b[1] / a[1] for a, b in zip(mine, reference)]
        ratios = ("" if setup.layout == "script" else
                  f"{statistics.median(rps):.2f}× ({', '.join(f'{x:.2f}' for x in rps)}) | "
                  f"{statistics.median(cpu):.2f}× ({', '.join(f'{x:.2f}' for x in cpu)})")
        print(f"| {setup.name} | {statistics.median(r[0] for r in mine):,.0f} | "
              f"{statistics.median(r[1] for r in mine):.1f} | {ratios or '1.00× | 1.00×'} |")
    print(f"\n{opts.rounds} rounds, wrk -t2 -c{opts.conns} -d{opts.duration}s, {opts.workers} workers; "
          f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
