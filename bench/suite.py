"""Runs a set of servers against a set of cases with wrk, then reports.

``throughput.py`` and ``wsgi_hello.py`` only say which servers, cases and
targets; this module starts each server in turn (one at a time, so they
never compete for the CPU), checks that it serves the expected bytes, warms
it up, measures, stops it, and prints the table and the PASS/MISS lines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType

from common import REPO_DIR, BenchError, ServerSpec, Site, WrkResult, free_port, http_get, make_site, run_wrk, running

REFERENCE = "devserver"


@dataclass(frozen=True)
class Case:
    """A load: which fixture body is expected, with how many keep-alive connections."""

    name: str
    body: str  # key into Site.bodies
    conns: int
    label: str


@dataclass(frozen=True)
class Target:
    """devserver must reach ``factor`` × the peer's req/s on ``case``."""

    case: str
    peer: str
    factor: float


@dataclass(frozen=True)
class Measurement:
    server: str
    case: str
    url: str
    conns: int
    duration: int  # seconds asked of wrk, per run
    runs: tuple[WrkResult, ...]

    @property
    def result(self) -> WrkResult:
        """The median run by req/s (the only run without --repeat)."""
        return sorted(self.runs, key=lambda r: r.requests_per_sec)[len(self.runs) // 2]


@dataclass(frozen=True)
class Failure:
    server: str
    case: str  # "" when the server itself failed
    error: str


@dataclass(frozen=True)
class Verdict:
    target: Target
    status: str  # PASS, MISS, SKIP
    line: str


SpecBuilder = Callable[[Site, int, int], ServerSpec]


def add_options(parser: argparse.ArgumentParser, servers: Sequence[str]) -> None:
    """The options every bench script shares."""
    add = parser.add_argument
    add("--duration", type=int, default=10, help="seconds of measured load per case (default %(default)s)")
    add("--warmup", type=int, default=2,
        help="seconds of unmeasured load before each case (default %(default)s; 0 skips)")
    add("--repeat", type=int, default=1,
        help="measured runs per case; the median by req/s is reported (default %(default)s)")
    add("--workers", type=int, default=2,
        help="worker processes for devserver and the multi-process peers (default %(default)s)")
    add("--only", default="", help="comma-separated servers to run (default all: " + ",".join(servers) + ")")
    add("--wrk-threads", type=int, default=2, help="wrk -t (default %(default)s)")
    add("--json", metavar="PATH", help="write raw results (every run, commands, versions) to PATH as JSON")
    add("--keep-site", action="store_true",
        help="keep the temp folder (fixture site, nginx.conf, server logs) and print its path")


def selected(option: str, servers: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """The servers named by ``--only`` in table order, or all of them."""
    if not option:
        return list(servers)
    wanted = [name.strip() for name in option.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in servers]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(servers)}")
    return [name for name in servers if name in wanted]


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `with running(...)` blocks, stopping servers


def _check_body(spec: ServerSpec, case: Case, site: Site) -> None:
    """Fail unless the server answers ``case`` with 200 and exactly the fixture bytes."""
    status, headers, body = http_get(spec.port, spec.paths[case.name], timeout=30.0)
    expected = site.body(case.body)
    if status != 200 or body != expected:
        raise BenchError(f"GET {spec.paths[case.name]} answered {status} with {len(body)} bytes "
                         f"(want 200 with {len(expected)} bytes); headers {headers}")


def run_suite(builders: dict[str, SpecBuilder], names: Sequence[str], cases: Sequence[Case],
              args: argparse.Namespace) -> tuple[list[ServerSpec], list[Measurement], list[Failure]]:
    """Start each named server in turn and load it with every case it serves."""
    signal.signal(signal.SIGTERM, _terminate)
    specs: list[ServerSpec] = []
    measurements: list[Measurement] = []
    failures: list[Failure] = []
    base = Path(tempfile.mkdtemp(prefix="devserver-bench-"))
    try:
        site = make_site(base)
        logs = base / "logs"
        logs.mkdir()
        for name in names:
            spec = builders[name](site, free_port(), args.workers)
            specs.append(spec)
            print(f"-- {name}: {shlex.join(spec.argv)}", flush=True)
            try:
                with running(spec, logs) as server:
                    for case in cases:
                        if case.name not in spec.paths:
                            continue
                        try:
                            measurement = measure(spec, case, site, args)
                        except (BenchError, OSError) as exc:
                            failures.append(Failure(name, case.name, str(exc)))
                            print(f"   {case.name}: FAILED {exc}", flush=True)
                            continue
                        measurements.append(measurement)
                    if server.proc.poll() is not None:
                        failures.append(Failure(name, "", f"exited with {server.proc.returncode} during the run:\n"
                                                + server.log_tail()))
            except BenchError as exc:
                failures.append(Failure(name, "", str(exc)))
                print(f"   FAILED {exc}", flush=True)
    finally:
        if args.keep_site:
            print(f"fixture site and server logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return specs, measurements, failures


def measure(spec: ServerSpec, case: Case, site: Site, args: argparse.Namespace) -> Measurement:
    """Check the answer, warm up, then run wrk ``--repeat`` times on one case."""
    url = spec.url(case.name)
    _check_body(spec, case, site)
    if args.warmup > 0:
        run_wrk(url, case.conns, args.warmup, args.wrk_threads)
    runs = []
    for _ in range(args.repeat):
        result = run_wrk(url, case.conns, args.duration, args.wrk_threads)
        runs.append(result)
        print(f"   {case.name}: {result.requests_per_sec:,.0f} req/s, p99 {result.p99_ms:.2f} ms"
              + _error_note(result), flush=True)
    return Measurement(spec.name, case.name, url, case.conns, args.duration, tuple(runs))


def _error_note(result: WrkResult) -> str:
    parts = []
    if result.socket_errors:
        parts.append(f"socket errors connect {result.connect_errors} read {result.read_errors} "
                     f"write {result.write_errors} timeout {result.timeouts}")
    if result.non_2xx:
        parts.append(f"{result.non_2xx} non-2xx/3xx")
    return f"  [{'; '.join(parts)}]" if parts else ""


def _valid(m: Measurement) -> bool:
    """Some requests, all answered 2xx/3xx, and socket errors on at most 1% of them."""
    r = m.result
    return r.requests > 0 and r.non_2xx == 0 and r.socket_errors <= r.requests // 100


def print_table(cases: Sequence[Case], specs: Sequence[ServerSpec], measurements: Sequence[Measurement]) -> None:
    """One block per case: req/s, latency, errors and devserver's ratio to each peer."""
    by_key = {(m.server, m.case): m for m in measurements}
    for case in cases:
        rows = [m for m in measurements if m.case == case.name]
        if not rows:
            continue
        ref = by_key.get((REFERENCE, case.name))
        print(f"\n{case.label} — {case.conns} keep-alive connections, {rows[0].duration} s")
        print(f"  {'server':<18} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'sock err':>8} {'non-2xx':>8} "
              f"{'devserver/peer':>15}")
        for m in rows:
            r = m.result
            ratio = ""
            if ref is not None and m.server != REFERENCE and r.requests_per_sec > 0:
                ratio = f"{ref.result.requests_per_sec / r.requests_per_sec:.2f}x"
            print(f"  {m.server:<18} {r.requests_per_sec:>10,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
                  f"{r.socket_errors:>8} {r.non_2xx:>8} {ratio:>15}")
    measured = {m.server for m in measurements}
    noted = [(spec.name, spec.note) for spec in specs if spec.note and spec.name in measured]
    if noted:
        print()
        for name, note in noted:
            print(f"  note: {name}: {note}")


def check_targets(targets: Sequence[Target], measurements: Sequence[Measurement]) -> list[Verdict]:
    """PASS/MISS/SKIP for each target; a run with non-2xx answers or no requests never passes."""
    by_key = {(m.server, m.case): m for m in measurements}
    verdicts = []
    for target in targets:
        ref = by_key.get((REFERENCE, target.case))
        peer = by_key.get((target.peer, target.case))
        want = f"target >= {target.factor:g}x {target.peer} on {target.case}"
        if ref is None or peer is None:
            missing = REFERENCE if ref is None else target.peer
            verdicts.append(Verdict(target, "SKIP", f"SKIP {want}: no result for {missing}"))
            continue
        if not _valid(ref) or not _valid(peer):
            bad = (ref if not _valid(ref) else peer).result
            why = f"{bad.requests} requests, {bad.non_2xx} non-2xx, {bad.socket_errors} socket errors"
            name = REFERENCE if not _valid(ref) else target.peer
            verdicts.append(Verdict(target, "MISS", f"MISS {want}: {name} run invalid ({why})"))
            continue
        ratio = ref.result.requests_per_sec / peer.result.requests_per_sec
        status = "PASS" if ratio >= target.factor else "MISS"
        verdicts.append(Verdict(target, status, f"{status} {want}: {ratio:.2f}x "
                                f"({ref.result.requests_per_sec:,.0f} vs {peer.result.requests_per_sec:,.0f} req/s)"))
    return verdicts


def _version(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def run_metadata(args: argparse.Namespace) -> dict[str, object]:
    """What a later reader needs to reproduce or judge the figures."""
    packages = {}
    for name in ("devserver", "gunicorn", "waitress", "uvicorn", "werkzeug", "httptools", "granian", "bjoern",
                 "flask"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "options": vars(args),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "wrk": _version(["wrk", "--version"]),
        "nginx": _version(["nginx", "-v"]),
        "git_commit": _version(["git", "-C", str(REPO_DIR), "rev-parse", "HEAD"]),
        "packages": packages,
    }


def print_header(title: str, args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    print(f"{title}: {args.duration} s per case after {args.warmup} s warm-up, wrk -t{args.wrk_threads}, "
          f"--workers {args.workers}")
    print(f"machine: {cpus} CPUs, load average {load:.2f}" +
          ("  (busy machine: figures will be noisy)" if load > cpus * 0.25 else ""), flush=True)


def report(title: str, args: argparse.Namespace, cases: Sequence[Case], targets: Sequence[Target],
           specs: Sequence[ServerSpec], measurements: Sequence[Measurement], failures: Sequence[Failure],
           meta: dict[str, object]) -> int:
    """Print the table and verdicts, write --json; exit status 1 if any server or case failed."""
    print_table(cases, specs, measurements)
    verdicts = check_targets(targets, measurements)
    if verdicts:
        print()
        for verdict in verdicts:
            print(verdict.line)
    for failure in failures:
        where = f"{failure.server} {failure.case}".strip()
        print(f"FAILED {where}: {failure.error.splitlines()[0] if failure.error else ''}")
    if args.json:
        payload = {
            "title": title,
            "meta": meta,
            "servers": [{"name": s.name, "argv": list(s.argv), "paths": dict(s.paths), "note": s.note} for s in specs],
            "cases": [asdict(c) for c in cases],
            "results": [{"server": m.server, "case": m.case, "url": m.url, "conns": m.conns, "duration": m.duration,
                         **asdict(m.result), "runs": [asdict(r) for r in m.runs]} for m in measurements],
            "targets": [{**asdict(v.target), "status": v.status, "line": v.line} for v in verdicts],
            "failures": [asdict(f) for f in failures],
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"raw results written to {path}")
    return 1 if failures else 0


def main(title: str, description: str, builders: dict[str, SpecBuilder], cases: Sequence[Case],
         targets: Sequence[Target], argv: Sequence[str] | None = None) -> int:
    """Parse the shared options, run the suite, report."""
    parser = argparse.ArgumentParser(description=description)
    add_options(parser, list(builders))
    args = parser.parse_args(argv)
    for option in ("duration", "repeat", "workers", "wrk_threads"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    names = selected(args.only, list(builders), parser)
    meta = run_metadata(args)
    print_header(title, args)
    specs, measurements, failures = run_suite(builders, names, cases, args)
    return report(title, args, cases, targets, specs, measurements, failures, meta)
