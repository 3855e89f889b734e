"""What the dashboard costs the server: req/s and supervisor CPU, dashboard vs --no-tui.

The same devserver (``--workers 2``) is loaded with the same ``wrk -t2 -c50``
on a 1 KiB static file and on a hello-world ``/hello.py``, once with
``--no-tui`` and once with the Textual dashboard, both in the same kind of
real terminal (a private tmux server, 160x48: the console log is written to
it, as a user would see it).  Rounds alternate the order of the two modes
(ABBA...) so that a drift of the machine's load hits both; the median of the
rounds is reported.  Targets: the dashboard slows the server by at most 10%
(req/s ratio >= 0.90), and its p99 latency is at most 1.5x that of
``--no-tui`` (the median of the per-round p99 ratios).

Beside each run: the server's CPU time per request (the supervisor and its
workers, from /proc), the terminal's (the tmux server, which parses what the
console log writes), and the load average.

The supervisor's CPU time (utime + stime from /proc/<pid>/stat) is read
before each wrk run and one second after it (so events still being drawn
count too).  With ``--profile DIR`` the supervisor is sampled with py-spy
during one dashboard run of each case, and the hottest functions are printed.

    python bench/dashboard_overhead.py [--rounds 3] [--duration 10] [--warmup 2] [--profile DIR]

Everything listens on 127.0.0.1; every process started here is stopped by
its pid (the tmux server by ``kill-server`` on its own socket).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from common import (
    ONE_K,
    BenchError,
    ServerSpec,
    Site,
    WrkResult,
    descendants,
    free_port,
    http_get,
    make_site,
    process_tree,
    python_argv,
    run_wrk,
    running,
)

COLUMNS, ROWS = 160, 48
SIDE_WIDTH = 54  # tui/app.tcss #side, at this width (Screen.-huge: 150 columns and more)
CASES = {"1k": f"/{ONE_K}", "hello": "/hello.py"}
CONNECTIONS = 50
TARGET_RATIO = 0.90
TARGET_P99_RATIO = 1.5
TICKS = os.sysconf("SC_CLK_TCK")
MODES = ("no-tui", "dashboard")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15 of proc(5)


def start_time(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[19])


def devserver_argv(site: Site, port: int, workers: int, *extra: str) -> tuple[str, ...]:
    return python_argv("-m", "devserver", "--port", str(port), "--workers", str(workers),
                       "--root", str(site.html_page), "--dynamic", str(site.dynamic), *extra)


# ----------------------------------------------------------------- servers


@dataclass
class Server:
    """A running devserver: its supervisor's pid, and how to read what it displayed."""

    mode: str
    pid: int
    port: int
    screen: Tmux | None = None
    log: Path | None = None

    def shown(self) -> str:
        """What the dashboard shows of its counters (or the console log's drop notices)."""
        if self.screen is not None and self.mode == "no-tui":
            drops = re.findall(r"events dropped: (\d+)", self.screen.capture())
            return f"console dropped events {drops[-1] if drops else 0} (on screen)"
        if self.screen is not None:
            # The side panels are the last SIDE_WIDTH columns; a long line wraps inside them.
            side = "\n".join(line[-SIDE_WIDTH:] for line in self.screen.capture().splitlines())
            total = re.search(r"total[\s│]*([\d,]+)", side)
            dropped = re.search(r"dropped events[\s│]*([\d,]+)", side)
            return (f"dashboard total {total.group(1) if total else '?'}, "
                    f"dropped events {dropped.group(1) if dropped else '?'}")
        if self.log is not None:
            drops = re.findall(r"events dropped: (\d+)", self.log.read_text(errors="replace"))
            return f"console dropped events {drops[-1] if drops else 0}"
        return ""


class Tmux:
    """A private tmux server (its own socket) with one 160x48 window."""

    def __init__(self, workdir: Path) -> None:
        self.socket = f"devserver-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.conf = workdir / "tmux.conf"
        self.conf.write_text("set-option -g remain-on-exit on\n")
        self.env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        self.socket_path = ""

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10,
                              env=self.env, check=False)
        if check and done.returncode != 0:
            raise BenchError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self, argv: tuple[str, ...], cwd: Path) -> int:
        """Run ``argv`` in the window; return the pane's pid (the command itself: it is exec'd)."""
        self.run("-f", str(self.conf), "new-session", "-d", "-x", str(COLUMNS), "-y", str(ROWS), "-c", str(cwd),
                 "exec " + shlex.join(argv))
        self.socket_path = self.run("display-message", "-p", "#{socket_path}").strip()
        return int(self.run("display-message", "-p", "#{pane_pid}").strip())

    def capture(self) -> str:
        return self.run("capture-pane", "-p", check=False)

    def server_pid(self) -> int | None:
        """The tmux server's pid (it draws the terminal: its CPU is the terminal's)."""
        text = self.run("display-message", "-p", "#{pid}", check=False).strip()
        return int(text) if text.isdigit() else None

    def exited(self) -> bool:
        dead, status, signum, server = (self.run("display-message", "-p",
                                                 "#{pane_dead} #{pane_dead_status} #{pane_dead_signal} #{pid}")
                                        .rstrip("\n").split(" ") + ["", "", "", ""])[:4]
        if status or signum:
            return True
        if dead == "1" and server.isdigit():
            os.kill(int(server), signal.SIGCHLD)  # libutempter may have eaten tmux's SIGCHLD (tmux#311)
        return False

    def kill(self) -> None:
        self.run("kill-server", check=False)
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)


def _wait_ready(port: int, pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if start_time(pid) is None:
            raise BenchError("devserver exited before it was ready")
        try:
            status, _, _ = http_get(port, f"/{ONE_K}", timeout=2)
            if status == 200:
                return
            last = f"status {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise BenchError(f"devserver not ready after {timeout:.0f}s ({last})")


@contextmanager
def console_to_file(site: Site, workers: int, logs: Path) -> Iterator[Server]:
    """``devserver --no-tui``, its console log written to a file (``--console-to-file``)."""
    port = free_port()
    argv = devserver_argv(site, port, workers, "--no-tui")
    spec = ServerSpec(name="no-tui", argv=argv, port=port, paths=CASES, ready_path=f"/{ONE_K}", cwd=site.base)
    with running(spec, logs) as server:
        yield Server("no-tui", server.proc.pid, port, log=server.log)


def console_server(site: Site, workers: int, workdir: Path) -> AbstractContextManager[Server]:
    """``devserver --no-tui`` in tmux, its console log written to the terminal; stopped with Ctrl-C."""
    return in_terminal("no-tui", site, workers, workdir)


def dashboard_server(site: Site, workers: int, workdir: Path) -> AbstractContextManager[Server]:
    """``devserver`` with its dashboard, in tmux; quit with ``q`` at the end."""
    return in_terminal("dashboard", site, workers, workdir)


@contextmanager
def in_terminal(mode: str, site: Site, workers: int, workdir: Path) -> Iterator[Server]:
    port = free_port()
    tmux = Tmux(workdir)
    pid = tmux.start(devserver_argv(site, port, workers, *(("--no-tui",) if mode == "no-tui" else ())), site.base)
    started: list[tuple[int, int]] = []
    try:
        _wait_ready(port, pid)
        started = [(pid, start_time(pid) or 0), *descendants(pid)]
        yield Server(mode, pid, port, screen=tmux)
        tmux.run("send-keys", "q" if mode == "dashboard" else "C-c")
        deadline = time.monotonic() + 20
        while not tmux.exited() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        tmux.kill()
        deadline = time.monotonic() + 10
        for child, started_at in started:
            while time.monotonic() < deadline and start_time(child) == started_at:
                time.sleep(0.05)
            if start_time(child) == started_at:
                os.kill(child, signal.SIGKILL)


# ---------------------------------------------------------------- measuring


@dataclass
class Run:
    mode: str
    case: str
    result: WrkResult
    cpu: float  # supervisor CPU seconds over the run plus one second
    shown: str = ""
    server_cpu: float = 0.0  # the supervisor's and every worker's, over the run plus one second
    terminal_cpu: float = 0.0  # the tmux server's, likewise
    load: float = 0.0  # one-minute load average at the end of the run
    round: int = 0

    @property
    def cpu_per_1k(self) -> float:
        """Supervisor CPU seconds per 1000 requests served."""
        return 1000 * self.cpu / self.result.requests if self.result.requests else 0.0

    def per_request_us(self, seconds: float) -> float:
        return 1e6 * seconds / self.result.requests if self.result.requests else 0.0


@dataclass
class Results:
    runs: list[Run] = field(default_factory=list)

    def of(self, mode: str, case: str) -> list[Run]:
        return [r for r in self.runs if r.mode == mode and r.case == case]


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds of ``pids`` together (a process that ended counts 0)."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def measure(server: Server, case: str, args: argparse.Namespace, profile: Path | None, round_: int = 0) -> Run:
    url = f"http://127.0.0.1:{server.port}{CASES[case]}"
    if args.warmup > 0:
        run_wrk(url, CONNECTIONS, args.warmup, 2)
        time.sleep(1)
    spy = None
    if profile is not None:
        out = profile / f"supervisor-{server.mode}-{case}.txt"
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--duration", str(args.duration),
                                "--format", "raw", "--rate", "200", "--output", str(out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    tree = process_tree(server.pid)
    terminal = [pid for pid in (server.screen.server_pid() if server.screen else None,) if pid is not None]
    before, tree_before, terminal_before = cpu_seconds(server.pid), tree_cpu(tree), tree_cpu(terminal)
    result = run_wrk(url, CONNECTIONS, args.duration, 2)
    time.sleep(1.0)
    cpu = cpu_seconds(server.pid) - before
    server_cpu, terminal_cpu = tree_cpu(tree) - tree_before, tree_cpu(terminal) - terminal_before
    if spy is not None:
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        print_profile(profile / f"supervisor-{server.mode}-{case}.txt")  # type: ignore[operator]
    run = Run(server.mode, case, result, cpu, server.shown(), server_cpu, terminal_cpu, os.getloadavg()[0], round_)
    errors = result.socket_errors + result.non_2xx
    print(f"   {server.mode:9} {case:5} {result.requests_per_sec:>9,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
          f"p99 {result.p99_ms:6.2f} ms  supervisor CPU {cpu:5.2f} s ({run.cpu_per_1k * 1000:4.1f} ms/1k req)  "
          f"server {run.per_request_us(server_cpu):5.1f} us/req  terminal {run.per_request_us(terminal_cpu):4.1f} us/req  "
          f"load {run.load:.2f}  {run.shown}" + (f"  [{errors} errors]" if errors else ""), flush=True)
    return run


def print_profile(path: Path, top: int = 20) -> None:
    """Hottest functions of a py-spy raw (collapsed stacks) file: inclusive and own samples."""
    if not path.exists():
        print(f"   (no profile written to {path})")
        return
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [re.sub(r"\s*\(([^)]*/)?([^/)]+)\)", r" (\2)", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    if not total:
        print(f"   (profile {path} is empty)")
        return
    print(f"   profile {path.name}: {total} samples of busy supervisor threads")
    print("     inclusive  own    function")
    for frame, count in inclusive.most_common(top):
        print(f"     {100 * count / total:6.1f}%  {100 * own[frame] / total:5.1f}%  {frame[:110]}")


def summarize(results: Results) -> bool:
    print("\nmedians (req/s; supervisor CPU seconds per run, incl. 1 s after wrk; and per 1000 requests):")
    print(f"  {'case':6} {'no-tui req/s':>13} {'dashboard req/s':>16} {'ratio':>6}   "
          f"{'CPU no-tui':>14} {'CPU dashboard':>16}   verdict")
    ok = True
    for case in CASES:
        plain, dash = results.of("no-tui", case), results.of("dashboard", case)
        if not plain or not dash:
            continue
        rps_plain = statistics.median(r.result.requests_per_sec for r in plain)
        rps_dash = statistics.median(r.result.requests_per_sec for r in dash)
        cpu_plain = statistics.median(r.cpu for r in plain)
        cpu_dash = statistics.median(r.cpu for r in dash)
        per_plain = statistics.median(r.cpu_per_1k for r in plain) * 1000
        per_dash = statistics.median(r.cpu_per_1k for r in dash) * 1000
        ratio = rps_dash / rps_plain if rps_plain else 0.0
        verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
        ok = ok and verdict == "PASS"
        print(f"  {case:6} {rps_plain:>13,.0f} {rps_dash:>16,.0f} {ratio:>6.3f}   "
              f"{cpu_plain:>5.2f} s {per_plain:>4.1f} ms {cpu_dash:>7.2f} s {per_dash:>4.1f} ms"
              f"   {verdict} (target: dashboard >= {TARGET_RATIO:.2f}x no-tui)")
        # The two modes of a round run back to back: their ratio is less exposed to the machine's drift.
        paired = [d.result.requests_per_sec / p.result.requests_per_sec for p, d in zip(plain, dash)
                  if p.result.requests_per_sec]
        print(f"  {'':6} ratio within each round: {' '.join(f'{r:.2f}' for r in paired)}"
              f" (median {statistics.median(paired):.2f})")
    return summarize_latency(results) and ok


def summarize_latency(results: Results) -> bool:
    """p50/p99 of both modes per round, the per-round p99 ratios and their median; CPU per request."""
    ok = True
    print("\nlatency per round (ms), dashboard/no-tui p99 ratio; server and terminal CPU per request (us):")
    for case in CASES:
        plain, dash = results.of("no-tui", case), results.of("dashboard", case)
        if not plain or not dash:
            continue
        ratios = []
        for p, d in zip(plain, dash):
            ratio = d.result.p99_ms / p.result.p99_ms if p.result.p99_ms else 0.0
            ratios.append(ratio)
            print(f"  {case:6} round {p.round + 1}: no-tui p50 {p.result.p50_ms:6.2f} p99 {p.result.p99_ms:6.2f}  "
                  f"dashboard p50 {d.result.p50_ms:6.2f} p99 {d.result.p99_ms:6.2f}  p99 ratio {ratio:5.2f}  "
                  f"load {p.load:.2f}/{d.load:.2f}")
        median = statistics.median(ratios)
        verdict = "PASS" if median <= TARGET_P99_RATIO else "MISS"
        ok = ok and verdict == "PASS"
        cpu = {mode: (statistics.median(r.per_request_us(r.server_cpu) for r in runs),
                      statistics.median(r.per_request_us(r.terminal_cpu) for r in runs))
               for mode, runs in (("no-tui", plain), ("dashboard", dash))}
        print(f"  {case:6} median p99 ratio {median:.2f}   {verdict} (target: dashboard p99 <= {TARGET_P99_RATIO}x no-tui)"
              f"   CPU/request: no-tui server {cpu['no-tui'][0]:.1f} + terminal {cpu['no-tui'][1]:.1f} us, "
              f"dashboard server {cpu['dashboard'][0]:.1f} + terminal {cpu['dashboard'][1]:.1f} us")
    return ok


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the `with` blocks, which stop the servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per mode and case (default %(default)s)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk load per run (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load before each run (0 skips)")
    parser.add_argument("--workers", type=int, default=2, help="devserver worker processes (default %(default)s)")
    parser.add_argument("--cases", default=",".join(CASES), help="cases to run (default %(default)s)")
    parser.add_argument("--profile", type=Path, help="py-spy the supervisor in the first round, raw stacks to DIR")
    parser.add_argument("--keep-site", action="store_true", help="keep the temp folder (site, logs, profiles)")
    parser.add_argument("--console-to-file", action="store_true",
                        help="write the --no-tui console log to a file instead of the terminal")
    args = parser.parse_args(argv)
    for tool in ("wrk", "tmux", *(("py-spy",) if args.profile else ())):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := [c for c in cases if c not in CASES]:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    signal.signal(signal.SIGTERM, _terminate)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    load = os.getloadavg()
    print(f"dashboard overhead: devserver --workers {args.workers}, wrk -t2 -c{CONNECTIONS} -d{args.duration}s, "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy; figures are noisy (take ones that matter on a quiet machine)")
    results = Results()
    base = Path(tempfile.mkdtemp(prefix="devserver-dash-bench-"))
    try:
        site = make_site(base)
        logs = base / "logs"
        logs.mkdir()
        for round_ in range(args.rounds):
            order = MODES if round_ % 2 == 0 else MODES[::-1]
            for mode in order:
                print(f"-- round {round_ + 1}, {mode}", flush=True)
                if mode == "dashboard":
                    start = dashboard_server(site, args.workers, base)
                else:
                    start = console_to_file(site, args.workers, logs) if args.console_to_file else \
                        console_server(site, args.workers, base)
                with start as server:
                    for case in cases:
                        profile = args.profile if round_ == 0 else None
                        results.runs.append(measure(server, case, args, profile, round_))
    except BenchError as exc:
        print(f"FAILED: {exc}")
        return 1
    finally:
        if args.keep_site:
            print(f"site and logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    load = os.getloadavg()
    summarize(results)
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
