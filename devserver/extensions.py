"""Features that plug into a worker through its hooks (live reload, ...)."""

from __future__ import annotations

from typing import Any


def install(worker: Any) -> None:
    """Attach optional features to ``worker``; each is off when its flag is."""
