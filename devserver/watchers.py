"""Which file watchers a supervisor gets: the project's (APP with --app-dir) or the dynamic/root one."""

from __future__ import annotations

from typing import Any

from .projectwatch import ProjectWatcher
from .reload import Watcher


def attach_watchers(supervisor: Any) -> None:
    """Add the file watchers the config asks for to ``supervisor``.

    ``--no-reload`` stops the watching of ``--dynamic``; ``--no-livereload``
    that of ``--root``.  With both, no watcher thread runs at all.
    """
    config = supervisor.config
    if config.app_dir is not None:  # a project APP: its own watcher (which also reads the workers' reports)
        supervisor.watchers.append(ProjectWatcher(supervisor))
    elif config.reload or config.livereload:
        supervisor.watchers.append(Watcher())
