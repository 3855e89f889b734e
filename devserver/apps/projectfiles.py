"""Which files belong to the project being served (APP with --app-dir).

A file is the project's when it lies under the project folder and not in
a virtualenv (a folder holding ``pyvenv.cfg``, or the running interpreter's
``sys.prefix``), ``site-packages``, or a
tool's folder (``.git``, ``node_modules``, ``__pycache__``, ...).  The
worker uses these rules to know which modules to purge on reload; the
watcher to know which changes matter; the command line to tell the
project's modules from the third-party ones a warm template preloads.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import sys
from dataclasses import dataclass

from devserver.reload.ignored import IGNORED_DIRS, IGNORED_NAME

PACKAGE_DIRS = frozenset({"site-packages", "dist-packages"})
# The running interpreter's environment, whatever it is called and even without a pyvenv.cfg (conda, a --copies
# build): a project that holds it never owns its files.
ENVIRONMENTS = frozenset(os.path.realpath(prefix) for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix})
# Files apps write at run time: their change is never a reason to reload.
WRITTEN_BY_APPS = ("*.sqlite3", "*.sqlite", "*.db", "*.db-journal", "*.db-wal", "*.log", "*.pid")


@dataclass(frozen=True, slots=True)
class ProjectCheck:
    """What the command line learnt by importing APP once."""

    folder: str
    preload: tuple[str, ...]


@functools.lru_cache(maxsize=4096)
def _real_dir(directory: str) -> str:
    return os.path.realpath(directory)


@functools.lru_cache(maxsize=4096)
def _is_venv(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "pyvenv.cfg"))


_OWNED: dict[str, dict[str, bool]] = {}  # folder -> path -> owned


class ProjectFiles:
    """The rules for one project folder (an absolute, real path)."""

    def __init__(self, folder: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> None:
        self.folder = os.path.realpath(folder)
        self.include = include
        self.exclude = exclude + WRITTEN_BY_APPS
        # Shared by every instance for this folder: filled once in a process (the command line's check,
        # the warm template), a forked worker inherits the answers for the ~1000 modules it scans.
        self._owned = _OWNED.setdefault(self.folder, {})

    def owns(self, path: str) -> bool:
        """True if ``path`` (absolute) is one of the project's own files (cached: asked per module, often)."""
        known = self._owned.get(path)
        if known is None:
            if len(self._owned) > 100_000:
                self._owned.clear()
            known = self._owned[path] = self._owns(path)
        return known

    def _owns(self, path: str) -> bool:
        if not path.startswith(self.folder + os.sep):
            # Resolved a folder at a time (cached): asked for every module in sys.modules, a realpath()
            # each (a stat per path component) made a worker's start ~100 ms slower.
            directory, name = os.path.split(path)
            real = os.path.realpath(path) if os.path.islink(path) else os.path.join(_real_dir(directory), name)
            if not real.startswith(self.folder + os.sep):
                return False
            path = real
        parts = path[len(self.folder) + 1:].split(os.sep)
        directory = self.folder
        for part in parts[:-1]:
            if part in IGNORED_DIRS or part in PACKAGE_DIRS or part.startswith("."):
                return False
            directory = os.path.join(directory, part)
            if directory in ENVIRONMENTS or _is_venv(directory):
                return False
        return not IGNORED_NAME.search(parts[-1])

    def relative(self, path: str) -> str:
        return os.path.relpath(path, self.folder).replace(os.sep, "/")

    def _matches(self, path: str, globs: tuple[str, ...]) -> bool:
        rel = self.relative(path)
        name = rel.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(rel, glob) or fnmatch.fnmatch(name, glob) for glob in globs)

    def excluded(self, path: str) -> bool:
        return self._matches(path, self.exclude)

    def included(self, path: str) -> bool:
        return self._matches(path, self.include)

    def watched(self, path: str) -> bool:
        """The project's file, or one --reload-include names in a project folder: as uvicorn's, an include brings
        back what the default rules leave out by name (``.flaskenv``, ``name~``), never a virtualenv's files."""
        if self.owns(path):
            return True
        return bool(self.include) and self.included(path) and self.owns(os.path.join(os.path.dirname(path), "_"))
