"""``x`` in the detail of a failed request: a Python prompt in the frames of that failure.

The code runs in the worker process that served the request, which keeps
the frames of its last failures (devserver.debug.failures); the question goes
through the supervisor and that worker's control pipe, never over HTTP.
Each frame has a namespace of its own that lasts while the failure is kept,
so ``x = 1`` then ``x`` works.  Everything shown comes from the app (values,
what it printed), so it is shown with control characters escaped.
"""

from __future__ import annotations

import os
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static

from devserver.ipc.control import Evaluated
from devserver.ipc.events import RequestEvent
from devserver.kit.safetext import escape_controls
from tui.control import Control

PROMPT = ">>> "
MAX_ENTRIES = 500  # transcript entries kept on screen


def frame_label(filename: str, lineno: int, function: str) -> str:
    return escape_controls(f"{function}  {os.path.basename(filename)}:{lineno}  ({filename})", multiline=False)


def answer_text(answer: Evaluated) -> str:
    """What the prompt shows for an answer: the printed output, then the value or the error line."""
    parts = [answer.output.rstrip("\n")] if answer.output else []
    if answer.error:
        parts.append(f"! {answer.error}")
    elif answer.value:
        parts.append(answer.value)
    return escape_controls("\n".join(parts))


def has_console(request: RequestEvent) -> bool:
    """True for a request whose app raised (an error report) in a worker that keeps such failures."""
    return request.error_report is not None and bool(request.error_report.frames) and bool(request.request_id)


class ConsoleScreen(Screen[None]):
    """Frames of the failure (pick one), the transcript, and the prompt."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back"),
        Binding("ctrl+up", "frame(-1)", "Older frame", tooltip="Evaluate in the frame that called this one"),
        Binding("ctrl+down", "frame(1)", "Newer frame", tooltip="Evaluate in the frame this one called"),
    ]

    def __init__(self, request: RequestEvent, control: Control | None) -> None:
        super().__init__()
        assert request.error_report is not None
        self.request = request
        self.control = control
        self.frames = request.error_report.frames
        self.frame = len(self.frames) - 1  # the frame that raised
        self.transcript: list[str] = []
        self.pending = 0  # evaluations asked and not answered yet

    def compose(self) -> ComposeResult:
        r = self.request
        report = r.error_report
        assert report is not None
        title = (f"Console in worker pid {r.worker_pid}, failure of {r.method} {r.target}: {report.exception}")
        yield Static(escape_controls(title, multiline=False), id="console-title", markup=False)
        frames = OptionList(*(frame_label(f.filename, f.lineno, f.function) for f in self.frames), id="console-frames")
        frames.border_title = "Frames (newest last; Tab here and Enter picks one)"
        yield frames
        with VerticalScroll(id="console-scroll"):
            yield Static("", id="console-log", markup=False)
        yield Input(placeholder="a Python expression or statement, run in the frame above", id="console-input")
        yield Footer()

    def on_mount(self) -> None:
        self.title = escape_controls(f"Console: {self.request.method} {self.request.target}", multiline=False)
        self._show_frame()
        self.query_one("#console-input", Input).focus()

    def _show_frame(self) -> None:
        frames = self.query_one("#console-frames", OptionList)
        frames.highlighted = self.frame
        f = self.frames[self.frame]
        self.query_one("#console-input", Input).placeholder = (
            escape_controls(f"Python in {f.function} (line {f.lineno}); Enter runs it", multiline=False))

    def action_frame(self, step: int) -> None:
        self.frame = max(0, min(len(self.frames) - 1, self.frame + step))
        self._show_frame()

    @on(OptionList.OptionSelected, "#console-frames")
    def _frame_chosen(self, event: OptionList.OptionSelected) -> None:
        self.frame = event.option_index
        self._show_frame()
        self.query_one("#console-input", Input).focus()

    @on(Input.Submitted, "#console-input")
    def _submitted(self, event: Input.Submitted) -> None:
        source = event.value
        if not source.strip():
            return
        event.input.value = ""
        f = self.frames[self.frame]
        self._append(escape_controls(f"[{f.function}] {PROMPT}{source}"))
        if self.control is None:
            self._append("! no server attached")
            return
        self._waiting(+1)
        self._evaluate(self.control, self.frame, source)

    def _waiting(self, change: int) -> None:
        self.pending += change
        scroll = self.query_one("#console-scroll", VerticalScroll)
        scroll.border_subtitle = f"evaluating {self.pending} in the worker …" if self.pending else ""

    @work(thread=True, exit_on_error=False, group="console")
    def _evaluate(self, control: Control, frame: int, source: str) -> None:
        try:
            answer = control.evaluate(self.request.worker_pid, self.request.request_id, frame, source)
        except Exception as exc:  # noqa: BLE001 - the supervisor failing must not take the dashboard with it
            answer = Evaluated(0, error=f"the server could not ask its worker: {exc}")
        self.app.call_from_thread(self._answered, answer)

    def _answered(self, answer: Evaluated) -> None:
        self._waiting(-1)
        text = answer_text(answer)  # nothing for a statement that printed nothing, as at a Python prompt
        if text:
            self._append(text)

    def _append(self, text: str) -> None:
        self.transcript.append(text)
        del self.transcript[:-MAX_ENTRIES]
        self.query_one("#console-log", Static).update("\n".join(self.transcript))
        self.query_one("#console-scroll", VerticalScroll).scroll_end(animate=False)
