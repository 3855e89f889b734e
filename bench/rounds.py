"""devserver against its peers in interleaved rounds, with the server's CPU time per request.

A busy machine (2 cores shared with other jobs) makes one run per server
meaningless: the load moves between runs.  So every workload is run in
``--rounds`` rounds; in each round every server of the workload is started,
checked (200 with the fixture's bytes), warmed up, loaded with wrk and
stopped, one after the other, starting from a different server each round.
A ratio is taken within each round (devserver's figure over the peer's, same
minutes of the machine's life) and the median of those per-round ratios is
reported, next to each server's median req/s.

Server CPU per request is robust to a busy machine: the user + system time
of the server's whole process tree (supervisor or master and its workers,
from /proc/PID/stat) during the measured run, divided by the requests wrk
counted.  The load average is printed at the start and end.

Workloads (``--only`` picks some):

  hello    WSGI hello world, keep-alive, 50 connections: devserver with the app
           as APP (``devserver hello:application``) and as the script ``/hello.py``,
           gunicorn gthread, granian, bjoern, waitress
  close    the same with ``Connection: close`` (a connection per request):
           devserver (both ways), gunicorn sync, granian
  flask    a Flask app rendering a template loop, keep-alive: devserver APP,
           gunicorn gthread, granian
  latency  hello world with 4 connections: p50 and p99 (devserver APP,
           gunicorn gthread, granian)
  static   the 1 KiB file: devserver (no APP), granian's Rust static files,
           gunicorn gthread with a WSGI file app, nginx (sendfile, tcp_nopush)
  static-1m  the 1 MiB file: devserver (no APP), nginx, granian's static files
  asgi     ASGI hello world, keep-alive, 50 connections: devserver with the app
           as APP (``devserver asgihello:app``), uvicorn (httptools, same workers),
           granian ASGI
  fastapi  a FastAPI JSON endpoint (``GET /items``), keep-alive, 50 connections:
           devserver, uvicorn (httptools), granian ASGI, same workers
  inline   WSGI hello, keep-alive, 50 connections: devserver APP against itself with
           every call in the thread pool (``DEVSERVER_INLINE=0``, worker/inline.py)
  inline-flask  the same for the Flask page; inline-latency  hello with 4 connections, p50 and p99
           (these three only when --only names them)

    python bench/rounds.py [--rounds 3] [--duration 5] [--warmup 1] [--only hello,flask] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import servers
from common import (
    ONE_K,
    ONE_M,
    BenchError,
    ServerSpec,
    Site,
    cpu_seconds,
    free_port,
    http_get,
    make_site,
    process_tree,
    run_wrk,
    running,
)

Builder = Callable[[Site, int, int], ServerSpec]

BUILDERS: dict[str, Builder] = {
    "devserver-app": servers.devserver_app,
    "devserver-script": servers.devserver_script,
    "devserver-flask": servers.devserver_flask,
    "devserver-app-pool": servers.devserver_app_pool,
    "devserver-flask-pool": servers.devserver_flask_pool,
    "devserver": servers.devserver_files,
    "gunicorn-gthread": servers.gunicorn_gthread_app,
    "gunicorn-sync": servers.gunicorn_sync_app,
    "gunicorn-gthread-flask": servers.gunicorn_gthread_flask,
    "gunicorn-gthread-files": servers.gunicorn_gthread_files,
    "granian": servers.granian,
    "granian-flask": servers.granian_flask,
    "granian-static": servers.granian_static,
    "nginx": servers.nginx,
    "bjoern": servers.bjoern,
    "waitress": servers.waitress_app,
    "devserver-asgi": servers.devserver_asgi,
    "uvicorn-asgi": servers.uvicorn_asgi,
    "granian-asgi": servers.granian_asgi,
    "devserver-fastapi": servers.devserver_fastapi,
    "uvicorn-fastapi": servers.uvicorn_fastapi,
    "granian-fastapi": servers.granian_fastapi,
}


@dataclass(frozen=True)
class Workload:
    """One load, the servers that take it, and which of them are devserver (the references)."""

    key: str
    label: str
    case: str  # fixture body and path key (hello, flask, 1k, 1m)
    conns: int
    references: tuple[str, ...]
    peers: tuple[str, ...]
    headers: tuple[str, ...] = ()
    latency: bool = False  # compare p50/p99 rather than req/s
    asked: bool = False  # devserver against itself: run only when --only names it

    @property
    def servers(self) -> tuple[str, ...]:
        return self.references + self.peers


WORKLOADS = (
    Workload("hello", "WSGI hello, keep-alive", "hello", 50, ("devserver-app", "devserver-script"),
             ("gunicorn-gthread", "granian", "bjoern", "waitress")),
    Workload("close", "hello, Connection: close", "hello", 50, ("devserver-app", "devserver-script"),
             ("gunicorn-sync", "granian"), headers=("Connection: close",)),
    Workload("flask", "Flask app (template loop), keep-alive", "flask", 50, ("devserver-flask",),
             ("gunicorn-gthread-flask", "granian-flask")),
    Workload("latency", "hello, 4 connections (latency)", "hello", 4, ("devserver-app",),
             ("gunicorn-gthread", "granian"), latency=True),
    Workload("static", "static 1 KiB file, keep-alive", "1k", 50, ("devserver",),
             ("granian-static", "gunicorn-gthread-files", "nginx")),
    Workload("static-1m", "static 1 MiB file, keep-alive", "1m", 50, ("devserver",), ("nginx", "granian-static")),
    Workload("asgi", "ASGI hello, keep-alive", "asgi", 50, ("devserver-asgi",), ("uvicorn-asgi", "granian-asgi")),
    Workload("fastapi", "FastAPI JSON endpoint, keep-alive", "fastapi", 50, ("devserver-fastapi",),
             ("uvicorn-fastapi", "granian-fastapi")),
    Workload("inline", "WSGI hello, inline calls against the pool alone", "hello", 50, ("devserver-app",),
             ("devserver-app-pool",), asked=True),
    Workload("inline-flask", "Flask page, inline calls against the pool alone", "flask", 50, ("devserver-flask",),
             ("devserver-flask-pool",), asked=True),
    Workload("inline-latency", "hello, 4 connections, inline calls against the pool alone", "hello", 4,
             ("devserver-app",), ("devserver-app-pool",), latency=True, asked=True),
)


@dataclass(frozen=True)
class Run:
    """One measured wrk run of one server in one round."""

    workload: str
    server: str
    round: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_s: float
    socket_errors: int
    non_2xx: int
    busiest_share: float | None  # the busiest process's share of the tree's CPU (worker balance), if >1 process

    @property
    def cpu_us(self) -> float:
        return self.cpu_s * 1e6 / self.requests if self.requests else float("nan")

    @property
    def valid(self) -> bool:
        return self.requests > 0 and self.non_2xx == 0 and self.socket_errors <= self.requests // 100


_FILES = {"1k": ONE_K, "1m": ONE_M}  # the static cases' fixture files; other cases are bodies by their own name


def _check(spec: ServerSpec, case: str, site: Site) -> None:
    status, headers, body = http_get(spec.port, spec.paths[case], timeout=30.0)
    expected = site.body(_FILES.get(case, case))
    # devserver's live reload adds its script to HTML pages from apps (its default): the page must still be there.
    ok = body == expected or (case == "flask" and headers.get("content-type", "").startswith("text/html")
                              and body.startswith(expected))
    if status != 200 or not ok:
        raise BenchError(f"GET {spec.paths[case]} answered {status} with {len(body)} bytes "
                         f"(want 200 with {len(expected)} bytes)")


def measure(spec: ServerSpec, workload: Workload, site: Site, round_: int, opts: argparse.Namespace,
            pid: int) -> Run:
    """Check, warm up, then one measured wrk run with the process tree's CPU time around it."""
    url = spec.url(workload.case)
    _check(spec, workload.case, site)
    if opts.warmup > 0:
        run_wrk(url, workload.conns, opts.warmup, headers=workload.headers)
    pids = process_tree(pid)
    before = {p: cpu_seconds([p]) for p in pids}
    result = run_wrk(url, workload.conns, opts.duration, headers=workload.headers)
    used = {p: cpu_seconds([p]) - before[p] for p in pids}
    total = sum(used.values())
    busiest = max(used.values()) / total if len(pids) > 1 and total > 0 else None
    return Run(workload.key, spec.name, round_, result.requests, result.requests_per_sec, result.p50_ms,
               result.p99_ms, total, result.socket_errors, result.non_2xx, busiest)


@dataclass
class Outcome:
    runs: list[Run]
    failures: list[str]
    specs: dict[str, ServerSpec]
    load: tuple[float, float]


def run_rounds(workloads: Sequence[Workload], opts: argparse.Namespace) -> Outcome:
    """Every workload, round by round, each server in turn (rotated each round)."""
    load_start = os.getloadavg()[0]
    runs: list[Run] = []
    failures: list[str] = []
    specs: dict[str, ServerSpec] = {}
    base = Path(tempfile.mkdtemp(prefix="devserver-rounds-"))
    try:
        site = make_site(base)
        logs = base / "logs"
        logs.mkdir()
        for workload in workloads:
            print(f"\n== {workload.label}: {workload.conns} connections"
                  + (f", {', '.join(workload.headers)}" if workload.headers else ""), flush=True)
            names = list(workload.servers)
            for round_ in range(opts.rounds):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    spec = BUILDERS[name](site, free_port(), opts.workers)
                    specs[name] = spec
                    try:
                        with running(spec, logs) as server:
                            run = measure(spec, workload, site, round_, opts, server.proc.pid)
                    except (BenchError, OSError) as exc:
                        failures.append(f"{workload.key} {name} round {round_ + 1}: {str(exc).splitlines()[0]}")
                        print(f"   round {round_ + 1} {name}: FAILED {exc}", flush=True)
                        continue
                    runs.append(run)
                    share = f", busiest process {run.busiest_share:.0%} of CPU" if run.busiest_share else ""
                    print(f"   round {round_ + 1} {name:<24} {run.rps:>9,.0f} req/s  p50 {run.p50_ms:.2f} "
                          f"p99 {run.p99_ms:.2f} ms  {run.cpu_us:6.1f} µs CPU/req{share}"
                          + ("" if run.valid else f"  [INVALID: {run.socket_errors} socket errors, "
                             f"{run.non_2xx} non-2xx]"), flush=True)
    finally:
        if opts.keep_site:
            print(f"fixture site and logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return Outcome(runs, failures, specs, (load_start, os.getloadavg()[0]))


# ------------------------------------------------------------------ summary


@dataclass(frozen=True)
class Ratio:
    workload: str
    reference: str
    peer: str
    median: float  # of the per-round ratios; for latency: devserver p50 / peer p50 (lower is better)
    rounds: tuple[float, ...]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(workload: Workload, runs: Sequence[Run]) -> list[Ratio]:
    """Per-round ratios of each reference to every other server of the workload, and their median."""
    by_round = {(r.server, r.round): r for r in runs if r.workload == workload.key and r.valid}
    out = []
    for reference in workload.references:
        for peer in workload.servers:
            if peer == reference:
                continue
            per_round = []
            for (server, round_), ref in by_round.items():
                other = by_round.get((peer, round_))
                if server != reference or other is None:
                    continue
                per_round.append(ref.p50_ms / other.p50_ms if workload.latency else ref.rps / other.rps)
            if per_round:
                out.append(Ratio(workload.key, reference, peer, _median(per_round), tuple(per_round)))
    return out


def markdown(workloads: Sequence[Workload], outcome: Outcome, opts: argparse.Namespace) -> list[str]:
    """A table per workload: medians per server, then the median per-round ratios."""
    lines = [f"{opts.rounds} interleaved rounds, wrk -t2, {opts.duration} s per run after {opts.warmup} s of "
             f"warm-up, {opts.workers} workers for devserver and the multi-process peers; load average "
             f"{outcome.load[0]:.2f} at the start, {outcome.load[1]:.2f} at the end "
             f"({os.cpu_count()} cores). Figures are medians over the rounds; devserver/peer is the median of the "
             "per-round ratios. CPU µs/req: user + system time of the server's whole process tree during the run "
             "divided by the requests served. Busiest process: its share of that CPU (2 workers evenly loaded: "
             "~50%).", ""]
    for workload in workloads:
        runs = [r for r in outcome.runs if r.workload == workload.key]
        if not runs:
            continue
        lines += [f"**{workload.label}** ({workload.conns} connections"
                  + (f", `{'`, `'.join(workload.headers)}`" if workload.headers else "") + ")", "",
                  "| server | req/s | p50 ms | p99 ms | CPU µs/req | busiest process | valid rounds |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name in workload.servers:
            mine = [r for r in runs if r.server == name and r.valid]
            if not mine:
                lines.append(f"| {name} | failed | | | | | 0 |")
                continue
            shares = [r.busiest_share for r in mine if r.busiest_share is not None]
            lines.append(f"| {name} | {_median([r.rps for r in mine]):,.0f} | {_median([r.p50_ms for r in mine]):.2f} "
                         f"| {_median([r.p99_ms for r in mine]):.2f} | {_median([r.cpu_us for r in mine]):.1f} | "
                         f"{f'{max(shares):.0%}' if shares else ''} | {len(mine)} |")
        found = ratios(workload, runs)
        if found:
            what = "devserver p50 / peer p50 (below 1: devserver answers sooner)" if workload.latency else \
                "devserver req/s / peer req/s"
            lines += ["", f"| {what} | median | per round |", "| --- | ---: | --- |"]
            lines += [f"| {r.reference} / {r.peer} | {r.median:.2f}× | {', '.join(f'{x:.2f}' for x in r.rounds)} |"
                      for r in found]
        lines.append("")
    lines += [f"- {spec.name}: `{shlex.join(spec.argv)}`" + (f" ({spec.note})" if spec.note else "")
              for spec in outcome.specs.values()]
    lines += [f"- **failed** {failure}" for failure in outcome.failures]
    lines.append("")
    return lines


def raw(outcome: Outcome, workloads: Sequence[Workload]) -> dict[str, object]:
    return {
        "load_average": outcome.load,
        "runs": [{**asdict(r), "cpu_us_per_request": r.cpu_us, "valid": r.valid} for r in outcome.runs],
        "ratios": [asdict(x) for w in workloads for x in ratios(w, outcome.runs)],
        "servers": {name: {"argv": list(s.argv), "note": s.note} for name, s in outcome.specs.items()},
        "failures": outcome.failures,
    }


def add_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)")
    add("--duration", type=int, default=5, help="seconds per measured wrk run (default %(default)s)")
    add("--warmup", type=int, default=1, help="seconds of warm-up load before each run (default %(default)s)")
    add("--workers", type=int, default=2, help="workers for devserver and multi-process peers (default %(default)s)")
    add("--only", default="", help="comma-separated workloads: " + ",".join(w.key for w in WORKLOADS))
    add("--keep-site", action="store_true", help="keep the temp folder with the fixture and server logs")


def chosen(option: str, parser: argparse.ArgumentParser) -> list[Workload]:
    if not option:
        return [w for w in WORKLOADS if not w.asked]
    wanted = {name.strip() for name in option.split(",") if name.strip()}
    if unknown := wanted - {w.key for w in WORKLOADS}:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}; choose from "
                     + ", ".join(w.key for w in WORKLOADS))
    return [w for w in WORKLOADS if w.key in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser)
    parser.add_argument("--json", metavar="PATH", help="write every run and ratio to PATH")
    opts = parser.parse_args(argv)
    if min(opts.rounds, opts.duration, opts.workers) < 1 or opts.warmup < 0:
        parser.error("--rounds, --duration and --workers must be at least 1, --warmup 0 or more")
    workloads = chosen(opts.only, parser)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at {time.strftime('%H:%M:%S')}")
    outcome = run_rounds(workloads, opts)
    print("\n" + "\n".join(markdown(workloads, outcome, opts)))
    if opts.json:
        Path(opts.json).write_text(json.dumps(raw(outcome, workloads), indent=2) + "\n")
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main())
