"""Which reload strategy a change of a project gets: in place, or a warm restart (and why).

Shared by the supervisor's watcher and the workers' per-request freshness
check, so both take the same decision for the same change.  Two kinds of
project files never need the app rebuilt: assets (stylesheets, scripts,
images, fonts: the browser fetches them again, no Python process is
touched), and templates read by a template engine devserver knows
(:mod:`devserver.apps.templatecache`: their caches are cleared in place, also
under Django, as its own runserver does).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from devserver.kit.frozen import record


@record
class Change:
    """One batch of project changes, as the strategy table sees it."""

    strategy: str  # --reload
    frameworks: frozenset[str]
    modules: tuple[str, ...]
    import_failed: bool
    only_templates: bool = False  # nothing but template files changed: their engines' caches are cleared


# Files an app serves to browsers as they are: a save reaches open pages (swapped, fetched again or reloaded)
# and never rebuilds the app or restarts a worker, even when the app itself serves them (Flask's static/).
ASSET_SUFFIXES = (".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico",
                  ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp4", ".webm", ".mp3", ".ogg", ".wav")


def is_asset(path: str) -> bool:
    return path.lower().endswith(ASSET_SUFFIXES)


def is_settings(module: str) -> bool:
    return any(part == "settings" or part.startswith("settings_") for part in module.split(".")) \
        or module == os.environ.get("DJANGO_SETTINGS_MODULE")


RESTART_REASONS: tuple[tuple[Callable[[Change], bool], str], ...] = (
    (lambda c: c.strategy == "restart", "--reload=restart"),
    (lambda c: "django" in c.frameworks and not c.only_templates, "Django keeps URLs, settings and apps in the process"),
    (lambda c: any(map(is_settings, c.modules)), "a settings module changed"),
    (lambda c: c.import_failed, "an import failed part-way: a fresh process drops its half-made state"),
)


def restart_reason(change: Change) -> str | None:
    """Why ``change`` needs a warm restart, or None to reload in place."""
    return next((reason for test, reason in RESTART_REASONS if test(change)), None)
