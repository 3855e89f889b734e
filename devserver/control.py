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
class CompileFailure:
    """A module of the dynamic folder that does not compile: what open pages show over themselves."""

    file: str  # as the user knows it: relative to the working folder when inside it
    line: int | None
    message: str


@dataclass(frozen=True, slots=True)
class PageChanged:
    """Files that open browser pages show changed: ``kind`` is "css" (swap in place), "reload",
    or "failed" (modules changed but one does not compile: ``failure`` says which and why)."""

    kind: str
    paths: tuple[str, ...]
    failure: CompileFailure | None = None


ControlMessage = Reload | PageChanged
