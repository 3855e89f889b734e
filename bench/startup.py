"""Cold start (launch → first 200) and memory (PSS of all processes after 1,000 requests).

For each server, in ``--rounds`` interleaved rounds: the clock starts just
before the process is launched and stops when ``GET /`` (the hello-world
app) first answers 200, polled every 2 ms on fresh connections.  Then 1,000
requests are sent (10 keep-alive connections, 100 each, one after the
other), and the proportional set size of the server's whole process tree
(supervisor or master and workers; /proc/PID/smaps_rollup, shared pages
split between the processes sharing them) is summed.  Then 1,000 more are
sent the same way: the growth of the process that grew most between the two
readings shows whether a worker's memory stays flat.  Medians are reported.

Servers run as on a user's machine, with bytecode caching on
(``PYTHONDONTWRITEBYTECODE`` removed from their environment), and each is
launched once unmeasured first, so every measured start finds its ``.pyc``
files written and the files in the page cache.

devserver runs with its app as APP (``devserver hello:application``), once
with ``--no-tui`` and once with its dashboard on a 160x48 pseudo-terminal.
``--before DIR`` adds both runs of another checkout of devserver (DIR first
on PYTHONPATH) to the same interleaved rounds, as ``before-app`` and
``before-dashboard``: a change is judged on the same minutes of a busy machine.

    python bench/startup.py [--rounds 3] [--workers 2] [--only NAMES] [--before DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import servers
from common import (
    HOST,
    BenchError,
    ServerSpec,
    Site,
    cpu_seconds,
    free_port,
    make_site,
    process_tree,
    pss_bytes,
    start_server,
    stop_server,
)

Builder = Callable[[Site, int, int], ServerSpec]
BUILDERS: dict[str, Builder] = {
    "devserver-app": servers.devserver_app,
    "devserver-dashboard": lambda site, port, workers: servers.devserver_app(site, port, workers, dashboard=True),
    "gunicorn-gthread": servers.gunicorn_gthread_app,
    "granian": servers.granian,
    "bjoern": servers.bjoern,
    "werkzeug": servers.werkzeug,
}
REFERENCES = ("devserver-app", "devserver-dashboard")
REQUESTS = 1000
CONNECTIONS = 10
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Start:
    server: str
    round: int
    start_ms: float
    start_cpu_ms: float  # CPU time the server's processes used until the first 200: robust to a busy machine
    pss_mib: float
    processes: int
    growth_kib: float = 0.0  # the most any one process's PSS grew over the second 1,000 requests


def _first_200(port: int, path: str, proc_alive: Callable[[], bool], deadline: float) -> None:
    """Poll ``GET path`` on fresh connections every 2 ms until it answers 200."""
    while time.monotonic() < deadline:
        if not proc_alive():
            raise BenchError("the server exited before answering")
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.002)  # a poll interval, not synchronisation: the loop waits for the condition
    raise BenchError(f"no 200 on {path} within {START_TIMEOUT:.0f} s")


def _load(port: int, path: str) -> None:
    """``REQUESTS`` GETs over ``CONNECTIONS`` keep-alive connections, one connection after the other."""
    for _ in range(CONNECTIONS):
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            for _ in range(REQUESTS // CONNECTIONS):
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise BenchError(f"GET {path} answered {response.status} during the 1,000 requests")
        finally:
            conn.close()


def measure(spec: ServerSpec, logs: Path, round_: int) -> Start:
    path = spec.paths["hello"]
    started = time.monotonic()
    server = start_server(spec, logs)
    try:
        _first_200(spec.port, path, lambda: server.proc.poll() is None, started + START_TIMEOUT)
        elapsed = time.monotonic() - started
        start_cpu = cpu_seconds(process_tree(server.proc.pid))
        _load(spec.port, path)
        pids = process_tree(server.proc.pid)
        pss = pss_bytes(pids)
        before = {pid: pss_bytes([pid]) for pid in pids}
        _load(spec.port, path)
        growth = max((pss_bytes([pid]) - size for pid, size in before.items()), default=0)
    except BenchError as exc:
        raise BenchError(f"{exc}\n{server.log_tail()}") from None
    finally:
        stop_server(server)
    return Start(spec.name, round_, elapsed * 1000, start_cpu * 1000, pss / 1024**2, len(pids), growth / 1024)


@dataclass
class Outcome:
    starts: list[Start]
    failures: list[str]
    specs: dict[str, ServerSpec]
    load: tuple[float, float]


def run(opts: argparse.Namespace, names: Sequence[str] = tuple(BUILDERS)) -> Outcome:
    load_start = os.getloadavg()[0]
    starts: list[Start] = []
    failures: list[str] = []
    specs: dict[str, ServerSpec] = {}
    base = Path(tempfile.mkdtemp(prefix="devserver-startup-"))
    print("\n== cold start and memory", flush=True)
    no_bytecode = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the servers inherit our environment
    try:
        site = make_site(base)
        logs = base / "logs"
        logs.mkdir()
        order = list(names)
        for name in order:  # unmeasured: writes bytecode, fills the page cache
            try:
                measure(BUILDERS[name](site, free_port(), opts.workers), logs, -1)
            except (BenchError, OSError) as exc:
                print(f"   warm-up {name}: FAILED {str(exc).splitlines()[0]}", flush=True)
        for round_ in range(opts.rounds):
            shift = round_ % len(order)
            for name in order[shift:] + order[:shift]:
                spec = BUILDERS[name](site, free_port(), opts.workers)
                specs[name] = spec
                try:
                    start = measure(spec, logs, round_)
                except (BenchError, OSError) as exc:
                    failures.append(f"{name} round {round_ + 1}: {str(exc).splitlines()[0]}")
                    print(f"   round {round_ + 1} {name}: FAILED {exc}", flush=True)
                    continue
                starts.append(start)
                print(f"   round {round_ + 1} {name:<22} start {start.start_ms:7.1f} ms (CPU {start.start_cpu_ms:6.1f} ms)   PSS {start.pss_mib:6.1f} MiB "
                      f"in {start.processes} processes, +{start.growth_kib:.0f} KiB at most over 1,000 more", flush=True)
    finally:
        if no_bytecode is not None:
            os.environ["PYTHONDONTWRITEBYTECODE"] = no_bytecode
        shutil.rmtree(base, ignore_errors=True)
    return Outcome(starts, failures, specs, (load_start, os.getloadavg()[0]))


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def markdown(outcome: Outcome, opts: argparse.Namespace) -> list[str]:
    lines = [f"{opts.rounds} interleaved rounds, {opts.workers} workers; medians. Cold start: launch → first 200 "
             f"on `GET /` (hello world), bytecode caching on, after one unmeasured launch. PSS: all the server's processes after {REQUESTS:,} requests. Load "
             f"average {outcome.load[0]:.2f} at the start, {outcome.load[1]:.2f} at the end.", "",
             "Start CPU: the CPU time all the server's processes used until then (robust to a busy machine).", "",
             "Growth: the most any one process's PSS grew while serving 1,000 more requests.", "",
             "| server | cold start ms | start CPU ms | PSS MiB | growth KiB | processes | devserver-app / this (start) | "
             "devserver-app / this (PSS) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    by = {name: [s for s in outcome.starts if s.server == name] for name in outcome.specs}
    ref = {s.round: s for s in by.get("devserver-app", [])}
    for name, mine in by.items():
        if not mine:
            lines.append(f"| {name} | failed | | | | | | |")
            continue
        start_ratio = [ref[s.round].start_ms / s.start_ms for s in mine if s.round in ref]
        pss_ratio = [ref[s.round].pss_mib / s.pss_mib for s in mine if s.round in ref]
        show = name != "devserver-app" and start_ratio
        lines.append(f"| {name} | {_median([s.start_ms for s in mine]):.0f} | "
                     f"{_median([s.start_cpu_ms for s in mine]):.0f} | {_median([s.pss_mib for s in mine]):.1f} "
                     f"| {_median([s.growth_kib for s in mine]):.0f} | {mine[0].processes} | {f'{_median(start_ratio):.2f}×' if show else ''} | "
                     f"{f'{_median(pss_ratio):.2f}×' if show else ''} |")
    lines.append("")
    lines += [f"- {spec.name}: `{shlex.join(spec.argv)}`" for spec in outcome.specs.values()]
    lines += [f"- **failed** {failure}" for failure in outcome.failures]
    lines.append("")
    return lines


def raw(outcome: Outcome) -> dict[str, object]:
    return {"load_average": outcome.load, "starts": [asdict(s) for s in outcome.starts],
            "failures": outcome.failures}


def _checkout_builders(folder: Path) -> dict[str, Builder]:
    """devserver-app and devserver-dashboard, run from the checkout in ``folder``."""

    def build(name: str, base: Builder) -> Builder:
        def builder(site: Site, port: int, workers: int) -> ServerSpec:
            spec = base(site, port, workers)
            return replace(spec, name=name, env={**spec.env, "PYTHONPATH": str(folder)})

        return builder

    return {"before-app": build("before-app", BUILDERS["devserver-app"]),
            "before-dashboard": build("before-dashboard", BUILDERS["devserver-dashboard"])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="workers (default %(default)s)")
    parser.add_argument("--only", default="", help="comma-separated servers: " + ",".join(BUILDERS))
    parser.add_argument("--json", metavar="PATH", help="write every start to PATH")
    parser.add_argument("--before", metavar="DIR", type=Path,
                        help="also run the devserver checkout in DIR (before-app, before-dashboard)")
    opts = parser.parse_args(argv)
    if opts.before is not None:
        if not (opts.before / "devserver" / "__init__.py").is_file():
            parser.error(f"--before {opts.before}: no devserver package there")
        BUILDERS.update(_checkout_builders(opts.before.resolve()))
    if opts.rounds < 1 or opts.workers < 1:
        parser.error("--rounds and --workers must be at least 1")
    names = [n.strip() for n in opts.only.split(",") if n.strip()] or list(BUILDERS)
    if unknown := set(names) - set(BUILDERS):
        parser.error(f"unknown server(s) {', '.join(sorted(unknown))}; choose from {', '.join(BUILDERS)}")
    outcome = run(opts, names)
    print("\n" + "\n".join(markdown(outcome, opts)))
    if opts.json:
        Path(opts.json).write_text(json.dumps(raw(outcome), indent=2) + "\n")
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main())
