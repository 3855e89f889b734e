"""Which file watchers a supervisor gets: the project's (APP with --app-dir) or the dynamic/root one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devserver.supervisor.core import Supervisor, Watcher


class _BuiltOnStart:
    """A watcher made when the supervisor starts it, after the workers are forked.

    Its modules (watchfiles, the project rules, the warm restarter) serve the
    supervisor alone: imported after the fork, they delay no worker and no
    worker carries them.
    """

    def __init__(self, build: Callable[[], Watcher]) -> None:
        self._build = build
        self.watcher: Watcher | None = None

    def start(self, supervisor: Supervisor) -> None:
        self.watcher = self._build()
        self.watcher.start(supervisor)

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()


def _project_watcher(supervisor: Supervisor) -> Watcher:
    from devserver.supervisor.projectwatch import ProjectWatcher

    return ProjectWatcher(supervisor)


def _watcher() -> Watcher:
    from devserver.reload.watcher import Watcher

    return Watcher()


def attach_watchers(supervisor: Supervisor) -> None:
    """Add the file watchers the config asks for to ``supervisor``.

    ``--no-reload`` stops the watching of ``--dynamic``; ``--no-livereload``
    that of ``--root``.  With both, no watcher thread runs at all.
    """
    config = supervisor.config
    if config.app_dir is not None:  # a project APP: its own watcher (which also reads the workers' reports)
        supervisor.watchers.append(_BuiltOnStart(lambda: _project_watcher(supervisor)))
    elif config.reload or config.livereload:
        supervisor.watchers.append(_BuiltOnStart(_watcher))
