"""Recent module reloads, and the traceback of the latest one that failed.

One entry per module per failure (see :mod:`devserver.reload.log`): workers
report a module that fails to import on every request that reaches it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from devserver.ipc.events import ReloadEvent
from devserver.kit.safetext import escape_controls
from devserver.reload.log import ReloadFilter, is_reload_all, reload_name
from tui import format as fmt

KEEP = 20


def describe(reload: ReloadEvent, dynamic: str | None = None) -> str:
    """One line: the files concerned and what was reloaded (or that it failed)."""
    names = reload_name(reload, dynamic)
    who = "" if reload.worker_pid is None else f" [pid {reload.worker_pid}]"
    if reload.error:
        first = reload.error.strip().splitlines()[-1] if reload.error.strip() else "error"
        return escape_controls(f"{names}: FAILED {first}{who}", multiline=False)
    if is_reload_all(reload):
        return f"all modules reloaded (R) in {fmt.duration(reload.duration_ms)}"
    modules = len(reload.modules)
    text = f"{names}: {modules} module{'s' if modules != 1 else ''} in {fmt.duration(reload.duration_ms)}{who}"
    return escape_controls(text, multiline=False)


class ReloadsPanel(VerticalScroll):
    """The last :data:`KEEP` reloads, newest first; a failed import shows its traceback."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"reloads--ok", "reloads--failed", "reloads--time"}

    def __init__(self, *, dynamic: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.dynamic = dynamic
        self.reloads: deque[ReloadEvent] = deque(maxlen=KEEP)
        self.filter = ReloadFilter()
        self.can_focus = False

    def compose(self) -> ComposeResult:
        yield Static("No reloads yet.", id="reload-list")
        yield Static(id="reload-error", markup=False)

    def on_mount(self) -> None:
        self.border_title = "Reloads"

    def add(self, reloads: Iterable[ReloadEvent]) -> None:
        """Show new reload events (a failure already shown is not repeated)."""
        news = [reload for reload in reloads if self.filter.admit(reload)]
        if news:
            self.reloads.extend(news)
            self.show()

    def show(self) -> None:
        """Redraw from :attr:`reloads`."""
        if not self.reloads:
            return
        lines = Text()
        time_style = self.get_component_rich_style("reloads--time", partial=True)
        for reload in reversed(self.reloads):
            mark_class = "reloads--failed" if reload.error else "reloads--ok"
            mark = "✗ " if reload.error else "✓ "
            if lines:
                lines.append("\n")
            lines.append(fmt.clock_time(reload.time)[:8] + " ", time_style)
            lines.append(mark, self.get_component_rich_style(mark_class, partial=True))
            lines.append(describe(reload, self.dynamic))
        self.query_one("#reload-list", Static).update(lines)
        latest = self.reloads[-1]
        error = self.query_one("#reload-error", Static)
        error.update(escape_controls(latest.error or ""))
        error.set_class(bool(latest.error), "-failed")
