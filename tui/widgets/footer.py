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

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width
        self.compact = width < COMPACT_BELOW
        self.show_command_palette = width >= PALETTE_BELOW
        self._refit()

    async def recompose(self) -> None:
        await super().recompose()
        self._refit()

    def _refit(self) -> None:
        """Show every key, then, once they are laid out, hide what does not fit."""
        for child in self.children:
            child.display = True
        self.call_after_refresh(self._drop_to_fit)

    def _drop_to_fit(self) -> None:
        found = [(action, widgets) for action, widgets in units(list(self.children))
                 if all(w.is_attached for w in widgets)]
        width = {id(w): w.outer_size.width + w.styles.margin.width for _, ws in found for w in ws}
        need = sum(width.values())
        for action in DROP_ORDER:
            if need <= self.size.width:
                return
            for unit_action, widgets in found:
                if unit_action == action:
                    for widget in widgets:
                        widget.display = False
                        need -= width[id(widget)]
