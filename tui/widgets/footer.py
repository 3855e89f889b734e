"""The footer: every key of the screen on one line, down to 80 columns.

Textual's footer spaces its keys for wide terminals and scrolls the rest
off the edge; below ``COMPACT_BELOW`` columns this one drops the spacing, and
below ``PALETTE_BELOW`` the ``^p palette`` entry (Ctrl+P still opens it, and
``?`` lists it), so that the screen's own keys, ``q`` last, stay on screen.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

COMPACT_BELOW = 110  # columns
PALETTE_BELOW = 100


class DashboardFooter(Footer):
    """A Footer that fits its keys to the width it is given."""

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width
        self.compact = width < COMPACT_BELOW
        self.show_command_palette = width >= PALETTE_BELOW
