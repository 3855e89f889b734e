"""Which of the process's imported modules come from a folder, asked often and cheaply.

A load, a purge and a reload each ask it of every entry of ``sys.modules``
(hundreds, most from the standard library and site-packages).  Judging a
module means resolving its file (a ``realpath``: a stat per path component,
12 ms for a worker's modules on every load).  A module found to be from
elsewhere is remembered under its key, by identity, so asking again costs a
dict lookup; whatever is put under that key later (one of the folder's
modules, a re-import) is another object and is judged afresh.  The folder's
own modules are judged every time: they are few, and they are the ones that
come and go.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

FOREIGN_LIMIT = 100_000  # modules from elsewhere remembered (a process imports a few thousand at most)


class OwnModules:
    """The entries of ``sys.modules`` whose file ``owns`` (a predicate on the module's file) accepts."""

    def __init__(self, owns: Callable[[str], bool]) -> None:
        self.owns = owns
        self._foreign: dict[str, ModuleType] = {}  # sys.modules key -> the module from elsewhere found there

    def owned(self, key: str, module: ModuleType | None) -> bool:
        """True if ``module`` (found at ``sys.modules[key]``) was loaded from one of the files ``owns`` accepts."""
        if module is None or self._foreign.get(key) is module:
            return False
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and self.owns(file):
            return True
        if len(self._foreign) > FOREIGN_LIMIT:
            self._foreign.clear()
        self._foreign[key] = module
        return False

    def items(self) -> list[tuple[str, ModuleType]]:
        """(key, module) of every owned module imported now."""
        owned = self.owned
        return [(key, module) for key, module in list(sys.modules.items()) if owned(key, module)]
