"""Which reload events deserve a line, and what to call them.

A module that fails to import fails again on every request that reaches it,
and every worker reports each of those (a ReloadEvent with its traceback).
Shown as they come, 25 requests would push every other reload out of view.
The console log and the dashboard both keep one entry per module per
failure: a worker's report is shown when the module's error differs from
the one already shown, or when the module was reloaded since.
"""

from __future__ import annotations

import os

from devserver.ipc.events import ReloadEvent


def error_key(error: str) -> str:
    """What identifies a failure: the exception line (a traceback's last line).

    A save's compile error and a worker's import traceback of the same file
    end with the same line, and workers' tracebacks differ only above it.
    """
    lines = error.strip().splitlines()
    return lines[-1].strip() if lines else ""


def module_file(dynamic: str | None, module: str) -> str:
    """The file of dynamic module ``module`` relative to its folder: ``name.py`` or ``pkg/__init__.py``."""
    relative = module.replace(".", "/")
    if dynamic and os.path.isdir(os.path.join(dynamic, relative)):
        return relative + "/__init__.py"
    return relative + ".py"


def is_reload_all(event: ReloadEvent) -> bool:
    """The reload of every module (the dashboard's ``R``): no path, no module named."""
    return not event.paths and not event.modules and event.worker_pid is None


def reload_name(event: ReloadEvent, dynamic: str | None) -> str:
    """The files an entry is about: the saved files, or the files of the failing modules."""
    if is_reload_all(event):
        return "all modules"
    if event.paths:
        return ", ".join(os.path.basename(path) for path in event.paths)
    return ", ".join(module_file(dynamic, module) for module in event.modules) or "modules"


class ReloadFilter:
    """Remembers the failure shown for each module; :meth:`admit` says whether an event is news."""

    def __init__(self) -> None:
        self._failing: dict[str, str] = {}

    def admit(self, event: ReloadEvent) -> bool:
        key = error_key(event.error) if event.error else None
        if event.worker_pid is None:  # a save the watcher saw, or `R`: always an entry
            if is_reload_all(event):
                self._failing.clear()
            for module in event.modules:
                if key is None:
                    self._failing.pop(module, None)
                else:
                    self._failing[module] = key
            return True
        if key is None:
            return True
        news = [module for module in event.modules if self._failing.get(module) != key]
        for module in news:
            self._failing[module] = key
        return bool(news)
