"""Every attribute of a library the hooks replace, replaced here: once each, and remembered.

A hook's replacement is set with ``setattr`` (mypy checks the replacement's own signature, not that it fits the
library's: the libraries type their methods, and a method assigned is an error there), and kept in
:data:`REPLACED` so a test can list what a worker replaced, and a second install leaves the first one's alone.
"""

from __future__ import annotations

from typing import NamedTuple


class Replaced(NamedTuple):
    owner: object  # a class or a module
    name: str
    original: object


REPLACED: list[Replaced] = []


def replace(owner: object, name: str, replacement: object) -> bool:
    """Set ``owner.name`` to ``replacement``, unless a hook replaced it before (then False, nothing changes)."""
    if any(done.owner is owner and done.name == name for done in REPLACED):
        return False
    REPLACED.append(Replaced(owner, name, getattr(owner, name)))
    setattr(owner, name, replacement)
    return True
