"""Messages from the supervisor to its workers, over each worker's control pipe."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reload:
    """Forget ``modules`` (None: every dynamic module); ``generation`` orders reloads."""

    generation: int
    modules: tuple[str, ...] | None
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PageChanged:
    """Files that open browser pages show changed: ``kind`` is "css" (swap in place) or "reload"."""

    kind: str
    paths: tuple[str, ...]


ControlMessage = Reload | PageChanged
