"""Paths that never trigger a reload: tools' folders, editors' swap and backup files, bytecode.

Shared by the watchers (reload.py) and the project rules (projectfiles.py).
"""

from __future__ import annotations

import re

IGNORED_DIRS = frozenset({"__pycache__", "node_modules", ".git", ".hg", ".svn", ".tox", ".venv",
                          ".mypy_cache", ".pytest_cache", ".hypothesis", ".idea"})
IGNORED_NAME = re.compile(r"^\.|~$|\.sw[a-z]$|^4913$|\.py[cod]$|\.___jb_...___$|^flycheck_")
