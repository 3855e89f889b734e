"""The worker's thread pool for WSGI calls: few hot threads, more only when needed.

Why not ``loop.run_in_executor`` with a ThreadPoolExecutor: profiling a
hello-world app showed the hop costing as much as the rest of the request.
Two things made it dear: every completion wrote to the loop's self-pipe, and
with 32 threads as many app calls ran at once as there were clients, all
fighting the loop thread for the GIL.  Here completions are handed back in
batches with one wake-up, and the pool starts small and adds a thread only
when a call has waited in line (a slow app, ``time.sleep(5)``, then gets its
own thread while fast calls keep flowing), up to the configured maximum.
A call also waits in line when the threads are busy computing (a CPU-bound
app under load): a thread added then only fights the others for the GIL, so
one is added only when no thread took a call for a while, that is when the
threads are blocked, not busy.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import TypeVar, TypeVarTuple

from devserver.worker.inline import InlinePolicy

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
# (result, error), called on the loop; in the queue each call's types are erased: its callback matches its function.
Done = Callable[..., None]
Job = tuple[float, Done, Callable[..., object], tuple[object, ...]]  # (submitted at, done, fn, args)
GROW_AFTER = 0.005  # seconds a call may wait for a thread before another is started
IDLE_EXIT = 30.0  # seconds an extra thread lingers without work


class ThreadPool:
    """Runs blocking calls off the event loop; results come back as asyncio futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop, base: int, maximum: int, name: str = "wsgi") -> None:
        self.loop = loop
        self.base = max(1, min(base, maximum))
        self.maximum = maximum
        self.name = name
        self.inline = InlinePolicy(loop)  # the WSGI routes quick enough to be called on the loop instead (inline.py)
        self._jobs: SimpleQueue[Job | None] = SimpleQueue()
        # Loop callbacks from the threads, run in the order posted: results and the writes of streamed bodies.
        self._done: deque[tuple[Callable[..., None], tuple[object, ...]]] = deque()
        self._lock = threading.Lock()
        self._wake_pending = False
        self._threads = 0
        self._idle = 0
        self._waiting: deque[float] = deque()  # submit times of calls no thread has taken yet
        self._watching: asyncio.TimerHandle | None = None
        self._pending: list[Job] = []  # not yet handed over
        self._taken = 0  # calls the threads have taken so far: _watch tells stuck threads from busy ones
        self._taken_at_watch = -1
        # No thread yet: _hand_over starts them as calls come (up to base at once), so a worker's start
        # does not wait for four threads to be scheduled before it can accept.

    def submit(self, fn: Callable[[*Ts], T], *args: *Ts) -> asyncio.Future[T]:
        """Run ``fn(*args)`` in a pool thread (call from the loop thread); its result as a future."""
        future: asyncio.Future[T] = self.loop.create_future()

        def settle(result: T, error: BaseException | None) -> None:
            if future.cancelled():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        self.call(settle, fn, *args)
        return future

    def call(self, done: Callable[[T, BaseException | None], None], fn: Callable[[*Ts], T], *args: *Ts) -> None:
        """Run ``fn(*args)`` in a pool thread (call from the loop thread), then ``done(result, error)`` on the loop.

        The request path uses this form: no future, no task to wake, one
        callback run by the batch that delivers the result.
        """
        self.inline.in_pool += 1
        self._pending.append((time.monotonic(), done, fn, args))
        if len(self._pending) == 1:
            self.loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        """Give the pool the calls made during one loop iteration, together.

        Handing each over at once made a thread wake while the loop went on
        reading other connections: the loop's next recv() let the thread take
        the GIL, and each request then cost a dozen futex calls as the two
        traded it.  Handed over after the reads, the calls run while the loop
        waits in epoll.
        """
        pending, self._pending = self._pending, []
        for job in pending:
            with self._lock:
                self._waiting.append(job[0])
                idle = self._idle
            self._jobs.put(job)
            if idle == 0 and self._threads < self.base:
                self._start_thread()
        if self._watching is None:
            self._watching = self.loop.call_later(GROW_AFTER, self._watch)

    def _watch(self) -> None:
        """While calls wait: add a thread if the oldest waited too long and no thread took a call since the last look.

        Idle, nothing runs.
        """
        self._watching = None
        with self._lock:
            oldest = self._waiting[0] if self._waiting else None
            taken = self._taken
        if oldest is None:
            return
        stuck = taken == self._taken_at_watch
        self._taken_at_watch = taken
        if stuck and time.monotonic() - oldest > GROW_AFTER and self._threads < self.maximum:
            self._start_thread()
        self._watching = self.loop.call_later(GROW_AFTER, self._watch)

    def _start_thread(self) -> None:
        with self._lock:
            if self._threads >= self.maximum:
                return
            self._threads += 1
            number = self._threads
        threading.Thread(target=self._run, name=f"{self.name}-{number}", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
                extra = self._threads > self.base
            try:
                job = self._jobs.get(timeout=IDLE_EXIT) if extra else self._jobs.get()
            except Empty:
                with self._lock:
                    self._idle -= 1
                    if self._threads > self.base:
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                if job is not None and self._waiting:
                    self._waiting.popleft()
                    self._taken += 1
            if job is None:
                with self._lock:
                    self._threads -= 1
                return
            _, done, fn, args = job
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's callback
                result, error = None, exc
            if not self.post(self._answered, done, result, error):
                return  # the loop is closed: the worker is exiting

    def _answered(self, done: Done, result: object, error: BaseException | None) -> None:
        """A call's result, on the loop: one call fewer in flight (the inline policy asks), then its callback."""
        self.inline.in_pool -= 1
        done(result, error)

    def post(self, fn: Callable[[*Ts], None], *args: *Ts) -> bool:
        """Run ``fn(*args)`` on the loop, after what this pool posted before (call from any thread).

        A thread that streams a body posts its writes here rather than by
        ``call_soon_threadsafe``: they share the one wake-up of the batch
        they fall in, and run in order with the results.  False when the
        loop is closed.
        """
        self._done.append((fn, args))
        with self._lock:
            if self._wake_pending:
                return True  # the loop will take this one with the batch it is already coming for
            self._wake_pending = True
        try:
            self.loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:
            return False
        return True

    def _deliver(self) -> None:
        with self._lock:
            self._wake_pending = False
        while self._done:
            fn, args = self._done.popleft()
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - one broken callback must not strand the rest of the batch
                self.loop.call_exception_handler({"message": "thread pool callback failed", "exception": exc})
