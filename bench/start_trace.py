"""Where a devserver start goes: a timeline from launch to the first 200, per process.

Every Python process of the server (the supervisor, forked and spawned
workers) loads a ``sitecustomize`` from a temporary folder put first on
PYTHONPATH; it adds an audit hook (PEP 578) that appends one line per event
to a shared file: the interpreter being up, each import, the listening
socket's bind, each fork, the app's module being run.  The launcher polls
``GET /`` every 2 ms (like bench/startup.py) and, with ``--dashboard``,
watches the pseudo-terminal for the dashboard's first output and for the
first screen that shows the request log.  Medians over ``--rounds`` starts
are printed, in milliseconds after the launch, with the modules each worker
imported after it was forked (what it does not share with the supervisor).

The hook costs a little per audited event, so the absolute figures are a few
per cent above bench/startup.py's; this script says where the time goes, that
one says how long it takes.  Each line also carries the CPU time its process
had used: the supervisor's by its first fork is the serial part of a start,
and unlike the times after launch it barely moves on a busy machine.

The devserver that runs is the one first on PYTHONPATH (this checkout's when
none is set), so two checkouts can be traced one after the other.

    python bench/start_trace.py [--dashboard] [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import servers
from common import REPO_DIR, BenchError, Site, free_port, make_site, start_server, stop_server
from startup import START_TIMEOUT, _first_200

# Installed in every process of the server; writes "pid ns cpu_ns event detail" lines with O_APPEND (atomic per
# line).  cpu_ns is the CPU time the process has used (a forked one counts from its fork).
SITECUSTOMIZE = '''\
import os, sys, time
_path = os.environ.get("DEVSERVER_START_TRACE")
if _path:
    _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _log(event, detail=""):
        os.write(_fd, f"{os.getpid()} {time.monotonic_ns()} {time.process_time_ns()} {event} {detail}\\n".encode())

    def _hook(event, args):
        if event == "import":
            _log("import", args[0])
        elif event == "socket.bind":
            _log("bind", args[1])
        elif event == "os.fork":
            _log("fork", len(sys.modules))
        elif event == "exec":
            name = getattr(args[0], "co_filename", "")
            if name.endswith("hello.py"):
                _log("app", name)

    _log("up", " ".join(sys.argv[:2]))
    os.register_at_fork(after_in_child=lambda: _log("forked", len(sys.modules)))
    sys.addaudithook(_hook)
'''

PAINTED = b"Requests"  # a word of the dashboard's request log panel: on screen means the first paint is done


@dataclass
class Process:
    pid: int
    up: float | None = None  # interpreter started (spawned) or fork returned (forked)
    forked: bool = False
    modules_at_fork: int = 0
    imports: list[tuple[float, str]] = field(default_factory=list)
    binds: list[float] = field(default_factory=list)
    forks: list[float] = field(default_factory=list)
    app: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)  # CPU ms used by its first up/bind/fork/app


def parse(trace: Path, launched: int) -> dict[int, Process]:
    procs: dict[int, Process] = {}
    for line in trace.read_text().splitlines():
        pid_s, ns, cpu_ns, event, *rest = line.split(" ", 4)
        detail = rest[0] if rest else ""
        pid = int(pid_s)
        at = (int(ns) - launched) / 1e6
        proc = procs.setdefault(pid, Process(pid))
        if event in ("up", "bind", "fork", "app"):
            proc.cpu.setdefault(event, int(cpu_ns) / 1e6)
        if event == "up" and proc.up is None:
            proc.up = at
        elif event == "forked":
            proc.up, proc.forked, proc.modules_at_fork = at, True, int(detail)
        elif event == "import":
            proc.imports.append((at, detail))
        elif event == "bind":
            proc.binds.append(at)
        elif event == "fork":
            proc.forks.append(at)
        elif event == "app" and proc.app is None:
            proc.app = at
    return procs


def first_import(proc: Process, prefix: str) -> float | None:
    return next((at for at, name in proc.imports if name == prefix or name.startswith(prefix + ".")), None)


def milestones(procs: dict[int, Process], answered: float, screen: dict[str, float]) -> dict[str, float | None]:
    ordered = sorted(procs.values(), key=lambda p: p.up if p.up is not None else 1e9)
    supervisor = ordered[0]
    workers = [p for p in ordered[1:] if p.forked or p.app is not None or first_import(p, "devserver.worker.process")]
    out: dict[str, float | None] = {
        "supervisor interpreter up": supervisor.up,
        "supervisor imports devserver.cli": first_import(supervisor, "devserver.cli"),
        "supervisor imports devserver.supervisor.core": first_import(supervisor, "devserver.supervisor.core"),
        "supervisor imports rich": first_import(supervisor, "rich"),
        "supervisor imports textual": first_import(supervisor, "textual"),
        "supervisor imports tui.app": first_import(supervisor, "tui.app"),
        "socket bound": supervisor.binds[0] if supervisor.binds else None,
        "supervisor imports devserver.worker.process": first_import(supervisor, "devserver.worker.process"),
        "supervisor imports asyncio": first_import(supervisor, "asyncio"),
        "supervisor forks worker 0": supervisor.forks[0] if supervisor.forks else None,
        "supervisor imports watchfiles (the watcher)": first_import(supervisor, "watchfiles"),
    }
    for index, worker in enumerate(workers):
        how = "forked" if worker.forked else "spawned, interpreter up"
        out[f"worker {index} {how}"] = worker.up
        out[f"worker {index} imports asyncio"] = first_import(worker, "asyncio")
        out[f"worker {index} runs the app module"] = worker.app
        out[f"worker {index} last import before serving"] = max(
            (at for at, _ in worker.imports if worker.app is None or at <= worker.app + 50), default=None)
    out["first 200"] = answered
    out.update(screen)
    return out


def cpu_used(procs: dict[int, Process]) -> dict[str, float | None]:
    """CPU ms each process had used by its milestones: robust to a busy machine, unlike the times after launch.

    The supervisor's figure at its first fork is the serial part of a start (it runs one thread until then);
    a forked worker's counts from its fork.
    """
    ordered = sorted(procs.values(), key=lambda p: p.up if p.up is not None else 1e9)
    supervisor = ordered[0]
    workers = [p for p in ordered[1:] if p.forked or p.app is not None]
    out: dict[str, float | None] = {
        "supervisor, interpreter up": supervisor.cpu.get("up"),
        "supervisor, socket bound": supervisor.cpu.get("bind"),
        "supervisor, forking worker 0": supervisor.cpu.get("fork"),
    }
    for index, worker in enumerate(workers):
        out[f"worker {index}, running the app module"] = worker.cpu.get("app")
    return out


def worker_imports(procs: dict[int, Process]) -> dict[str, list[str]]:
    """The top-level modules each forked worker imported itself (not shared with the supervisor)."""
    found: dict[str, list[str]] = {}
    for proc in procs.values():
        if proc.forked:
            tops = sorted({name.split(".")[0] for _, name in proc.imports})
            found[f"pid {proc.pid} (forked with {proc.modules_at_fork} modules)"] = tops
    return found


def one_start(site: Site, workers: int, dashboard: bool, base: Path) -> tuple[dict[str, float | None], dict[str, list[str]]]:
    trace = base / "trace.log"
    trace.unlink(missing_ok=True)
    hook_dir = base / "hook"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    spec = servers.devserver_app(site, free_port(), workers, dashboard=dashboard)
    env = {"DEVSERVER_START_TRACE": str(trace),
           "PYTHONPATH": os.pathsep.join((str(hook_dir), os.environ.get("PYTHONPATH") or str(REPO_DIR)))}
    spec = replace(spec, env={**spec.env, **env})
    logs = base / "logs"
    logs.mkdir(exist_ok=True)
    launched = time.monotonic_ns()
    server = start_server(spec, logs)
    screen: dict[str, float] = {}
    try:
        _first_200(spec.port, spec.paths["hello"], lambda: server.proc.poll() is None,
                   time.monotonic() + START_TIMEOUT)
        answered = (time.monotonic_ns() - launched) / 1e6
        if dashboard:
            screen = _screen_times(server.log, launched)
    finally:
        stop_server(server)
    procs = parse(trace, launched)
    cpu = {f"CPU: {name}": value for name, value in cpu_used(procs).items()}
    return {**milestones(procs, answered, screen), **cpu}, worker_imports(procs)


def _screen_times(log: Path, launched: int) -> dict[str, float]:
    """When the dashboard first wrote to its terminal and first showed its request log (polled, bounded)."""
    # The pty copier appends to the log as output arrives; the log's mtime is not precise enough, so poll
    # the content and time it here: an upper bound within the poll interval.
    times: dict[str, float] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(times) < 2:
        data = log.read_bytes() if log.exists() else b""
        now = (time.monotonic_ns() - launched) / 1e6
        if data and "dashboard first output (by then)" not in times:
            times["dashboard first output (by then)"] = now
        if PAINTED in data:
            times["dashboard painted (by then)"] = now
        time.sleep(0.002)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dashboard", action="store_true", help="run with the dashboard on a pseudo-terminal")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--imports", action="store_true", help="list the modules each forked worker imported")
    opts = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="devserver-trace-"))
    site = make_site(base)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    runs: list[dict[str, float | None]] = []
    imports: dict[str, list[str]] = {}
    try:
        one_start(site, opts.workers, opts.dashboard, base)  # unmeasured: bytecode, page cache
        for _ in range(opts.rounds):
            found, imports = one_start(site, opts.workers, opts.dashboard, base)
            runs.append(found)
    except BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    print(f"load average {os.getloadavg()[0]:.2f}; ms after launch, median of {opts.rounds} starts")
    order: dict[str, None] = {}
    for run in runs:
        order.update(dict.fromkeys(run))
    rows = sorted((name for name in order if not name.startswith("CPU: ")), key=_median_of(runs))
    for name in rows:
        value = _median_of(runs)(name)
        print(f"  {value:8.1f}  {name}" if value < 1e9 else f"         -  {name}")
    print("CPU ms the process had used by then, median")
    for name in (name for name in order if name.startswith("CPU: ")):
        value = _median_of(runs)(name)
        print(f"  {value:8.1f}  {name[5:]}" if value < 1e9 else f"         -  {name[5:]}")
    if opts.imports:
        for pid, tops in imports.items():
            print(f"\nimported by worker {pid}: {', '.join(tops) or 'nothing'}")
    return 0


def _median_of(runs: list[dict[str, float | None]]) -> Callable[[str], float]:
    def median(name: str) -> float:
        values = [v for run in runs if (v := run.get(name)) is not None]
        return statistics.median(values) if values else 1e9

    return median


if __name__ == "__main__":
    sys.exit(main())
