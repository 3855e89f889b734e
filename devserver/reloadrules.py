"""Which reload strategy a change of a project gets: in place, or a warm restart (and why).

Shared by the supervisor's watcher and the workers' per-request freshness
check, so both take the same decision for the same change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Change:
    """One batch of project changes, as the strategy table sees it."""

    strategy: str  # --reload
    frameworks: frozenset[str]
    modules: tuple[str, ...]
    import_failed: bool


def is_settings(module: str) -> bool:
    return any(part == "settings" or part.startswith("settings_") for part in module.split(".")) \
        or module == os.environ.get("DJANGO_SETTINGS_MODULE")


RESTART_REASONS: tuple[tuple[Callable[[Change], bool], str], ...] = (
    (lambda c: c.strategy == "restart", "--reload=restart"),
    (lambda c: "django" in c.frameworks, "Django keeps URLs, settings and apps in the process"),
    (lambda c: any(map(is_settings, c.modules)), "a settings module changed"),
    (lambda c: c.import_failed, "an import failed part-way: a fresh process drops its half-made state"),
)


def restart_reason(change: Change) -> str | None:
    """Why ``change`` needs a warm restart, or None to reload in place."""
    return next((reason for test, reason in RESTART_REASONS if test(change)), None)
