"""Round trip of one console evaluation (``x`` in the dashboard), and what a runaway costs serving.

A real supervisor with ``--workers`` workers (as under the dashboard) serves
failing requests of an app written to a temporary folder; then
``--evaluations`` expressions are evaluated in those failures' frames
through :meth:`Supervisor.evaluate` (supervisor → worker control pipe →
evaluation thread → event pipe → supervisor), each checked against the
local it reads.  Printed: median, 95th percentile and maximum round trip.

Then one worker's failure runs ``while True: pass`` for its 3 s limit while
a client keeps requesting a static file from that worker: the requests per
second with and without the runaway are printed.  The loop never stops
serving; console code pauses every half millisecond it runs
(framestore._Yielder), so the runaway takes only a share of the GIL.

    python bench/console_roundtrip.py [--workers 4] [--evaluations 500]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devserver.ipc.config import Config
from devserver.ipc.events import Event, RequestEvent
from devserver.supervisor.core import Supervisor

RUNAWAY = "while True: pass"
APP = '''
def application(environ, start_response):
    tag = environ.get("QUERY_STRING", "")
    doubled = len(tag) * 2
    raise ValueError(tag)
'''


def get(port: int, target: str) -> tuple[int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        local = conn.sock.getsockname()[1]
        response = conn.getresponse()
        response.read()
        return response.status, local
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--evaluations", type=int, default=500)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="devserver-console-bench-"))
    (folder / "html_page").mkdir()
    (folder / "html_page" / "one_k.txt").write_bytes(b"x" * 1024)
    (folder / "dynamic").mkdir()
    (folder / "dynamic" / "boom.py").write_text(APP)
    events: list[Event] = []
    lock = threading.Lock()

    def sink(batch: list[Event]) -> None:
        with lock:
            events.extend(batch)

    config = Config(host="127.0.0.1", port=0, root=str(folder / "html_page"), dynamic=str(folder / "dynamic"),
                    workers=args.workers, reload=False, livereload=False, tui=True).resolved()
    supervisor = Supervisor(config, sink)
    supervisor.start()
    port = supervisor.config.port
    try:
        locals_by_port = {}
        for n in range(4 * args.workers):
            tag = "t" * (n + 1)
            status, local = get(port, f"/boom.py?{tag}")
            assert status == 500
            locals_by_port[local] = tag
        deadline = time.monotonic() + 10
        while True:
            with lock:
                failures = [(e, locals_by_port[int(e.client.rsplit(":", 1)[1])]) for e in events
                            if isinstance(e, RequestEvent) and e.status == 500]
            if len(failures) == len(locals_by_port) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        times = []
        for n in range(args.evaluations):
            event, tag = failures[n % len(failures)]
            started = time.perf_counter()
            answer = supervisor.evaluate(event.worker_pid, event.request_id, -1, "doubled")
            times.append((time.perf_counter() - started) * 1000)
            assert answer.value == str(len(tag) * 2), answer
        times.sort()
        workers = len({e.worker_pid for e, _ in failures})
        print(f"{args.evaluations} evaluations over {workers} workers, all right: median "
              f"{statistics.median(times):.2f} ms, p95 {times[int(len(times) * 0.95)]:.2f} ms, max {times[-1]:.2f} ms")

        # A runaway in one worker: that worker's own socket keeps being served (one worker, to be sure).
        supervisor.stop()
        config = Config(host="127.0.0.1", port=0, root=str(folder / "html_page"), dynamic=str(folder / "dynamic"),
                        workers=1, reload=False, livereload=False, tui=True).resolved()
        events.clear()
        supervisor = Supervisor(config, sink)
        supervisor.start()
        port = supervisor.config.port
        get(port, "/boom.py?spin")
        while not any(isinstance(e, RequestEvent) and e.status == 500 for e in list(events)):
            time.sleep(0.02)
        failure = next(e for e in list(events) if isinstance(e, RequestEvent) and e.status == 500)

        def rate(seconds: float) -> float:
            count, until = 0, time.monotonic() + seconds
            while time.monotonic() < until:
                assert get(port, "/one_k.txt")[0] == 200
                count += 1
            return count / seconds

        quiet = rate(2.5)
        answers = []
        asking = threading.Thread(target=lambda: answers.append(
            supervisor.evaluate(failure.worker_pid, failure.request_id, -1, RUNAWAY)))
        asking.start()
        busy = rate(2.5)
        asking.join()
        print(f"static requests/s from one worker, new connection each: {quiet:.0f} quiet, {busy:.0f} during a "
              f"runaway evaluation; its answer: {answers[0].error!r}")
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()
