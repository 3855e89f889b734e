"""Which module loader a worker gets, apart from the project machinery so that most workers never import it.

A project APP (``--app-dir``) is loaded by :mod:`devserver.apps.project` (its
freshness stamps, its import graph, the warm-restart rules); every other
start serves ``--dynamic`` with :class:`~devserver.apps.dynamic.DynamicModules`
and has no use for those modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devserver.apps.dynamic import DynamicModules
from devserver.apps.host import WorkerHost

if TYPE_CHECKING:
    from devserver.apps.project import ProjectModules
    from devserver.ipc.config import Config


def modules_for(config: Config, worker: WorkerHost) -> DynamicModules | ProjectModules:
    """The worker's module loader: the project's when APP is a project app."""
    if config.app_dir is None:
        return DynamicModules(config.dynamic, follow_saves=config.reload)
    from devserver.apps.project import ProjectModules  # the supervisor imported it before forking (supervisor._prepare_forks)

    return ProjectModules(config, worker)


def app_key(config: Config) -> tuple[str, str]:
    """(name, attribute) the worker asks its loader for; ("", "") with no APP; a project APP is named whole ("")."""
    if config.app is None:
        return "", ""
    if config.app_dir is not None:
        return config.app, ""  # the project's loader builds it from the whole APP: no attribute of its own
    name, attribute = config.app.split(":", 1)
    return name, attribute
