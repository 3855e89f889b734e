"""What logging a request costs the supervisor (and recording it the worker), per request.

Every request a worker answers becomes an event: the worker builds and
encodes it (``Worker.record``, ``worker/eventqueue.py``), the supervisor
decodes it, keeps it in the read-only store and hands it to its sink (the
plain console line, JSON lines or the dashboard).  On a 2-core machine the
supervisor's CPU competes with the workers', so it is part of the cost of
every request.  Three measures, each a fixed count of requests (never a
timed run), so that the figures are per request:

``server`` (default)
    the real server (``devserver asgihello:app --workers 2``, output to a
    log file as in ``bench/rounds.py``, or a pseudo-terminal with ``--tty``)
    is sent a warm-up, then N and then 2N GETs over ``--conns`` keep-alive
    connections; after each, once the log holds every request's line, the
    supervisor's and the workers' CPU time (utime + stime from /proc) is
    read.  Printed: µs per request of each run, and the difference of the
    two runs over N, which leaves out what a run costs whatever its length.

``callgrind``
    the same server with one worker under valgrind, counting only the
    supervisor (and, apart, the worker) while N and then 2N requests are
    logged: instructions per request, which a busy machine does not move.

``ingest``
    in this process, without a server: ``--events`` events shaped like a
    hello request's are recorded as a worker records them (its values
    function, EventSink, EventChannel's encoding, into memory), then
    delivered as the supervisor delivers them (``Supervisor._receive`` on
    the recorded bytes: decoding, the store, the sink), the console log
    writing to /dev/null (as a terminal with ``--tty``), after 500 events
    of warm-up.  Under callgrind (valgrind installed) only those two steps
    are counted: instructions per event of each side; else (or with
    ``--timed``) CPU time.

    PYTHONPATH=. python bench/supervisor_cost.py [--measure server|callgrind|ingest] [--log text,json,dashboard]
        [--requests 2000] [--conns 50] [--events 5000] [--batch 50] [--tty] [--checkout PATH]

``--log dashboard`` (ingest only) delivers to a sink that keeps the batch, as
the dashboard's feed does before Textual draws it: what the store and the
decoding cost the dashboard.  ``--checkout`` measures another checkout of
devserver (``git worktree add /tmp/base main``) the same way, for a before
and after.  Everything listens on 127.0.0.1; every process started here is
stopped by its pid.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from common import (
    REPO_DIR,
    BenchError,
    RunningServer,
    ServerSpec,
    _wait_ready,
    cpu_seconds,
    descendants,
    free_port,
    load_average,
    make_site,
    start_server,
    stop_server,
)
from instructions import SUMMARY, load

# How a log line of a request is told apart from the others, per --log: a text line has "<duration>ms ",
# a JSON line the request's status.
REQUEST_LINE = {"text": re.compile(rb"\dms "), "json": re.compile(rb'"status": \d')}
WARMUP = 500
DEADLINE = 300.0  # seconds the log may take to show every request's line (valgrind is slow)


# -- server ---------------------------------------------------------------------------------------------------


def request_lines(log: Path, fmt: str) -> int:
    try:
        return len(REQUEST_LINE[fmt].findall(log.read_bytes()))
    except OSError:
        return 0


def wait_logged(server: RunningServer, fmt: str, count: int) -> None:
    """Wait (bounded) until ``count`` request lines are in the server's log."""
    deadline = time.monotonic() + DEADLINE
    while request_lines(server.log, fmt) < count:
        if time.monotonic() > deadline or server.proc.poll() is not None:
            raise BenchError(f"{request_lines(server.log, fmt)} of {count} request lines logged:\n"
                             + server.log_tail())
        time.sleep(0.05)


def server_spec(site_dir: Path, checkout: Path, fmt: str, tty: bool, workers: int,
                wrap: tuple[str, ...] = ()) -> ServerSpec:
    site_dir.mkdir()
    site = make_site(site_dir)
    port = free_port()
    argv = (*wrap, sys.executable, "-m", "devserver", "asgihello:app", "--port", str(port), "--workers", str(workers),
            "--no-tui", "--log-format", fmt, "--root", str(site.html_page), "--dynamic", str(site.dynamic),
            "--header-timeout", "600", "--keepalive-timeout", "600")
    env = {"PYTHONPATH": str(checkout.resolve()), "PYTHONHASHSEED": "0", "COLUMNS": "160"}
    return ServerSpec(f"devserver-{fmt}", argv, port, {"hello": "/"}, "/", cwd=site.dynamic, env=env, tty=tty)


def measure_server(checkout: Path, fmt: str, tty: bool, requests: int, conns: int, work: Path) -> None:
    spec = server_spec(work / f"site-{fmt}-{len(list(work.iterdir()))}", checkout, fmt, tty, workers=2)
    server = start_server(spec, work)
    try:
        _wait_ready(server, 60)
        logged = request_lines(server.log, fmt)
        load(spec.port, "/", WARMUP, conns)
        logged += WARMUP
        wait_logged(server, fmt, logged)
        per_run = []
        for count in (requests, 2 * requests):
            workers = [pid for pid, _ in descendants(server.proc.pid)]
            before = cpu_seconds([server.proc.pid]), cpu_seconds(workers)
            load(spec.port, "/", count, conns)
            logged += count
            wait_logged(server, fmt, logged)
            after = cpu_seconds([server.proc.pid]), cpu_seconds(workers)
            per_run.append((after[0] - before[0], after[1] - before[1]))
            print(f"| {fmt} | {count} | {per_run[-1][0] / count * 1e6:.1f} | {per_run[-1][1] / count * 1e6:.1f} |",
                  flush=True)
        (sup_n, work_n), (sup_2n, work_2n) = per_run
        print(f"| {fmt} | 2N − N | {(sup_2n - sup_n) / requests * 1e6:.1f} | {(work_2n - work_n) / requests * 1e6:.1f} |",
              flush=True)
    finally:
        stop_server(server)


# -- callgrind ------------------------------------------------------------------------------------------------


def callgrind(pid: int, *command: str) -> None:
    subprocess.run(["callgrind_control", *command, str(pid)], capture_output=True, check=False)


def dumped(out: str, pid: int, seen: set[str]) -> int:
    """Instructions in the dumps of ``pid`` not counted before (``seen`` grows)."""
    files = sorted(set(glob.glob(f"{out}.{pid}.*")) - seen)
    seen.update(files)
    return sum(int(m.group(1)) for f in files for m in SUMMARY.finditer(Path(f).read_text(errors="replace")))


def measure_callgrind(checkout: Path, fmt: str, tty: bool, requests: int, conns: int, work: Path,
                      threads: bool = False) -> None:
    """``threads``: a dump per thread (kept with --keep, to tell the event thread's instructions from the others')."""
    out = str(work / f"callgrind-{fmt}-{len(list(work.iterdir()))}")
    wrap = ("valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
            f"--callgrind-out-file={out}.%p", *(("--separate-threads=yes",) if threads else ()))
    spec = server_spec(work / f"site-{fmt}-{len(list(work.iterdir()))}", checkout, fmt, tty, workers=1, wrap=wrap)
    server = start_server(spec, work)
    try:
        _wait_ready(server, 180)
        logged = request_lines(server.log, fmt)
        load(spec.port, "/", WARMUP, conns)
        logged += WARMUP
        wait_logged(server, fmt, logged)
        pids = [server.proc.pid, *(pid for pid, _ in descendants(server.proc.pid))]  # supervisor, worker
        for pid in pids:
            callgrind(pid, "-i", "on")
        seen: set[str] = set()
        counts = []
        for count in (requests, 2 * requests):
            load(spec.port, "/", count, conns)
            logged += count
            wait_logged(server, fmt, logged)
            for pid in pids:
                callgrind(pid, "-d")
            counts.append([dumped(out, pid, seen) for pid in pids])
            print(f"| {fmt} | {count} | {counts[-1][0] / count:,.0f} | {counts[-1][1] / count:,.0f} |", flush=True)
        print(f"| {fmt} | 2N − N | {(counts[1][0] - counts[0][0]) / requests:,.0f} | "
              f"{(counts[1][1] - counts[0][1]) / requests:,.0f} |", flush=True)
    finally:
        stop_server(server)


# -- ingest ---------------------------------------------------------------------------------------------------


class TerminalNull(io.TextIOWrapper):
    """/dev/null that says it is a terminal: the console log then paints its lines as on one."""

    def isatty(self) -> bool:
        return True


class RecordedPipe:
    """The supervisor's end of an event pipe, replaying what a worker's EventChannel sent."""

    def __init__(self, sent: list[bytes]) -> None:
        self.sent = sent
        self.closed = False

    def recv_bytes(self) -> bytes:
        return self.sent.pop(0)

    def recv(self) -> object:
        import pickle

        return pickle.loads(self.sent.pop(0))


class Recorder:
    """A worker's event pipe (its EventWriter) that keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_bytes(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        pass


def hello_exchange(number: int, detail: bool) -> tuple[SimpleNamespace, dict[str, object]]:
    """What a worker's record() reads for one hello request: the exchange's fields and the keyword values."""
    request = SimpleNamespace(method="GET", target="/", version="HTTP/1.1", request_line="",
                              headers=[("host", "127.0.0.1:8000"), ("user-agent", "bench"), ("accept", "*/*")])
    exchange = SimpleNamespace(request=request, status=200, sent=158, preview=b"", traceback=None, error=None,
                               report=None, inside=None)
    keywords: dict[str, object] = dict(
        time=time.time(), worker_pid=4242, client=f"127.0.0.1:{40000 + number % 50}", duration_ms=0.35 + number % 7 / 10,
        request_headers=tuple(request.headers) if detail else (),
        response_headers=(("content-type", "text/plain; charset=utf-8"), ("content-length", "14"),
                          ("date", "Mon, 07 Dec 2026 10:00:00 GMT")) if detail else (),
        request_body=None, response_body=None, logs=(), request_id="", websocket=None, log_sources=())
    return exchange, keywords


WARM_EVENTS = 500  # recorded and delivered before counting: imports, caches, the store's first thousand


def record_events(shapes: list[tuple[SimpleNamespace, dict[str, object]]], batch: int) -> list[bytes]:
    """Hello events (``hello_exchange``'s) recorded and encoded as a worker does, in batches of ``batch``."""
    from devserver.ipc.events import RequestEvent
    from devserver.worker.eventqueue import EventChannel, EventSink
    from devserver.worker.process import _request_values

    recorder = Recorder()
    channel = EventChannel(recorder, 1_000_000)  # type: ignore[arg-type]
    sink = EventSink(channel, 4242)
    for exchange, keywords in shapes:
        sink.emit_values(RequestEvent, _request_values(exchange, **keywords))
        if len(sink) >= batch:
            sink.flush()
    sink.flush()
    channel.close()
    return recorder.sent


class Delivery:
    """The supervisor's receiving path and its sink, fed recorded batches (the console log writes to /dev/null)."""

    def __init__(self, fmt: str, tty: bool) -> None:
        from devserver.ipc.config import Config
        from devserver.supervisor.core import Supervisor

        stream = TerminalNull(open(os.devnull, "wb")) if tty else open(os.devnull, "w")
        self.log = None
        if fmt == "dashboard":
            kept: list[object] = []
            sink = kept.extend  # the dashboard's feed keeps the batch for Textual's next frame
        else:
            from devserver.console.log import ConsoleLog

            self.log = sink = ConsoleLog(stream, log_format=fmt)
        self.supervisor = Supervisor(Config(tui=fmt == "dashboard"), sink)  # type: ignore[arg-type]

    def __call__(self, sent: list[bytes]) -> None:
        pipe = RecordedPipe(list(sent))
        while pipe.sent:
            self.supervisor._receive(pipe)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while self.log is not None and self.log.output._queue and time.monotonic() < deadline:
            time.sleep(0.01)  # the writer thread's writes belong to these events


def ingest_once(fmt: str, tty: bool, events: int, batch: int, counted: bool) -> None:
    """Record ``events`` as a worker does, then deliver them as the supervisor does; between the steps a mark:
    a callgrind dump (``counted``, the parent reads the instructions) or the CPU time, printed."""
    import gc

    import devserver.console.log  # noqa: F401 - imported before the freeze, as the supervisor imports it

    gc.freeze()  # as the supervisor before its workers: what was imported is never collected again

    def mark() -> None:
        if counted:
            callgrind(os.getpid(), "-d")
        else:
            print(f"cpu {time.process_time()}", flush=True)

    detail = fmt != "text"
    warm = record_events([hello_exchange(number, detail) for number in range(WARM_EVENTS)], batch)
    shapes = [hello_exchange(number, detail) for number in range(WARM_EVENTS, WARM_EVENTS + events)]
    if counted:
        callgrind(os.getpid(), "-i", "on")
    mark()
    sent = record_events(shapes, batch)
    mark()  # 1: the worker's side
    deliver = Delivery(fmt, tty)
    deliver(warm)
    mark()  # 2: the warm-up
    deliver(sent)
    mark()  # 3: the supervisor's side


def measure_ingest(checkout: Path, fmt: str, tty: bool, events: int, batch: int, timed: bool) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(checkout.resolve()), str(Path(__file__).parent))),
           "PYTHONHASHSEED": "0"}
    counted = shutil.which("valgrind") is not None and not timed
    argv = [sys.executable, __file__, "--ingest-once", "--log", fmt, "--events", str(events), "--batch", str(batch),
            *(["--tty"] if tty else []), *([] if counted else ["--timed"])]
    with tempfile.TemporaryDirectory(prefix="devserver-ingest-") as tmp:
        if counted:
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={tmp}/out", *argv]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise BenchError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
        if counted:
            steps = [float(SUMMARY.findall(Path(f"{tmp}/out.{n}").read_text())[0]) for n in (1, 2, 3, 4)]
        else:
            marks = [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("cpu ")]
            steps = [(later - earlier) * 1e6 for earlier, later in zip(marks, marks[1:])]
            steps.insert(0, 0.0)
    worker, supervisor = steps[1] / events, steps[3] / events
    unit, shown = ("instructions", ",.0f") if counted else ("µs CPU", ".1f")
    print(f"| {checkout} | {fmt}{' (tty)' if tty else ''} | {worker:{shown}} | {supervisor:{shown}} | {unit} |",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", choices=("server", "callgrind", "ingest"), default="server")
    parser.add_argument("--log", default="text,json", help="comma-separated: text, json, dashboard (ingest only)")
    parser.add_argument("--requests", type=int, help="N: requests of the first run, the second has 2N "
                        "(default 20000; 2000 under callgrind)")
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--events", type=int, default=5000, help="ingest: events counted")
    parser.add_argument("--batch", type=int, default=50, help="ingest: events per batch, as a worker flushes them")
    parser.add_argument("--tty", action="store_true", help="the log on a terminal (colours)")
    parser.add_argument("--checkout", type=Path, action="append", help="a devserver checkout (default this one; "
                        "repeat to compare)")
    parser.add_argument("--timed", action="store_true", help="ingest: CPU time, not instructions (quicker, noisy)")
    parser.add_argument("--keep", type=Path, help="server, callgrind: keep the logs and callgrind's dumps in this "
                        "(new) folder, for callgrind_annotate")
    parser.add_argument("--ingest-once", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    formats = opts.log.split(",")
    if opts.ingest_once:
        ingest_once(formats[0], opts.tty, opts.events, opts.batch, counted=not opts.timed)
        return 0
    checkouts = opts.checkout or [REPO_DIR]
    requests = opts.requests or (2000 if opts.measure == "callgrind" else 20000)
    if "dashboard" in formats and opts.measure != "ingest":
        parser.error("--log dashboard is measured with --measure ingest only")
    if opts.measure == "callgrind" and shutil.which("callgrind_control") is None:
        parser.error("--measure callgrind needs valgrind (apt install valgrind)")
    print(f"load average before: {load_average()}")
    if opts.measure == "ingest":
        print(f"\n{opts.events} hello events in batches of {opts.batch}, after {WARM_EVENTS} uncounted; per event\n")
        print("| checkout | log | worker: record + encode | supervisor: receive + store + sink | unit |")
        print("| --- | --- | ---: | ---: | --- |")
        for checkout in checkouts:
            for fmt in formats:
                measure_ingest(checkout, fmt, opts.tty, opts.events, opts.batch, opts.timed)
    else:
        unit = "instructions" if opts.measure == "callgrind" else "µs CPU"
        if opts.keep is not None:
            opts.keep.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix="devserver-supcost-") as scratch:
            tmp = str(opts.keep or scratch)
            for checkout in checkouts:
                print(f"\n{checkout}: asgihello:app, {opts.conns} keep-alive connections, "
                      f"{'1 worker under callgrind' if opts.measure == 'callgrind' else '2 workers'}"
                      f"{', log on a terminal' if opts.tty else ', log to a file'}\n")
                print(f"| log | requests | supervisor {unit}/request | worker(s) {unit}/request |")
                print("| --- | ---: | ---: | ---: |")
                for fmt in formats:
                    if opts.measure == "callgrind":
                        measure_callgrind(checkout, fmt, opts.tty, requests, opts.conns, Path(tmp), opts.keep is not None)
                    else:
                        measure_server(checkout, fmt, opts.tty, requests, opts.conns, Path(tmp))
    print(f"\nload average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
