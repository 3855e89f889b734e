"""Runs every comparison benchmark in one go and writes a Markdown report with a chart.

Sections (each can be skipped with ``--skip``):

  peers      interleaved rounds (rounds.py): WSGI hello as APP and as /hello.py against
             gunicorn, granian, bjoern and waitress; Connection: close; a Flask app;
             latency with 4 connections; the 1 KiB file against granian's static files;
             the median of per-round ratios and the server's CPU µs per request
  startup    cold start (launch → first 200, with and without the dashboard) and PSS of
             all processes after 1,000 requests (startup.py)
  static     1 KiB and 1 MiB files: devserver vs gunicorn sync and gthread,
             ``python -m http.server`` and nginx (throughput.py's servers, plus nginx)
  hello      WSGI hello world, keep-alive: devserver vs gunicorn gthread, waitress,
             werkzeug and uvicorn ``--interface wsgi`` (wsgi_hello.py's servers)
  reload     reload latency: devserver vs ``uvicorn --reload`` vs werkzeug's reloader
             (reload_latency.py, as a subprocess)
  dashboard  what the dashboard costs: dashboard vs ``--no-tui`` (dashboard_overhead.py,
             as a subprocess; the section says so if it is missing or fails)

Writes ``report.md`` (a table per section, devserver/peer ratios, PASS/MISS
for every target, machine info and the command line), ``ratios.png`` (the
ratios against their targets) and ``report.json`` (the raw figures) to
``--out`` (default ``bench/results``, which git ignores).

    python bench/report.py [--duration 10] [--quick] [--skip reload,dashboard] [--out docs/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import rounds
import servers
import startup
import suite
import throughput
import wsgi_hello
from common import BENCH_DIR, REPO_DIR

SECTIONS = ("peers", "startup", "static", "hello", "reload", "realapps", "dashboard")
CASE_NAMES = {"1k": "1 KiB", "1m": "1 MiB", "hello": "hello world"}
RELOAD_P95_MS = 100.0
DASHBOARD_RATIO = 0.90  # dashboard req/s >= 90% of --no-tui: overhead <= 10%
QUICK = {"duration": 2, "warmup": 1, "rounds": 3, "dashboard_rounds": 1, "peer_rounds": 1}
FULL = {"duration": 10, "warmup": 2, "rounds": 30, "dashboard_rounds": 3, "peer_rounds": 3}

# Issue 14's targets for the interleaved rounds: (workload, reference, peer, factor); latency ratios are
# devserver p50 / peer p50 and must stay at or below the factor, the others at or above it.
PEER_TARGETS = (
    ("hello", "devserver-app", "devserver-script", 0.9),
    ("hello", "devserver-app", "gunicorn-gthread", 2.0),
    ("hello", "devserver-script", "gunicorn-gthread", 2.0),
    ("hello", "devserver-app", "granian", 0.5),
    ("hello", "devserver-script", "granian", 0.5),
    ("close", "devserver-app", "gunicorn-sync", 1.2),
    ("flask", "devserver-flask", "gunicorn-gthread-flask", 1.2),
    ("flask", "devserver-flask", "granian-flask", 0.7),
    ("latency", "devserver-app", "gunicorn-gthread", 1.0),
    ("static", "devserver", "granian-static", 0.75),
)
CPU_US_TARGET = 40.0  # server CPU per request on the hello world, both paths
BUSIEST_TARGET = 0.60  # no process of devserver's tree does more than 60% of its work under -c50
START_MS_TARGET = {"devserver-app": 150.0, "devserver-dashboard": 300.0}
PSS_MIB_TARGET = 45.0


@dataclass(frozen=True)
class Check:
    """One target and how it went (status PASS, MISS or SKIP)."""

    section: str
    target: str
    measured: str
    status: str


@dataclass(frozen=True)
class Bar:
    """One bar of the chart: a devserver/peer ratio and the target it must reach, if any."""

    group: str
    label: str
    ratio: float
    target: float | None = None
    status: str = ""


@dataclass
class Section:
    """What a section contributes to the report."""

    key: str
    title: str
    lines: list[str] = field(default_factory=list)  # Markdown body
    checks: list[Check] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ wrk sections (imported suite)


def _wrk_section(key: str, title: str, builders: dict[str, suite.SpecBuilder], cases: Sequence[suite.Case],
                 targets: Sequence[suite.Target], opts: argparse.Namespace) -> Section:
    """Run ``builders`` × ``cases`` through suite.run_suite and tabulate them against devserver."""
    args = argparse.Namespace(duration=opts.duration, warmup=opts.warmup, repeat=1, workers=opts.workers,
                              wrk_threads=2, keep_site=False, json=None, only="")
    print(f"\n== {title}", flush=True)
    specs, measurements, failures = suite.run_suite(builders, list(builders), cases, args)
    section = Section(key, title)
    by_key = {(m.server, m.case): m for m in measurements}
    target_of = {(t.case, t.peer): t for t in targets}
    verdicts = {(v.target.case, v.target.peer): v for v in suite.check_targets(targets, measurements)}
    for case in cases:
        rows = [m for m in measurements if m.case == case.name]
        if not rows:
            continue
        ref = by_key.get((suite.REFERENCE, case.name))
        section.lines += [f"**{case.label}**, {case.conns} keep-alive connections, {opts.duration} s per server", "",
                          "| server | req/s | p50 ms | p99 ms | socket errors | non-2xx | devserver/peer | target |",
                          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for m in rows:
            r = m.result
            ratio = ref.result.requests_per_sec / r.requests_per_sec if ref and m is not ref and \
                r.requests_per_sec else None
            target = target_of.get((case.name, m.server))
            verdict = verdicts.get((case.name, m.server))
            goal = f"≥ {target.factor:g}× {verdict.status if verdict else ''}" if target else ""
            section.lines.append(f"| {m.server} | {r.requests_per_sec:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                                 f"{r.socket_errors} | {r.non_2xx} | {f'{ratio:.2f}×' if ratio else ''} | {goal} |")
            if ratio is not None:
                section.bars.append(Bar(key, f"{CASE_NAMES.get(case.name, case.name)}: vs {m.server}", ratio,
                                        target.factor if target else None, verdict.status if verdict else ""))
        section.lines.append("")
    for target in targets:
        verdict = verdicts[(target.case, target.peer)]
        ref, peer = by_key.get((suite.REFERENCE, target.case)), by_key.get((target.peer, target.case))
        measured = verdict.line.split(": ", 1)[-1]
        if ref and peer and measured.endswith("req/s)"):  # a ratio, not "run invalid" or "no result"
            rps, peer_rps = ref.result.requests_per_sec, peer.result.requests_per_sec
            measured = f"{rps / peer_rps:.2f}× ({rps:,.0f} vs {peer_rps:,.0f} req/s)"
        section.checks.append(Check(key, f"{CASE_NAMES.get(target.case, target.case)}: devserver ≥ "
                                    f"{target.factor:g}× {target.peer}", measured, verdict.status))
    measured_names = {m.server for m in measurements}
    section.lines += [f"- {s.name}: `{shlex.join(s.argv)}` ({s.note})" if s.note else f"- {s.name}: "
                      f"`{shlex.join(s.argv)}`" for s in specs if s.name in measured_names]
    section.lines += [f"- **failed** {f.server} {f.case}: {f.error.splitlines()[0] if f.error else ''}"
                      for f in failures]
    section.lines.append("")
    section.raw = {"results": [{"server": m.server, "case": m.case, "conns": m.conns, "duration": m.duration,
                                **asdict(m.result)} for m in measurements],
                   "failures": [asdict(f) for f in failures],
                   "servers": [{"name": s.name, "argv": list(s.argv), "note": s.note} for s in specs]}
    return section


def run_peers(opts: argparse.Namespace) -> Section:
    """rounds.py's workloads, with issue 14's targets checked on the medians of per-round ratios."""
    section = Section("peers", "devserver against its peers, interleaved rounds")
    args = argparse.Namespace(rounds=opts.peer_rounds, duration=opts.duration, warmup=opts.warmup,
                              workers=opts.workers, keep_site=False)
    outcome = rounds.run_rounds(rounds.WORKLOADS, args)
    section.lines += rounds.markdown(rounds.WORKLOADS, outcome, args)
    found = {(r.workload, r.reference, r.peer): r for w in rounds.WORKLOADS for r in rounds.ratios(w, outcome.runs)}
    latency = {w.key for w in rounds.WORKLOADS if w.latency}
    for workload, reference, peer, factor in PEER_TARGETS:
        ratio = found.get((workload, reference, peer))
        lower = workload in latency
        target = f"{workload}: {reference} {'p50 ≤' if lower else '≥'} {factor:g}× {peer}"
        if ratio is None:
            section.checks.append(Check("peers", target, "not measured", "SKIP"))
            continue
        ok = ratio.median <= factor if lower else ratio.median >= factor
        status = "PASS" if ok else "MISS"
        per_round = ", ".join(f"{x:.2f}" for x in ratio.rounds)
        section.checks.append(Check("peers", target, f"{ratio.median:.2f}× (rounds {per_round})", status))
        section.bars.append(Bar("peers", f"{workload}: {reference} / {peer}"
                                + (" (p50, lower is better)" if lower else ""), ratio.median, factor, status))
    valid = [r for r in outcome.runs if r.valid]
    for name in ("devserver-app", "devserver-script"):
        mine = [r.cpu_us for r in valid if r.workload == "hello" and r.server == name]
        if mine:
            cpu = rounds._median(mine)
            section.checks.append(Check("peers", f"hello: {name} server CPU ≤ {CPU_US_TARGET:g} µs/request",
                                        f"{cpu:.1f} µs", "PASS" if cpu <= CPU_US_TARGET else "MISS"))
        shares = [r.busiest_share for r in valid if r.workload == "hello" and r.server == name and r.busiest_share]
        if shares:
            section.checks.append(Check("peers", f"hello: {name}: no process does > {BUSIEST_TARGET:.0%} of the work",
                                        f"busiest {max(shares):.0%}", "PASS" if max(shares) <= BUSIEST_TARGET
                                        else "MISS"))
    section.raw = rounds.raw(outcome, rounds.WORKLOADS)
    return section


def run_startup(opts: argparse.Namespace) -> Section:
    section = Section("startup", "Cold start and memory")
    args = argparse.Namespace(rounds=opts.peer_rounds, workers=opts.workers)
    outcome = startup.run(args)
    section.lines += startup.markdown(outcome, args)
    for name, limit in START_MS_TARGET.items():
        mine = [s for s in outcome.starts if s.server == name]
        if not mine:
            section.checks.append(Check("startup", f"{name} cold start ≤ {limit:g} ms", "not measured", "SKIP"))
            continue
        start_ms = startup._median([s.start_ms for s in mine])
        section.checks.append(Check("startup", f"{name} cold start ≤ {limit:g} ms", f"{start_ms:.0f} ms",
                                    "PASS" if start_ms <= limit else "MISS"))
    mine = [s for s in outcome.starts if s.server == "devserver-app"]
    if mine:
        pss = startup._median([s.pss_mib for s in mine])
        section.checks.append(Check("startup", f"devserver-app PSS ≤ {PSS_MIB_TARGET:g} MiB after 1,000 requests",
                                    f"{pss:.1f} MiB", "PASS" if pss <= PSS_MIB_TARGET else "MISS"))
    section.raw = startup.raw(outcome)
    return section


def run_static(opts: argparse.Namespace) -> Section:
    builders = {**throughput.BUILDERS, "nginx": servers.nginx}
    targets = (*throughput.TARGETS, *(t for t in wsgi_hello.TARGETS if t.peer == "nginx"))
    return _wrk_section("static", "Static files", builders, throughput.CASES, targets, opts)


def run_hello(opts: argparse.Namespace) -> Section:
    builders = {name: build for name, build in wsgi_hello.BUILDERS.items() if name != "nginx"}
    cases = [c for c in wsgi_hello.CASES if c.name == "hello"]
    targets = [t for t in wsgi_hello.TARGETS if t.case == "hello"]
    return _wrk_section("hello", "WSGI hello world (keep-alive)", builders, cases, targets, opts)


# ------------------------------------------------------------------ subprocess sections


def run_script(argv: list[str], timeout: float) -> tuple[int | None, str]:
    """Run a bench script, echoing its output; (exit status or None on timeout, output).

    On timeout (or if we are stopped) the script gets SIGINT, so its ``with``
    and ``finally`` blocks stop its servers, then SIGTERM and SIGKILL, by pid.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=REPO_DIR, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            print("   | " + line, end="", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    status: int | None = None
    try:
        status = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        lines.append(f"\n(stopped after {timeout:.0f} s)\n")
    finally:
        for sig, grace in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        reader.join(5)
    return status, "".join(lines)


def _failed(section: Section, why: str, output: str) -> Section:
    tail = "\n".join(output.strip().splitlines()[-15:])
    section.lines += [f"**Not measured**: {why}.", ""] + (["```", tail, "```", ""] if tail else [])
    section.raw = {"error": why, "output": output}
    return section


def run_reload(opts: argparse.Namespace) -> Section:
    section = Section("reload", "Reload latency")
    target = f"devserver p95 ≤ {RELOAD_P95_MS:g} ms, 0 failed requests"
    print("\n== reload latency", flush=True)
    with tempfile.TemporaryDirectory(prefix="devserver-report-") as tmp:
        out = Path(tmp) / "reload.json"
        status, output = run_script([sys.executable, str(BENCH_DIR / "reload_latency.py"), "--rounds",
                                     str(opts.rounds), "--json", str(out)], timeout=3 * (opts.rounds * 12 + 60))
        data = json.loads(out.read_text()) if out.exists() else None
    if status != 0 or data is None:
        section.checks.append(Check("reload", target, "not measured", "SKIP"))
        return _failed(section, f"reload_latency.py exited with {status}", output)
    results = data["results"]
    ref = next((r for r in results if r["key"] == "devserver"), None)
    section.lines += [(f"{opts.rounds} edits per server; latency from the end of the write to the first response "
                       "with the new code. stale/failed/refused: requests during the reload windows; missed: edits "
                       "never served within 10 s. devserver/peer below 1 means devserver serves the new code sooner."),
                      "",
                      "| server | p50 ms | p95 ms | max ms | stale | failed | refused | missed | devserver/peer p95 |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        if r["p95_ms"] is None:
            section.lines.append(f"| {r['server']} | {r['note'] or 'no round completed'} |" + " |" * 7)
            continue
        ratio = ref["p95_ms"] / r["p95_ms"] if ref and ref["p95_ms"] and r is not ref else None
        section.lines.append(f"| {r['server']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | "
                             f"{r['stale']} | {r['failed']} | {r['refused']} | {r['missed']} | "
                             f"{f'{ratio:.2f}×' if ratio else ''} |")
    section.lines += ["", "A PASS needs p95 within the limit and no failed or refused request and no missed edit.",
                      ""]
    if ref is None or ref["p95_ms"] is None:
        section.checks.append(Check("reload", target, ref["note"] if ref else "no devserver result", "MISS"))
    else:
        bad = ref["failed"] + ref["refused"] + ref["missed"]
        status_ = "PASS" if ref["p95_ms"] <= RELOAD_P95_MS and bad == 0 else "MISS"
        section.checks.append(Check("reload", target, f"p95 {ref['p95_ms']:.1f} ms, {ref['failed']} failed, "
                                    f"{ref['refused']} refused, {ref['missed']} missed", status_))
    section.raw = data
    return section


REAL_APP_P95_MS = {"flask": 50.0, "bottle": 50.0, "falcon": 50.0, "django": 300.0}


def run_real_apps(opts: argparse.Namespace) -> Section:
    section = Section("realapps", "Real framework projects: edits under light load")
    print("\n== real apps", flush=True)
    with tempfile.TemporaryDirectory(prefix="devserver-report-") as tmp:
        out = Path(tmp) / "realapps.json"
        status, output = run_script([sys.executable, str(BENCH_DIR / "real_apps.py"), "--json", str(out)],
                                    timeout=3600)
        rows = json.loads(out.read_text()) if out.exists() else None
    if status != 0 or rows is None:
        section.checks.append(Check("realapps", "see real_apps.py", "not measured", "SKIP"))
        return _failed(section, f"real_apps.py exited with {status}", output)
    section.lines += ["20 edits of a view per app and server while 4 clients request the page 25 times a second "
                      "each; latency from the end of the write to the first response with the new code. stale: old "
                      "code answering a request sent after the save.", "",
                      "| app | server | p50 ms | p95 ms | max ms | failed | refused | stale | missed |",
                      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        section.lines.append(f"| {r['app']} | {r['server']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | "
                             f"{r['failed']} | {r['refused']} | {r['stale']} | {r['missed']} |")
    section.lines.append("")
    for r in rows:
        if r["server"] != "devserver":
            continue
        limit = REAL_APP_P95_MS[r["app"]]
        target = f"{r['app']}: p95 ≤ {limit:g} ms, 0 failed, 0 refused"
        bad = (r["failed"] or 0) + (r["refused"] or 0) + (r["missed"] or 0)
        ok = r["p95_ms"] is not None and r["p95_ms"] <= limit and bad == 0
        section.checks.append(Check(f"realapps-{r['app']}", target, f"p95 {r['p95_ms']} ms, {r['failed']} failed, "
                                    f"{r['refused']} refused", "PASS" if ok else "MISS"))
    section.raw = rows
    return section


_DASH_ROW = re.compile(r"^\s+(\w+)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)\s", re.M)
_DASH_CPU = re.compile(r"([\d.]+) s\s+([\d.]+) ms\s+([\d.]+) s\s+([\d.]+) ms")


def parse_dashboard_table(output: str) -> list[dict[str, Any]]:
    """The medians table dashboard_overhead.py prints: one dict per case."""
    _, found, text = output.partition("\nmedians")
    rows = []
    for match in _DASH_ROW.finditer(text if found else ""):
        row: dict[str, Any] = {"case": match.group(1), "no_tui_rps": float(match.group(2).replace(",", "")),
                               "dashboard_rps": float(match.group(3).replace(",", "")),
                               "ratio": float(match.group(4))}
        line = text[match.end():].split("\n", 1)[0]
        if cpu := _DASH_CPU.search(line):
            row["cpu_ms_per_1k_no_tui"], row["cpu_ms_per_1k_dashboard"] = float(cpu[2]), float(cpu[4])
        rows.append(row)
    return rows


def _json_rows(data: Any) -> list[dict[str, Any]]:
    """Dicts with a ``case`` and a ``ratio`` anywhere in dashboard_overhead.py's JSON (if it writes one)."""
    if isinstance(data, dict):
        if "case" in data and isinstance(data.get("ratio"), (int, float)):
            return [data]
        return [row for value in data.values() for row in _json_rows(value)]
    if isinstance(data, list):
        return [row for value in data for row in _json_rows(value)]
    return []


def run_dashboard(opts: argparse.Namespace) -> Section:
    section = Section("dashboard", "Dashboard overhead")
    target = f"dashboard costs ≤ {100 * (1 - DASHBOARD_RATIO):.0f}% req/s (≥ {DASHBOARD_RATIO:.2f}× --no-tui)"
    script = BENCH_DIR / "dashboard_overhead.py"
    print("\n== dashboard overhead", flush=True)
    if not script.exists():
        section.checks.append(Check("dashboard", target, "not measured", "SKIP"))
        return _failed(section, f"bench/{script.name} is missing", "")
    argv = [sys.executable, str(script), "--rounds", str(opts.dashboard_rounds), "--duration", str(opts.duration),
            "--warmup", str(opts.warmup), "--workers", str(opts.workers)]
    helped = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60,
                            check=False)
    with tempfile.TemporaryDirectory(prefix="devserver-report-") as tmp:
        out = Path(tmp) / "dashboard.json"
        if "--json" in helped.stdout:
            argv += ["--json", str(out)]
        status, output = run_script(argv, timeout=opts.dashboard_rounds * 2 * (4 * (opts.duration + opts.warmup + 2)
                                                                               + 60) + 120)
        try:
            rows = _json_rows(json.loads(out.read_text())) if out.exists() else []
        except ValueError:
            rows = []
    rows = rows or parse_dashboard_table(output)
    if status != 0 or not rows:
        section.checks.append(Check("dashboard", target, "not measured", "SKIP"))
        return _failed(section, f"dashboard_overhead.py exited with {status}" +
                       ("" if rows else " and printed no medians table"), output)
    section.lines += [(f"devserver --workers {opts.workers}, wrk -c50, median of {opts.dashboard_rounds} round(s) "
                       f"of {opts.duration} s per mode (ABBA order); the dashboard runs in a 160x48 tmux terminal."),
                      "",
                      "| case | --no-tui req/s | dashboard req/s | dashboard/no-tui | overhead | target |",
                      "| --- | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        ratio = float(row["ratio"])
        status_ = "PASS" if ratio >= DASHBOARD_RATIO else "MISS"
        plain, dash = row.get("no_tui_rps"), row.get("dashboard_rps")
        section.lines.append(f"| {row['case']} | {f'{plain:,.0f}' if plain else ''} | "
                             f"{f'{dash:,.0f}' if dash else ''} | {ratio:.3f} | {100 * (1 - ratio):.1f}% | "
                             f"≥ {DASHBOARD_RATIO:.2f} {status_} |")
        section.checks.append(Check("dashboard", f"{CASE_NAMES.get(row['case'], row['case'])}: {target}",
                                    f"{100 * (1 - ratio):.1f}% ({ratio:.3f}×)", status_))
        section.bars.append(Bar("dashboard", f"dashboard on/off: {CASE_NAMES.get(row['case'], row['case'])}",
                                ratio, DASHBOARD_RATIO, status_))
    section.lines.append("")
    section.raw = {"rows": rows, "output": output}
    return section


RUNNERS: dict[str, Callable[[argparse.Namespace], Section]] = {
    "peers": run_peers, "startup": run_startup, "static": run_static, "hello": run_hello, "reload": run_reload,
    "realapps": run_real_apps,
    "dashboard": run_dashboard,
}

# ------------------------------------------------------------------ machine, Markdown, chart


def machine_info(opts: argparse.Namespace) -> dict[str, Any]:
    """CPU, cores, memory, versions, date and the exact command line."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text()) \
        if Path("/proc/meminfo").exists() else None
    dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO_DIR), "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True, check=False).stdout.strip()
    meta = suite.run_metadata(opts)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": shlex.join(sys.orig_argv),
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(memory.group(1)) / 1024**2, 1) if memory else None,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "git_commit": str(meta["git_commit"]) + (" (with uncommitted changes)" if dirty else ""),
        "wrk": meta["wrk"], "nginx": meta["nginx"], "packages": meta["packages"],
    }


def render(sections: Sequence[Section], machine: dict[str, Any], opts: argparse.Namespace,
           loads: tuple[float, float], chart: str | None) -> str:
    """The whole report as Markdown."""
    cores = machine["cores"] or 1
    lines = ["# devserver benchmark report", "", f"{machine['date']}, `{machine['command']}`", ""]
    if opts.quick:
        lines += [("> **Quick check run** (short runs, few rounds): these figures show that the report works; "
                   "do not quote them."), ""]
    if max(loads) > 0.25 * cores:
        lines += [(f"> **Busy machine**: load average {loads[0]:.2f} at the start and {loads[1]:.2f} at the end "
                   f"on {cores} cores; figures are noisy."), ""]
    lines += ["## Targets", "", "| section | target | measured | result |", "| --- | --- | --- | --- |"]
    lines += [f"| {c.section} | {c.target} | {c.measured} | **{c.status}** |" for s in sections for c in s.checks]
    lines.append("")
    if chart:
        lines += [f"![devserver/peer ratios]({chart})", ""]
    lines += [("Throughput: req/s with `wrk -t2 --latency` on 127.0.0.1, one server at a time, after a "
               f"{opts.warmup} s warm-up; devserver and the multi-process peers run {opts.workers} workers. "
               "devserver/peer is devserver's req/s divided by the peer's: above 1, devserver is faster. "
               "A run with non-2xx answers or socket errors on over 1% of requests never passes."), ""]
    for section in sections:
        lines += [f"## {section.title}", "", *section.lines]
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items() if version)
    lines += ["## Machine", "",
              (f"- CPU: {machine['cpu']}, {machine['cores']} logical cores ({machine['usable_cores']} usable)"
               + (f", {machine['memory_gib']} GiB RAM" if machine["memory_gib"] else "")),
              f"- load average: {loads[0]:.2f} at the start, {loads[1]:.2f} at the end",
              f"- {machine['python']} on {machine['platform']}",
              f"- {packages}; {machine['wrk']}; {machine['nginx']}",
              f"- git commit {machine['git_commit']}",
              f"- date: {machine['date']}",
              f"- command: `{machine['command']}`", ""]
    return "\n".join(lines)


def draw_chart(bars: Sequence[Bar], path: Path, subtitle: str) -> str | None:
    """A horizontal bar per devserver/peer ratio, with its target marked; None if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError:
        return None
    colours = {"PASS": "#2e7d32", "MISS": "#c62828"}
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.42 * len(bars)), layout="constrained")
    ys = range(len(bars))
    ax.barh(ys, [b.ratio for b in bars], color=[colours.get(b.status, "#78909c") for b in bars], height=0.6)
    top = max([b.ratio for b in bars] + [b.target or 0 for b in bars] + [1.0]) * 1.18
    for y, bar in zip(ys, bars):
        ax.text(max(bar.ratio, bar.target or 0) + top * 0.012, y, f"{bar.ratio:.2f}×", va="center", fontsize=9)
        if bar.target is not None:
            ax.plot([bar.target, bar.target], [y - 0.42, y + 0.42], color="black", linewidth=2.5)
        if y and bar.group != bars[y - 1].group:
            ax.axhline(y - 0.5, color="black", linewidth=0.6)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(list(ys), [b.label for b in bars], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    ax.set_xlabel("devserver / peer, req/s (dashboard on/off: devserver with / without its dashboard); "
                  "higher is better")
    ax.set_title(f"devserver against its peers\n{subtitle}", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=[Patch(color=colours["PASS"], label="target met"), Patch(color=colours["MISS"],
                                                                              label="target missed"),
                       Patch(color="#78909c", label="no target"), Line2D([], [], color="black", linewidth=2.5,
                                                                         label="target"),
                       Line2D([], [], color="grey", linestyle="--", label="parity (1×)")],
              loc="lower right", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# ------------------------------------------------------------------ main


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the finally blocks, which stop every server and script


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--duration", type=int, help=f"seconds per wrk run (default {FULL['duration']}; {QUICK['duration']} "
        "with --quick)")
    add("--warmup", type=int, help=f"seconds of warm-up load before each run (default {FULL['warmup']}; "
        f"{QUICK['warmup']} with --quick)")
    add("--rounds", type=int, help=f"reload edits per server (default {FULL['rounds']}; {QUICK['rounds']} "
        "with --quick)")
    add("--dashboard-rounds", type=int, help=f"dashboard_overhead.py --rounds (default {FULL['dashboard_rounds']}; "
        f"{QUICK['dashboard_rounds']} with --quick)")
    add("--peer-rounds", type=int, help=f"interleaved rounds of the peers and startup sections (default "
        f"{FULL['peer_rounds']}; {QUICK['peer_rounds']} with --quick)")
    add("--workers", type=int, default=2, help="devserver and multi-process peer workers (default %(default)s)")
    add("--quick", action="store_true", help="short runs and few rounds, to check that everything works")
    add("--skip", action="append", default=[], metavar="SECTION",
        help=f"leave out a section (repeat or comma-separate): {', '.join(SECTIONS)}")
    add("--out", type=Path, default=BENCH_DIR / "results",
        help="folder for report.md, ratios.png and report.json (default bench/results)")
    opts = parser.parse_args(argv)
    for name, value in (QUICK if opts.quick else FULL).items():
        if getattr(opts, name) is None:
            setattr(opts, name, value)
    for name in ("duration", "rounds", "dashboard_rounds", "peer_rounds", "workers"):
        if getattr(opts, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if opts.warmup < 0:
        parser.error("--warmup must be 0 or more")
    opts.skip = {s.strip() for item in opts.skip for s in item.split(",") if s.strip()}
    if unknown := opts.skip - set(SECTIONS):
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    opts.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(opts)
    load_start = os.getloadavg()[0]
    print(f"benchmark report: {opts.duration} s per wrk run; sections: "
          f"{', '.join(s for s in SECTIONS if s not in opts.skip)}; load average {load_start:.2f} on "
          f"{machine['cores']} cores", flush=True)
    sections = [RUNNERS[name](opts) for name in SECTIONS if name not in opts.skip]
    loads = (load_start, os.getloadavg()[0])
    bars = [bar for section in sections for bar in section.bars]
    subtitle = f"{machine['date']}, {opts.duration} s runs" + (", quick check: noisy" if opts.quick else "")
    chart = draw_chart(bars, opts.out / "ratios.png", subtitle) if bars else None
    (opts.out / "report.md").write_text(render(sections, machine, opts, loads, chart))
    raw = {"machine": machine, "options": {k: sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path)
                                           else v for k, v in vars(opts).items()},
           "load_average": loads, "checks": [asdict(c) for s in sections for c in s.checks],
           "sections": {s.key: s.raw for s in sections}}
    (opts.out / "report.json").write_text(json.dumps(raw, indent=2) + "\n")
    print("\n" + "\n".join(f"{c.status} {c.section}: {c.target}: {c.measured}" for s in sections
                           for c in s.checks))
    print(f"\nreport written to {opts.out / 'report.md'}" + (f" and {opts.out / chart}" if chart else
                                                             " (no chart: pip install matplotlib)"))
    return 1 if any(s.raw.get("failures") or "error" in s.raw for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
