"""Paths that never trigger a reload: tools' folders, editors' swap and backup files, bytecode.

Virtualenvs are also told by their ``pyvenv.cfg`` (projectfiles.py), whatever
their name; ``venv`` and ``.venv`` are named here too for the ``--dynamic``
watcher, which does not look for it.

Shared by the watchers (reload.py) and the project rules (projectfiles.py).
"""

from __future__ import annotations

import re

IGNORED_DIRS = frozenset({"__pycache__", "node_modules", ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv",
                          ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".idea",
                          "site-packages", "dist-packages"})
IGNORED_NAME = re.compile(r"^\.|~$|\.sw[a-z]$|^4913$|\.py[cod]$|\.___jb_...___$|^flycheck_")
