"""The console in the failing frame (issue 13 item 7): frames kept by the worker that served the failed
request, code run there on the supervisor's request over the control pipe, never over HTTP."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import does_not_block, wait_until

from devserver.debug.failures import FrameStore, run_code
from devserver.debug.tracebacks import report
from devserver.ipc.config import Config
from devserver.ipc.control import Evaluated
from devserver.ipc.events import Event, RequestEvent
from devserver.supervisor.awaited import PendingAnswers
from devserver.supervisor.core import Supervisor


def failing(tag: str) -> BaseException:
    def application(tag: str) -> None:
        weight = len(tag) * 3
        check(tag, weight)

    def check(tag: str, weight: int) -> None:
        doubled = weight * 2
        raise ValueError(f"{tag} refused ({doubled})")

    try:
        application(tag)
    except ValueError as exc:
        return exc
    raise AssertionError("did not raise")


# ------------------------------------------------------------------ in one process


def test_expressions_statements_output_and_errors_in_a_kept_frame() -> None:
    store = FrameStore(limit=3)
    exc = failing("abc")
    store.keep("r1", exc)
    frames = report(exc).frames
    assert [f.function for f in frames][-2:] == ["application", "check"]  # the report's frames are the console's
    raiser, caller = len(frames) - 1, len(frames) - 2
    assert store.evaluate("r1", raiser, "doubled") == Evaluated(0, value="18")
    assert store.evaluate("r1", caller, "weight, tag") == Evaluated(0, value="(9, 'abc')")
    assert store.evaluate("r1", -1, "n = doubled + 1").value == ""  # a statement: no value, as at a prompt
    assert store.evaluate("r1", -1, "n * 2").value == "38"  # ... and its name lasts, in that frame only
    assert store.evaluate("r1", caller, "n").error == "NameError: name 'n' is not defined"
    assert store.evaluate("r1", -1, "[doubled + i for i in range(2)]").value == "[18, 19]"  # locals in scope
    printed = store.evaluate("r1", -1, "print('hello', tag); 1 / 0")
    assert printed.output == "hello abc\n" and printed.error == "ZeroDivisionError: division by zero"
    assert store.evaluate("r1", -1, "1 +").error.startswith("SyntaxError")
    assert store.evaluate("r1", 99, "1").error == f"no frame 99: this failure has {len(frames)}"
    long = run_code("'x' * 100000", {}).value
    assert long.startswith("'xxx") and "..." in long and len(long) <= 4000  # shortened


def test_only_the_last_failures_are_kept() -> None:
    store = FrameStore(limit=3)
    for n in range(5):
        store.keep(f"r{n}", failing(f"t{n}"))
    assert len(store) == 3
    assert store.evaluate("r1", -1, "tag").error == "this failure is no longer kept (a worker keeps its last 3)"
    assert store.evaluate("r2", -1, "tag").value == "'t2'"


def test_answers_match_their_questions_and_a_late_one_finds_nobody() -> None:
    answers = PendingAnswers()
    first, second = answers.expect(), answers.expect()
    answers.resolve(Evaluated(second, value="2"))  # an answer may come before its asker waits
    assert answers.wait(second, 1.0) == Evaluated(second, value="2")
    waited: list[Evaluated | None] = []
    does_not_block(lambda: waited.append(answers.wait(first, 0.05)))  # nobody answers: the wait ends at its deadline
    assert waited == [None]
    answers.resolve(Evaluated(first, value="late"))  # after its deadline: dropped, nothing waits for it
    assert answers.wait(first, 0.0) is None


# ------------------------------------------------------------------ real workers


class Served:
    """A supervisor with real workers (as under the dashboard) and the events they sent."""

    def __init__(self, site: Path, workers: int) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()
        config = Config(host="127.0.0.1", port=0, root=str(site / "html_page"), dynamic=str(site / "dynamic"),
                        workers=workers, reload=False, livereload=False, tui=True).resolved()
        self.supervisor = Supervisor(config, sink=self._sink)
        self.supervisor.start()
        self.port = self.supervisor.config.port

    def _sink(self, batch: list[Event]) -> None:
        with self.lock:
            self.events.extend(batch)

    def get(self, target: str) -> tuple[int, int]:
        """GET on a fresh connection (so SO_REUSEPORT deals it to any worker): status and our port."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", target)
            local = conn.sock.getsockname()[1]
            response = conn.getresponse()
            response.read()
            return response.status, local
        finally:
            conn.close()

    def event_for(self, local: int, timeout: float = 10.0) -> RequestEvent:
        def found() -> list[RequestEvent]:
            with self.lock:
                return [e for e in self.events if isinstance(e, RequestEvent) and e.client.endswith(f":{local}")]

        return wait_until(found, timeout, f"an event for the request from port {local}")[0]

    def fail(self, tag: str) -> RequestEvent:
        status, local = self.get(f"/console_boom.py?{tag}")
        assert status == 500
        return self.event_for(local)


@pytest.fixture
def served(site: Path) -> Iterator[Callable[[int], Served]]:
    started: list[Served] = []

    def start(workers: int) -> Served:
        started.append(Served(site, workers))
        return started[-1]

    yield start
    for server in started:
        server.supervisor.stop()


def test_twenty_evaluations_in_the_right_frames_of_four_workers(served: Callable[[int], Served]) -> None:
    server = served(4)
    by_worker: dict[int, list[tuple[str, RequestEvent]]] = {}
    with ThreadPoolExecutor(4) as pool:
        for round_ in range(25):  # fresh connections, dealt over the workers' sockets by the kernel
            tags = [f"r{round_}w{n}" for n in range(4)]
            for tag, event in zip(tags, pool.map(server.fail, tags)):
                by_worker.setdefault(event.worker_pid, []).append((tag, event))
            if len(by_worker) == 4 and all(len(v) >= 2 for v in by_worker.values()):
                break
    assert len(by_worker) == 4, f"failures landed on {len(by_worker)} workers only"
    # The last two failures of each worker are kept there (each keeps its last 10).
    failures = [failure for kept in by_worker.values() for failure in kept[-2:]]
    right = 0
    for n in range(20):
        tag, event = failures[n % len(failures)]
        assert event.error_report is not None and event.request_id
        frames = event.error_report.frames
        if n % 2:  # the frame that raised
            answer = server.supervisor.evaluate(event.worker_pid, event.request_id, len(frames) - 1,
                                                "(label, doubled, __import__('os').getpid())")
            expected = repr((f"order-{tag}", len(tag) * 6, event.worker_pid))
        else:  # the app's first frame, the one that called it
            answer = server.supervisor.evaluate(event.worker_pid, event.request_id, len(frames) - 2,
                                                "(tag, weight, __import__('os').getpid())")
            expected = repr((tag, len(tag) * 3, event.worker_pid))
        assert answer.error == "" and answer.value == expected, (n, answer, expected)
        right += 1
    assert right == 20


def test_the_oldest_failure_beyond_ten_is_refused_clearly(served: Callable[[int], Served]) -> None:
    server = served(1)
    events = [server.fail(f"old{n}") for n in range(11)]
    first, second = events[0], events[1]
    refused = server.supervisor.evaluate(first.worker_pid, first.request_id, -1, "tag")
    assert refused.error == "this failure is no longer kept (a worker keeps its last 10)" and refused.value == ""
    assert server.supervisor.evaluate(second.worker_pid, second.request_id, -1, "tag").value == "'old1'"
    gone = server.supervisor.evaluate(4_000_000, second.request_id, -1, "tag")
    assert "(pid 4000000) has ended" in gone.error


def test_a_runaway_evaluation_times_out_while_the_worker_serves(served: Callable[[int], Served]) -> None:
    server = served(1)
    failure = server.fail("spin")
    answers: list[Evaluated] = []
    asking = threading.Thread(target=lambda: answers.append(
        server.supervisor.evaluate(failure.worker_pid, failure.request_id, -1, "while True: pass")))
    started = time.monotonic()
    asking.start()
    served_meanwhile = 0
    while asking.is_alive():  # the worker keeps answering, its loop and pool untouched by the evaluation
        assert server.get("/one_k.txt")[0] == 200 and server.get("/echo.py")[0] == 200
        served_meanwhile += 1
    asking.join()
    assert answers[0].error == "timed out after 3 s: interrupted", answers[0]
    assert time.monotonic() - started >= 3 and served_meanwhile >= 5  # (how long past 3 s is not asserted)
    # Interrupted: the frame answers again, in the same worker (nothing was restarted).
    after = server.supervisor.evaluate(failure.worker_pid, failure.request_id, -1, "(label, __import__('os').getpid())")
    assert after.value == repr(("order-spin", failure.worker_pid))
    # The supervisor's own wait is bounded too: a worker that does not answer in time is said to.
    slow = server.supervisor.evaluate(failure.worker_pid, failure.request_id, -1, "while True: pass", timeout=0.5)
    assert slow.error == f"no answer from worker pid {failure.worker_pid} within 0.5 s"
    # A call blocked in C cannot be interrupted: the answer says it goes on, and the worker still serves.
    blocked = server.supervisor.evaluate(failure.worker_pid, failure.request_id, -1, "__import__('time').sleep(60)")
    assert "could not be interrupted" in blocked.error
    assert server.get("/one_k.txt")[0] == 200


INLINE_BOOM = '''\
import threading


def application(environ, start_response):
    thread = threading.current_thread().name
    raise ValueError(f"refused in {thread}")
'''


def test_a_failure_inline_on_the_workers_loop_is_evaluated_in_its_frame_as_one_in_the_pool(
        served: Callable[[int], Served], site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (site / "dynamic" / "inline_boom.py").write_text(INLINE_BOOM)
    monkeypatch.setenv("DEVSERVER_INLINE", "always")  # every call on the loop (worker/inline.py), inherited by workers
    server = served(1)
    status, local = server.get("/inline_boom.py")
    assert status == 500
    failure = server.event_for(local)
    assert failure.error_report is not None and failure.error_report.frames[-1].function == "application"
    answer = server.supervisor.evaluate(failure.worker_pid, failure.request_id, -1, "(thread, environ['PATH_INFO'])")
    assert answer.error == "" and answer.value == repr(("MainThread", ""))  # it ran on the loop's thread
