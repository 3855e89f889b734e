"""What an idle devserver costs: CPU and wake-ups per second of every process, at rest.

    python bench/idle.py [--seconds 30] [--repo PATH]

Starts ``devserver --no-tui`` and then the dashboard (under tmux, as a
terminal user would), waits until each is listening, serves one request,
then measures for ``--seconds`` with no traffic: CPU from /proc/PID/stat
(utime+stime) and context switches from /proc/PID/status, for the
supervisor and each worker.  ``--repo`` measures another checkout (for a
before/after).  Only 127.0.0.1 is used; every process is stopped by pid.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
LISTENING = re.compile(r"http://127\.0\.0\.1:([1-9][0-9]*)/")


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def named_children(pid: int) -> dict[str, int]:
    """The workers (and multiprocessing's resource tracker) of a supervisor, by a readable name."""
    named = {}
    for number, child in enumerate(sorted(children(pid))):
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        named["tracker" if b"resource_tracker" in command else f"child {number}"] = child
    return named


def sample(pid: int) -> tuple[float, int]:
    """(CPU seconds, context switches) of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    status = Path(f"/proc/{pid}/status").read_text()
    switches = sum(int(m) for m in re.findall(r"(?:non)?voluntary_ctxt_switches:\s+(\d+)", status))
    # Threads switch too: count every task of the process.
    for task in os.listdir(f"/proc/{pid}/task"):
        if int(task) != pid:
            text = Path(f"/proc/{pid}/task/{task}/status").read_text()
            switches += sum(int(m) for m in re.findall(r"(?:non)?voluntary_ctxt_switches:\s+(\d+)", text))
    return cpu, switches


def measure(pids: dict[str, int], seconds: float) -> dict[str, tuple[float, float]]:
    before = {name: sample(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)  # the measurement window itself: nothing is being waited for
    elapsed = time.monotonic() - started
    result = {}
    for name, pid in pids.items():
        cpu, switches = sample(pid)
        result[name] = (100 * (cpu - before[name][0]) / elapsed, (switches - before[name][1]) / elapsed)
    return result


def site() -> Path:
    base = Path(tempfile.mkdtemp(prefix="devserver-idle-"))
    (base / "html_page").mkdir()
    (base / "html_page" / "index.html").write_text("<!doctype html><html><body>idle</body></html>\n")
    (base / "dynamic").mkdir()
    return base


def wait_port(read_line, deadline: float) -> int:
    while time.monotonic() < deadline:
        line = read_line()
        match = LISTENING.search(line or "")
        if match:
            return int(match.group(1))
    raise SystemExit("devserver did not start")


def report(title: str, figures: dict[str, tuple[float, float]]) -> None:
    print(f"\n{title}")
    print(f"{'process':<14}{'CPU %':>8}{'wake-ups/s':>12}")
    for name, (cpu, switches) in figures.items():
        print(f"{name:<14}{cpu:>8.2f}{switches:>12.1f}")


def plain(repo: Path, base: Path, seconds: float, env: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "devserver", "--no-tui", "--port", "0"], cwd=base, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        port = wait_port(proc.stdout.readline, time.monotonic() + 30)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        pids = {"supervisor": proc.pid}
        pids.update(named_children(proc.pid))
        report(f"--no-tui, at rest for {seconds:.0f} s", measure(pids, seconds))
    finally:
        stop(proc.pid)
        proc.wait(10)


def dashboard(repo: Path, base: Path, seconds: float, env: dict[str, str], settle: float) -> None:
    if shutil.which("tmux") is None:
        print("\n(dashboard: tmux not found, skipped)")
        return
    session = f"idle{os.getpid()}"
    pythonpath = env.get("PYTHONPATH", "")
    command = f"cd {base} && PYTHONPATH={pythonpath} {sys.executable} -m devserver --port 0"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", command], check=True, env=env)
    try:
        deadline = time.monotonic() + 30

        def screen() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

        port = wait_port(screen, deadline)
        while True:  # the header shows the URL as soon as the socket is bound; workers come up after
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        pane = int(subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                                  capture_output=True, text=True).stdout.split()[0])
        candidates = [pane, *children(pane)]  # the shell may have exec'd python itself
        supervisor = next(pid for pid in candidates if b"devserver" in Path(f"/proc/{pid}/cmdline").read_bytes())
        pids = {"dashboard": supervisor}
        pids.update(named_children(supervisor))
        if settle:
            # The traffic sparkline covers the last minute: until that request has scrolled out of
            # it, the panel redraws every second.  "At rest" starts after that.
            report(f"dashboard, the first {settle:.0f} s after a request", measure(pids, settle))
        report(f"dashboard (supervisor and UI in one process), at rest for {seconds:.0f} s", measure(pids, seconds))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def stop(pid: int) -> None:
    for child in children(pid):
        try:
            os.kill(child, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=62.0,
                        help="seconds between the dashboard's last request and the measurement (also reported)")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(args.repo.resolve()))
    base = site()
    print(f"repo {args.repo.resolve()}; load average {os.getloadavg()[0]:.2f}")
    plain(args.repo, base, args.seconds, env)
    dashboard(args.repo, base, args.seconds, env, args.settle)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
