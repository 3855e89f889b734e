"""Where a request's microseconds go: devserver under wrk, sampled by py-spy, split into stages.

1. devserver runs the hello-world app (as APP ``hello:application`` by
   default, ``--script`` for ``/hello.py``) with ``--workers N`` and its console
   log going to a file, and wrk loads it (``-c50``, keep-alive).
2. Unprofiled, the server's CPU time per request is measured from
   /proc/PID/stat over its whole process tree.
3. Profiled: ``py-spy record --native --subprocesses`` samples every process
   of the tree; samples waiting in epoll, poll, a lock or a sleep are idle
   and dropped; each remaining sample is put in the first stage whose
   marker its stack contains (the table below, outermost stage first).
4. Each stage's share of the busy samples times the unprofiled CPU per
   request gives its microseconds per request.

    python bench/profile_request.py [--script] [--seconds 15] [--rate 200] [--raw PATH]

Needs py-spy (``pip install py-spy``; root or ptrace permission) and wrk.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import servers
from common import HOST, ServerSpec, cpu_seconds, free_port, make_site, process_tree, run_wrk, running

# (stage, markers).  A supervisor sample, or one inside the app call, goes to the first of those stages
# one of whose markers appears anywhere in its stack: the supervisor's work is told apart first, then
# what runs inside the app call.  Any other worker sample goes to the stage of the innermost frame that
# carries a marker: the response's send() runs under ThreadPool._deliver, and the pool submit under
# Worker.try_sync, and each belongs to its own stage, not to the frame that called it.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("supervisor: console log", ("ConsoleLog",)),
    ("supervisor: receive events (unpickle)", ("Supervisor._read_events", "Supervisor._receive")),
    ("supervisor: other", ("SUPERVISOR",)),
    ("app (hello world itself)", ("application (hello.py", "application (/")),
    ("app (Flask and Jinja)", ("flask/", "jinja2/", "werkzeug/", "Flask.", "(flaskapp.py")),
    ("live reload script added to HTML (html_transform)", ("inject (", "plain_html (")),
    ("accept and connection setup/teardown", ("_accept_connection", "connection_made", "connection_lost",
                                              "Connection.__init__", "_SelectorTransport.__init__",
                                              "_call_connection_lost", "Connection.close", "_SelectorTransport.close",
                                              "_SelectorSocketTransport.__init__")),
    ("environ", ("build_environ",)),
    ("WSGI call wrapper (AppCall, start_response)", ("AppCall.", "ErrorStream")),
    ("event recording (RequestEvent, batch, pipe)", ("Worker.record", "EventSink", "EventChannel",
                                                     "RequestEvent", "_ForkingPickler", "_send_bytes")),
    ("routing (files-win lookup, script split, load)", ("Router.route", "Worker.try_sync", "resolve (",
                                                        "script_route", "Worker._load", "DynamicModules.",
                                                        "Worker.catch_up")),
    ("response (head, framing, socket send)", ("Connection.send", "response_head", "Connection.end",
                                               "_SelectorSocketTransport.write", "Connection.begin")),
    ("thread hand-off (pool submit, wake-up, deliver)", ("ThreadPool.", "call_soon_threadsafe", "_write_to_self",
                                                         "_read_from_self", "_process_self_data",
                                                         "SimpleQueue")),
    ("tasks and coroutines (create_task, _serve, handle)", ("create_task", "task_step", "Connection._serve",
                                                            "Worker.handle", "serve_app", "Connection._kick")),
    ("parse (httptools, Request, Exchange)", ("RequestParser", "Connection._on_", "Exchange.__init__")),
    ("socket read (recv, data_received)", ("_read_ready",)),
    ("timers (sweep, flush tick, pool watch, status)", ("_tick_", "_watch", "TimerHandle", "call_later")),
    ("event loop (select, scheduling)", ("_run_once", "run_forever")),
)
OUTER = ("supervisor", "app ", "live reload")  # stages matched anywhere in a stack, outermost first
IDLE_LEAVES = ("epoll_wait", "poll (libc", "clock_nanosleep", "pthread_cond_wait", "pthread_cond_timedwait",
               "sem_wait", "sem_timedwait", "PyThread_acquire_lock_timed", "select (libc", "accept4 (libc",
               "nanosleep", "futex")


def _busy(frames: Sequence[str]) -> bool:
    tail = ";".join(frames[-4:])
    return not any(leaf in tail for leaf in IDLE_LEAVES)


def classify(raw: str, supervisor_pid: int) -> tuple[collections.Counter[str], int]:
    """Busy samples per stage from py-spy's raw (collapsed) output."""
    stages: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if not _busy(frames):
            continue
        n = int(count)
        busy += n
        in_worker = any(f.startswith("process ") for f in frames[1:3])
        text = stack if in_worker else stack + ";SUPERVISOR"
        stage = _outer_stage(text, in_worker) or (_inner_stage(frames) if in_worker else None)
        stages[stage or ("other (worker)" if in_worker else "supervisor: other")] += n
    return stages, busy


def _outer_stage(stack: str, in_worker: bool) -> str | None:
    for stage, markers in STAGES:
        if stage.startswith(OUTER) and stage.startswith("supervisor") == (not in_worker) \
                and any(m in stack for m in markers):
            return stage
    return None


def _inner_stage(frames: Sequence[str]) -> str | None:
    for frame in reversed(frames):
        for stage, markers in STAGES:
            if not stage.startswith(OUTER) and any(m in frame for m in markers):
                return stage
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", action="store_true", help="serve /hello.py instead of the APP hello:application")
    parser.add_argument("--flask", action="store_true", help="the Flask template app (APP flaskapp:app) instead")
    parser.add_argument("--close", action="store_true", help="send Connection: close (a connection per request)")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of profiling (default %(default)s)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    opts = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        parser.error("py-spy is not installed (pip install py-spy)")
    base = Path(tempfile.mkdtemp(prefix="devserver-profile-"))
    try:
        site = make_site(base)
        logs = base / "logs"
        logs.mkdir()
        build = servers.devserver_flask if opts.flask else servers.devserver_script if opts.script \
            else servers.devserver_app
        spec: ServerSpec = build(site, free_port(), opts.workers)
        url = spec.url("flask" if opts.flask else "hello")
        headers = ("Connection: close",) if opts.close else ()
        with running(spec, logs) as server:
            run_wrk(url, opts.conns, 2, headers=headers)
            pids = process_tree(server.proc.pid)
            before = cpu_seconds(pids)
            plain = run_wrk(url, opts.conns, 8, headers=headers)
            cpu_us = (cpu_seconds(pids) - before) * 1e6 / plain.requests
            raw_path = opts.raw or base / "pyspy.txt"
            wrk = subprocess.Popen(["wrk", "-t2", f"-c{opts.conns}", f"-d{opts.seconds + 4}s",
                                    *(arg for h in headers for arg in ("-H", h)), url], stdout=subprocess.DEVNULL)
            try:
                time.sleep(1)  # let the load reach its steady state before sampling
                subprocess.run(["py-spy", "record", "--native", "--subprocesses", "-p", str(server.proc.pid),
                                "-d", str(opts.seconds), "-r", str(opts.rate), "--format", "raw", "-o",
                                str(raw_path)], check=True, capture_output=True, timeout=opts.seconds + 120)
            finally:
                wrk.wait(opts.seconds + 60)
            stages, busy = classify(raw_path.read_text(), server.proc.pid)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{spec.name} ({url.replace(HOST, 'host')}), {opts.workers} workers, wrk -c{opts.conns}"
          f"{' with Connection: close' if opts.close else ''}: "
          f"{plain.requests_per_sec:,.0f} req/s unprofiled, {cpu_us:.1f} µs server CPU per request "
          f"(all processes); {busy} busy samples")
    print()
    print("| stage | share of busy samples | µs per request |")
    print("| --- | ---: | ---: |")
    order = [name for name, _ in STAGES] + ["other (worker)"]
    for name in sorted(stages, key=lambda s: (s.startswith("supervisor"), order.index(s) if s in order else 99)):
        share = stages[name] / busy if busy else 0.0
        print(f"| {name} | {share:.1%} | {share * cpu_us:.1f} |")
    print(f"| total | 100% | {cpu_us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
