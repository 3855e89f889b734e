"""Text folded past a screenful: its first lines, what was left out, and the key that shows it all.

A 64 KiB binary body is hundreds of lines of hex: shown whole, it pushes
everything after it out of reach.  Folded, it takes half a screen at most
and says how much more there is; ``b`` in the detail screen unfolds it.
"""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from tui import format as fmt

MIN_LINES = 6  # a fold never shows fewer lines than this, however small the terminal
CHROME_LINES = 8  # the detail screen's own lines (title, tabs, footer, section titles) around a fold
SHARE = 2  # a fold takes at most 1/SHARE of the screen, so that what follows it (and its note) is on screen too
LINE_CELLS = 120  # the width assumed before the widget has one


def fold(text: str, lines: int, cells: int = LINE_CELLS) -> tuple[str, int]:
    """The start of ``text`` that fills ``lines`` screen lines ``cells`` wide at most, and how many lines
    were left out.

    A line longer than ``cells`` counts as the several lines it wraps to, so
    that one huge line (a minified page) is folded too.
    """
    kept: list[str] = []
    used = 0
    all_lines = text.split("\n")
    for index, line in enumerate(all_lines):
        cost = max(1, -(-len(line) // cells))
        if used + cost > lines:
            room = (lines - used) * cells
            if room > 0:
                kept.append(line[:room])
            return "\n".join(kept), len(all_lines) - index
        kept.append(line)
        used += cost
    return text, 0


class FoldedText(Static):
    """A section body that shows a screenful unless ``expanded``; ``text`` is the whole of it."""

    expanded: reactive[bool] = reactive(False, init=False)

    def __init__(self, text: str, *, size: int | None = None, id: str | None = None, classes: str = "") -> None:
        super().__init__(text, id=id, classes=classes, markup=False)
        self.text = text
        self.size_bytes = size
        """The size the fold note names (the body's bytes), else the text's length in characters."""
        self.folded_lines = 0
        """Lines left out right now (0: all shown)."""

    def on_mount(self) -> None:
        self._show()

    def on_resize(self) -> None:
        self._show()

    def watch_expanded(self) -> None:
        self._show()

    def _show(self) -> None:
        lines = max(MIN_LINES, (self.app.size.height - CHROME_LINES) // SHARE)
        cells = self.content_region.width or LINE_CELLS
        shown, left = (self.text, 0) if self.expanded else fold(self.text, lines, cells)
        if left:
            size = fmt.size(self.size_bytes) if self.size_bytes is not None else f"{len(self.text)} characters"
            shown += f"\n… {left} more lines ({size} in all) · b shows everything"
        elif self.expanded and self.text != fold(self.text, lines, cells)[0]:
            shown += "\n· b folds it again"
        self.folded_lines = left
        self.set_class(bool(left), "-folded")
        super().update(shown)
