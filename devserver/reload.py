"""Hot reload: the supervisor's watcher (filled in by the reload feature)."""

from __future__ import annotations

from typing import Any


def attach_watchers(supervisor: Any) -> None:
    """Add the file watchers the config asks for to ``supervisor``."""
