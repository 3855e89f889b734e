"""The entry points of one group, read from the installed distributions without importlib.metadata.

The dashboard is found by entry point on every start in a terminal.
importlib.metadata costs that start 40-80 ms (its own imports, then the
metadata of every installed distribution); reading the ``entry_points.txt``
of the ``*.dist-info`` and ``*.egg-info`` folders on ``sys.path`` costs about
a millisecond and finds the same entries for what pip installs (wheels,
editable installs).  As importlib.metadata does, the first distribution of a
name on ``sys.path`` hides later ones.  Callers fall back to importlib.metadata
when nothing is found here (a zipped egg, say).
"""

from __future__ import annotations

import importlib
import os
import re
import sys

_SEPARATORS = re.compile(r"[-_.]+")
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def values(group: str) -> list[str]:
    """The ``module:attribute`` values registered under ``group``, in ``sys.path`` order."""
    found: list[str] = []
    seen: set[str] = set()
    for folder in sys.path:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            if not name.endswith(_METADATA_SUFFIXES):
                continue
            distribution = _SEPARATORS.sub("-", name.rsplit(".", 1)[0].split("-")[0]).lower()
            if distribution in seen:
                continue
            seen.add(distribution)
            try:
                with open(os.path.join(folder or ".", name, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except OSError:
                continue
            found += _section(text, group)
    return found


def _section(text: str, group: str) -> list[str]:
    """The values of the ``[group]`` section of an entry_points.txt (an INI file of ``name = value`` lines)."""
    values: list[str] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            values.append(line.split("=", 1)[1].strip())
    return values


def load(value: str) -> object:
    """The object an entry point's ``module:attribute.path [extras]`` value names (ImportError if missing)."""
    module_name, _, attribute = value.split("[", 1)[0].strip().partition(":")
    found: object = importlib.import_module(module_name.strip())
    for part in filter(None, attribute.strip().split(".")):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ImportError(f"{value!r}: no attribute {part!r}") from None
    return found
