"""The worker's side of the dashboard's console: failures kept with their frames, and code run in them.

When an app raises, the worker keeps the frames of the traceback (from the
app's first frame, as the error report shows them) under the request's id,
for its last ``KEPT`` failures; older ones are dropped.  The dashboard's
console (``x`` in the detail of a failed request) asks the supervisor, which
sends an :class:`~devserver.ipc.control.Evaluate` down this worker's control
pipe; :meth:`Console.on_evaluate` runs the code in a daemon thread, never on
the event loop, and puts the :class:`~devserver.ipc.control.Evaluated` answer on
the worker's event channel.

Nothing here is reachable from HTTP: the only way in is the control pipe,
which only the supervisor holds.  Keeping is off until :func:`serve` is
called (the worker does so under the dashboard), so a server without a
console keeps no frames alive.

While it runs, console code pauses every ``RUN_FOR`` seconds (a trace
function on its thread only), so even a busy loop leaves the GIL to the
threads serving requests most of the time.  A runaway evaluation
(``while True: pass``) is interrupted after ``EVAL_LIMIT`` seconds by an
exception raised in its thread; code blocked inside a C call cannot be
interrupted that way and goes on in its daemon thread (the answer says so)
until it returns or the worker ends.
"""

from __future__ import annotations

import ast
import io
import queue
import reprlib
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import CodeType, FrameType
from typing import TextIO, cast

from devserver.debug.tracebacks import app_frames
from devserver.ipc.control import Evaluate, Evaluated
from devserver.kit import interpreter

KEPT = 10  # failures kept per worker, oldest dropped first
EVAL_LIMIT = 3.0  # seconds an evaluation may run before it is interrupted
INTERRUPT_GRACE = 0.5  # seconds an interrupted evaluation has to unwind before the answer says it runs on
MAX_OUTPUT = 8000  # characters of printed output sent back
MAX_VALUE = 4000  # characters of a value's repr sent back
YIELD_EVERY = 20  # lines (instructions of the typed code itself) between two looks at the clock
RUN_FOR, PAUSE = 0.0005, 0.0005  # seconds console code runs, then waits so that the worker's threads get the GIL


class EvaluationTimeout(BaseException):
    """Raised inside an evaluation that ran past ``EVAL_LIMIT`` (BaseException: ``except Exception`` lets it by)."""


@dataclass(slots=True)
class _Failure:
    frames: list[FrameType]
    namespaces: dict[int, dict[str, object]] = field(default_factory=dict)  # per frame, made at its first use

    def namespace(self, index: int) -> dict[str, object]:
        """The frame's globals and locals in one dict, kept across evaluations (``x = 1`` then ``x``).

        One dict, not globals and locals apart: a comprehension or lambda typed
        in the console then sees the frame's locals.  Assignments stay in the
        console's namespace; the module's globals are not changed by them.
        """
        ns = self.namespaces.get(index)
        if ns is None:
            frame = self.frames[index]
            ns = {**frame.f_globals, **frame.f_locals}
            self.namespaces[index] = ns
        return ns


class FrameStore:
    """The frames of the last ``limit`` failures, by request id (thread-safe)."""

    def __init__(self, limit: int = KEPT) -> None:
        self.limit = limit
        self._failures: OrderedDict[str, _Failure] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, request_id: str, exc: BaseException) -> None:
        if not request_id:
            return
        frames = [frame for frame, _ in app_frames(exc)[0]]
        with self._lock:
            self._failures[request_id] = _Failure(frames)
            while len(self._failures) > self.limit:
                self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)

    def failure(self, request_id: str) -> _Failure | None:
        with self._lock:
            return self._failures.get(request_id)

    def evaluate(self, request_id: str, index: int, source: str) -> Evaluated:
        """Run ``source`` in frame ``index`` of that failure, in the calling thread."""
        failure = self.failure(request_id)
        if failure is None:
            return Evaluated(0, error=f"this failure is no longer kept (a worker keeps its last {self.limit})")
        if not -len(failure.frames) <= index < len(failure.frames):
            return Evaluated(0, error=f"no frame {index}: this failure has {len(failure.frames)}")
        with self._lock:  # two evaluations at once in a new frame share one namespace
            namespace = failure.namespace(index % len(failure.frames))
        return run_code(source, namespace)


_value_repr = reprlib.Repr()
_value_repr.maxstring = _value_repr.maxother = MAX_VALUE
_value_repr.maxlist = _value_repr.maxtuple = _value_repr.maxset = _value_repr.maxdict = 50
_value_repr.maxlevel = 4


def run_code(source: str, namespace: dict[str, object]) -> Evaluated:
    """Execute ``source`` in ``namespace``; a last line that is an expression is evaluated for its value.

    What it prints to stdout (from this thread) is captured; the answer holds
    that output, then the shortened repr of the value (none for statements
    and for None, as the Python prompt does) or the last line of the error.
    """
    output = io.StringIO()
    value, error = "", ""
    with _captured(output):
        try:
            statements, expression = _compiled(source)
            sys.settrace(_Yielder())  # this thread only
            try:
                if statements is not None:
                    exec(statements, namespace)  # the console's job; reachable from the dashboard only (control pipe)
                result = eval(expression, namespace) if expression is not None else None
            finally:
                sys.settrace(None)
            if result is not None:
                value = _shorten(_value_repr.repr(result), MAX_VALUE)
        except EvaluationTimeout:
            error = "interrupted: it ran past the time limit"
        except BaseException as exc:  # noqa: BLE001 - whatever the code raises is its answer, even SystemExit
            error = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return Evaluated(0, output=_shorten(output.getvalue(), MAX_OUTPUT), value=value, error=error)


class _Yielder:
    """A trace function that pauses console code ``PAUSE`` seconds every ``RUN_FOR`` seconds it runs.

    A busy loop typed in the console would otherwise hold the GIL for whole
    switch intervals, and the requests the worker serves meanwhile would
    crawl.  Only the console's thread is traced.
    """

    __slots__ = ("lines", "since")

    def __init__(self) -> None:
        self.lines = 0
        self.since = time.monotonic()

    def __call__(self, frame: FrameType, event: str, arg: object) -> _Yielder:
        if event == "call" and frame.f_code.co_filename == "<console>":
            frame.f_trace_opcodes = True  # `while True: pass` has no line events, only its jump
        self.lines += 1
        if self.lines >= YIELD_EVERY:
            self.lines = 0
            now = time.monotonic()
            if now - self.since > RUN_FOR:
                time.sleep(PAUSE)  # a real wait: sleep(0) gives the GIL back and takes it again at once
                self.since = time.monotonic()
        return self


def _compiled(source: str) -> tuple[CodeType | None, CodeType | None]:
    """The statements of ``source``, and its last line apart when that is an expression (its value is shown,
    as at a Python prompt: ``print(x); x`` prints, then shows x)."""
    tree = ast.parse(source, "<console>", "exec")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    statements = compile(tree, "<console>", "exec") if tree.body else None
    expression = compile(ast.Expression(last.value), "<console>", "eval") if isinstance(last, ast.Expr) else None
    return statements, expression


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


class _PerThreadStdout:
    """sys.stdout that sends an evaluating thread's writes to its buffer, and every other thread's on as before."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self.local = threading.local()

    def write(self, text: str) -> int:
        buffer: io.StringIO | None = getattr(self.local, "buffer", None)
        return buffer.write(text) if buffer is not None else self.target.write(text)

    def flush(self) -> None:
        if getattr(self.local, "buffer", None) is None:
            self.target.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self.target, name)


_stdout_lock = threading.Lock()


class _captured:
    """Route this thread's prints to ``buffer`` while it evaluates (other threads' prints are untouched)."""

    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    def __enter__(self) -> None:
        with _stdout_lock:
            if not isinstance(sys.stdout, _PerThreadStdout):
                sys.stdout = cast(TextIO, _PerThreadStdout(sys.stdout))  # writes as the stream it wraps
            self.router = cast(_PerThreadStdout, sys.stdout)
        self.router.local.buffer = self.buffer

    def __exit__(self, *exc: object) -> None:
        self.router.local.buffer = None


Reply = Callable[[list[Evaluated]], None]
"""Puts a batch on the worker's event channel (EventChannel.put_nowait); may raise queue.Full."""


class Console:
    """Answers the supervisor's :class:`Evaluate` messages from a worker's kept failures."""

    def __init__(self, store: FrameStore, reply: Reply, limit: float = EVAL_LIMIT) -> None:
        self.store = store
        self.reply = reply
        self.limit = limit

    def on_evaluate(self, message: Evaluate) -> None:
        """Called on the worker's loop: the evaluation and its wait run in threads of their own."""
        threading.Thread(target=self._answer, args=(message,), name="devserver-console", daemon=True).start()

    def _run(self, message: Evaluate, answers: list[Evaluated]) -> None:
        try:
            answers.append(self.store.evaluate(message.request_id, message.frame, message.source))
        except EvaluationTimeout:  # arrived just outside run_code's own handler
            answers.append(Evaluated(0, error="interrupted"))

    def _answer(self, message: Evaluate) -> None:
        answers: list[Evaluated] = []
        runner = threading.Thread(target=self._run, args=(message, answers), name="devserver-console-eval",
                                  daemon=True)
        runner.start()
        runner.join(self.limit)
        interrupted = runner.is_alive() and runner.ident is not None \
            and interpreter.interrupt_thread(runner.ident, EvaluationTimeout)
        if interrupted:
            runner.join(INTERRUPT_GRACE)
        if not answers:
            why = "blocked in a C call?" if interrupted else "this Python cannot interrupt a thread"
            answer = Evaluated(0, error=f"timed out after {self.limit:g} s; it could not be interrupted and goes "
                                        f"on in a background thread of the worker ({why})")
        elif interrupted:
            answer = replace(answers[0], error=f"timed out after {self.limit:g} s: interrupted")
        else:
            answer = answers[0]
        try:
            self.reply([replace(answer, serial=message.serial)])
        except queue.Full:
            pass  # the supervisor's wait ends in its own timeout message


_store: FrameStore | None = None


def keep(request_id: str, exc: BaseException) -> None:
    """Keep the frames of the failure ``exc`` of request ``request_id`` (nothing unless :func:`serve` was called)."""
    if _store is not None:
        _store.keep(request_id, exc)


def serve(reply: Reply, limit: int = KEPT) -> Callable[[Evaluate], None]:
    """Start keeping this process's failures; the handler of :class:`Evaluate` messages."""
    global _store
    _store = FrameStore(limit)
    return Console(_store, reply).on_evaluate
