"""Features that plug into a worker through its hooks (live reload, ...)."""

from __future__ import annotations

from typing import Any


def install(worker: Any) -> None:
    """Attach optional features to ``worker``; each is off when its flag is.

    Live reload (``--no-livereload`` turns it off): the script injected into
    HTML pages, the ``/__devserver__/`` routes and the "page_changed" control
    message the supervisor's watcher sends.
    """
    if worker.config.livereload:
        from . import livereload

        livereload.install(worker)
