"""The dashboard's memory stays bounded however many requests it has shown.

A headless :class:`tui.app.DashboardApp` (``run_test``, 160x48, default
config: 10 000 log rows) is fed synthetic events through ``feed`` in
batches of ``--batch`` (default 1 000), the way the supervisor's event
thread calls it (from the app's own loop here), about 10 000 at a time, and
allowed to drain them (at most 20 000 wait, so nothing overflows).  Each request event carries
its own strings (target, headers, body preview), like an unpickled one;
every 50th is a 500 with a traceback and a rich error report (frames,
source lines, locals).  Bodies are recorded as the workers record them: each
response body (and every POST's request body) is written to a real bounded
spool (devserver.debug.capture.BodyStore, in a temporary folder) and the event
carries its BodyRecord, so the figures include what recorded bodies cost the
dashboard (the bytes stay on disk, bounded by the store).  A log line goes with every batch and
a reload event with every tenth, so the server log and reloads panel are
exercised too.

After 10 000 events and at checkpoints up to ``--total`` (default 1 000 000)
the process RSS and tracemalloc's current size are printed (after a
``gc.collect()``), with the ratio of the last to the 10 000 one.  Target:
about the same (ratio close to 1).  At 10 000 the log has only just filled,
so the ratio to the 100 000 checkpoint (every store has been replaced a few
times) and the growth over the last interval are printed too: bounded
memory shows as growth near zero.  What still grows slowly after 100 000
are bounded caches filling up (rich's cell-width LRU, the server log's 500
lines, one per 1 000 requests here, and its 1 024-line render cache).

    python bench/dashboard_memory.py [--total 1000000] [--batch 1000] [--no-tracemalloc]

Tracemalloc slows allocation down; ``--no-tracemalloc`` measures RSS only,
faster.  1 000 000 events take about 1.5 minutes on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))  # run from a checkout without installing, too

from devserver.debug.capture import BodyRecorder, BodyStore
from devserver.ipc.config import Config
from devserver.ipc.events import (
    BodyRecord,
    Event,
    LogEvent,
    ReloadEvent,
    RequestEvent,
    WorkerEvent,
    WorkerStatus,
)
from devserver.ipc.reports import ErrorReport, Frame
from tui.app import DashboardApp

FIRST_CHECKPOINT = 10_000
WARM = 100_000  # by then every bounded store and cache has been through a few replacements
PIDS = (41001, 41002)
TRACEBACK = "".join(
    f'  File "/srv/site/dynamic/app_{n}.py", line {10 + n}, in handler_{n}\n    result = step_{n}(environ)\n'
    for n in range(6)
)


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def mib(count: int) -> str:
    return f"{count / 1024 / 1024:8.1f} MiB"


def recorded(store: BodyStore, data: bytes) -> BodyRecord | None:
    recorder = BodyRecorder(1024 * 1024)
    recorder.feed(data)
    return recorder.record(store)


def error_report(i: int) -> ErrorReport:
    frames = tuple(
        Frame(f"/srv/site/dynamic/app_{n}.py", 10 + n, f"handler_{n}",
              tuple((10 + n + k, f"    result_{k} = step_{n}(environ, {i})") for k in range(-3, 4)),
              (("environ", f"{{'PATH_INFO': '/app/items/{i}', ...}}"), ("password", "********"), ("n", str(n))))
        for n in range(6)
    )
    return ErrorReport(f"RuntimeError: failure {i}", frames, 3, "GET", f"/app/items/{i}", (("Host", "x"),))


def request_event(i: int, now: float, store: BodyStore) -> RequestEvent:
    """A plausible request with strings of its own (as unpickling would give) and recorded bodies."""
    failed = i % 50 == 49
    status = 500 if failed else (404 if i % 10 == 7 else 200)
    return RequestEvent(
        time=now,
        worker_pid=PIDS[i % 2],
        client=f"127.0.0.1:{40000 + i % 20000}",
        method="POST" if i % 5 == 0 else "GET",
        target=f"/app/items/{i}?page={i % 13}&sort=name",
        http_version="HTTP/1.1",
        status=status,
        bytes_sent=200 + i % 5000,
        duration_ms=0.2 + (i % 97) / 10,
        request_headers=(
            ("Host", "127.0.0.1:8899"),
            ("User-Agent", f"bench-client/{i % 7}.0"),
            ("Accept", "text/html,application/json;q=0.9"),
            ("X-Request-Id", f"req-{i:012d}"),
            ("Cookie", f"session={i * 7919:x}; theme=dark"),
        ),
        response_headers=(
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(200 + i % 5000)),
        ),
        body_preview=f'{{"item": {i}, "name": "thing {i}"}}'.encode() if i % 5 == 0 else b"",
        traceback=f"Traceback (most recent call last):\n{TRACEBACK}RuntimeError: failure {i}\n" if failed else None,
        request_body=recorded(store, f'{{"item": {i}, "name": "thing {i}"}}'.encode()) if i % 5 == 0 else None,
        response_body=recorded(store, f"<html><body><h1>item {i}</h1>{'x' * (i % 300)}</body></html>".encode()),
        error_report=error_report(i) if failed else None,
    )


def batch_of(start: int, size: int, number: int, store: BodyStore) -> list[Event]:
    """``size`` request events numbered from ``start``, and a log line (and every tenth batch a reload)."""
    now = time.time()
    events: list[Event] = [request_event(i, now, store) for i in range(start, start + size)]
    events.append(LogEvent(now, PIDS[number % 2], f"application log line {number}: handled batch"))
    if number % 10 == 9:
        events.append(ReloadEvent(now, (f"/srv/site/dynamic/app_{number % 6}.py",), (f"app_{number % 6}",), 3.5,
                                  error=None if number % 20 else f"Traceback ...\nSyntaxError: batch {number}\n"))
    if number % 20 == 0:
        events.extend(WorkerStatus(now, pid, start, 3, 30_000_000) for pid in PIDS)
    return events


async def run(total: int, batch: int, checkpoints: list[int], trace: bool) -> list[tuple[int, int, int, float]]:
    """Feed ``total`` request events; return (fed, rss, traced, seconds) at each checkpoint."""
    app = DashboardApp(Config(workers=2), started=time.time())
    rows: list[tuple[int, int, int, float]] = []
    spool = tempfile.TemporaryDirectory(prefix="devserver-bench-bodies-")
    store = BodyStore(spool.name, Config().body_store)
    async with app.run_test(size=(160, 48)) as pilot:
        stats = app.main.query_one("#stats").stats  # type: ignore[attr-defined]
        now = time.time()
        app.feed([WorkerEvent(now, pid, "started", index) for index, pid in enumerate(PIDS)])
        fed = 0
        number = 0
        started = time.monotonic()
        pending = list(checkpoints)
        while fed < total:
            # Feed up to about one drain's worth (the app's buffer holds 20 000), then let it drain.
            for _ in range(max(1, FIRST_CHECKPOINT // batch)):
                size = min(batch, total - fed)
                if size <= 0 or (pending and fed >= pending[0]):
                    break
                app.feed(batch_of(fed, size, number, store))
                fed += size
                number += 1
            deadline = time.monotonic() + 60
            while stats.total < fed:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not drain: {stats.total} of {fed} shown")
                await pilot.pause(0.01)
            if pending and fed >= pending[0]:
                pending.pop(0)
                await pilot.pause(0.2)  # let a redraw happen with the new rows
                gc.collect()
                traced = tracemalloc.get_traced_memory()[0] if trace else 0
                rss = rss_bytes()
                seconds = time.monotonic() - started
                rows.append((fed, rss, traced, seconds))
                log = app.main.request_log
                print(f"{fed:>10,} events  RSS {mib(rss)}  tracemalloc {mib(traced) if trace else '       -'}  "
                      f"log rows {log.total_count:,}  drains {app.drain_count:,}  {seconds:6.1f} s", flush=True)
        dropped = stats.dropped
        await pilot.press("q")
    store.close()
    spool.cleanup()
    if dropped:
        print(f"note: the app's buffer overflowed by {dropped:,} events (counted as dropped)")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=1_000_000, help="request events to feed (default %(default)s)")
    parser.add_argument("--batch", type=int, default=1_000, help="events per feed() call (default %(default)s)")
    parser.add_argument("--no-tracemalloc", action="store_true", help="RSS only (faster)")
    args = parser.parse_args(argv)
    if args.total < FIRST_CHECKPOINT:
        parser.error(f"--total must be at least {FIRST_CHECKPOINT}")
    checkpoints = sorted({FIRST_CHECKPOINT, *(c for c in (50_000, WARM, 200_000, 500_000, 1_000_000) if c < args.total),
                          args.total})
    trace = not args.no_tracemalloc
    if trace:
        tracemalloc.start()
    print(f"dashboard memory: {args.total:,} request events in batches of {args.batch:,}, "
          f"tracemalloc {'on' if trace else 'off'}, pid {os.getpid()}", flush=True)
    rows = asyncio.run(run(args.total, args.batch, checkpoints, trace))
    first, last = rows[0], rows[-1]
    print(f"\nafter {first[0]:,}: RSS {mib(first[1]).strip()}, tracemalloc {mib(first[2]).strip() if trace else '-'}")
    print(f"after {last[0]:,}: RSS {mib(last[1]).strip()}, tracemalloc {mib(last[2]).strip() if trace else '-'}")
    print(f"ratio {last[0]:,} / {first[0]:,}: RSS {last[1] / first[1]:.2f}"
          + (f", tracemalloc {last[2] / first[2]:.2f}" if trace and first[2] else "")
          + f"  (fed {last[0]:,} events in {last[3]:.0f} s)")
    warm = next((row for row in rows if row[0] >= WARM), None)
    if warm is not None and warm is not last:
        # At 10 000 the log has just filled: nothing was replaced yet, so the first figure is low.
        print(f"ratio {last[0]:,} / {warm[0]:,} (after warm-up): RSS {last[1] / warm[1]:.2f}"
              + (f", tracemalloc {last[2] / warm[2]:.2f}" if trace and warm[2] else ""))
    if len(rows) >= 2 and rows[-2][0] >= WARM:  # before the warm-up the growth says nothing
        (n0, r0, t0, _), (n1, r1, t1, _) = rows[-2], rows[-1]
        per = 100_000 / (n1 - n0)
        print(f"growth over the last {n1 - n0:,} events, per 100 000: RSS {(r1 - r0) * per / 2**20:+.2f} MiB"
              + (f", tracemalloc {(t1 - t0) * per / 2**20:+.2f} MiB" if trace else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
