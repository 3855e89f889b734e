"""The footer: the screen's keys on one line, the most used ones kept when they do not all fit.

Textual's footer spaces its keys for wide terminals and scrolls the rest
off the edge, so that at 80 columns ``o Open`` and ``q Quit`` were lost.
Below ``COMPACT_BELOW`` columns this one drops the spacing, below
``PALETTE_BELOW`` the ``^p palette`` entry (Ctrl+P still opens it, and ``?``
lists it), and if the keys still do not fit it hides them in ``DROP_ORDER``,
least needed first, until they do: the keys left are each whole and on
screen, ``? Help`` (which lists every key) and ``q Quit`` always among them.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

COMPACT_BELOW = 110  # columns
PALETTE_BELOW = 100
MEASURE_AGAIN = 0.05  # seconds before measuring keys that were not laid out yet
DROP_ORDER = ("clear", "reload", "edit", "copy('curl')", "replay", "pause", "tab('request')", "profile", "filter",
              "console", "expand")
"""Actions whose keys go first when the footer is too narrow (a group goes with its first key's action)."""


def units(children: list[Widget]) -> list[tuple[str, list[Widget]]]:
    """The footer's children as (action, widgets): a key, or a key group with the label that follows it."""
    found: list[tuple[str, list[Widget]]] = []
    for child in children:
        if isinstance(child, FooterLabel) and found and isinstance(found[-1][1][0], KeyGroup):
            found[-1][1].append(child)
        elif isinstance(child, KeyGroup):
            first = next(iter(child.query(FooterKey)), None)
            found.append((first.action if first is not None else "", [child]))
        else:
            found.append((child.action if isinstance(child, FooterKey) else "", [child]))
    return found


class DashboardFooter(Footer):
    """A Footer that fits its keys to the width it is given."""

    def __init__(self) -> None:
        super().__init__()
        self._widths: dict[int, int] = {}  # id(child): the cells it takes, measured while it was shown

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width
        compact, palette = width < COMPACT_BELOW, width >= PALETTE_BELOW
        if (compact, palette) != (self.compact, self.show_command_palette):
            self.compact, self.show_command_palette = compact, palette  # new widths: composed and measured again
            self.call_after_refresh(self.recompose)
        else:
            self._drop_to_fit()

    async def recompose(self) -> None:
        self._widths.clear()
        await super().recompose()
        self.call_after_refresh(self._drop_to_fit)  # once the new keys are laid out

    def _drop_to_fit(self) -> None:
        """Show the keys that fit, hiding them in DROP_ORDER until the rest does."""
        found = [(action, widgets) for action, widgets in units(list(self.children))
                 if all(w.is_attached for w in widgets)]
        for _, widgets in found:
            for w in widgets:
                if w.display and w.outer_size.width:
                    self._widths[id(w)] = w.outer_size.width + w.styles.margin.width
        if any(id(w) not in self._widths for _, widgets in found for w in widgets):
            self.set_timer(MEASURE_AGAIN, self._drop_to_fit)  # not laid out yet: measure once it is
            return
        need = sum(self._widths.get(id(w), 0) for _, widgets in found for w in widgets)
        hidden: set[int] = set()
        for action in DROP_ORDER:
            for index, (unit_action, widgets) in enumerate(found):
                if need > self.size.width and unit_action == action:
                    hidden.add(index)
                    need -= sum(self._widths.get(id(w), 0) for w in widgets)
        for index, (_, widgets) in enumerate(found):
            for w in widgets:
                w.display = index not in hidden
