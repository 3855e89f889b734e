"""The project's ``.env`` files: read with python-dotenv, put in the environment without overriding it.

python-dotenv is the field's reader (flask run uses it): quotes, ``export``,
multi-line values and ``${VAR}`` interpolation as every other tool reads
them.  Its rule is kept: a variable already set (exported by the user) wins;
among the files, a later one wins over an earlier one.

The supervisor applies the files before APP is imported (the command line's
check imports it once), so every process it starts (workers, standbys, the
warm template) inherits them.  After an edit it applies them again: the
variables it set itself are listed in :data:`MARKER`, so it can take back the
old values without ever touching one the user exported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping
from typing import NamedTuple

from devserver.settings.pyproject import ConfigError

MARKER = "_DEVSERVER_DOTENV_KEYS"  # not DEVSERVER_*: that prefix is the settings' layer


class Variable(NamedTuple):
    """One variable a file sets, and whether the environment's own value wins over it."""

    name: str
    file: str
    overridden: bool


def read(paths: Iterable[str]) -> dict[str, tuple[str, str]]:
    """name -> (value, file) from the files that exist, a later file winning; raises ConfigError if unreadable."""
    merged: dict[str, tuple[str, str]] = {}
    for path in paths:
        if not os.path.isfile(path):
            continue
        from dotenv import dotenv_values  # here: only a project with a .env pays for the import (~35 ms)

        try:
            values = dotenv_values(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read it: {exc}") from None
        merged.update((name, (value, path)) for name, value in values.items() if value is not None)
    return merged


def apply(paths: Iterable[str], environ: MutableMapping[str, str] | None = None) -> tuple[Variable, ...]:
    """Set the files' variables that the environment does not have (taking back the last call's first)."""
    environ = os.environ if environ is None else environ
    for name in filter(None, environ.pop(MARKER, "").split(",")):
        environ.pop(name, None)
    found = read(paths)
    variables, mine = [], []
    for name, (value, path) in found.items():
        overridden = name in environ
        if not overridden:
            environ[name] = value
            mine.append(name)
        variables.append(Variable(name, path, overridden))
    if mine:
        environ[MARKER] = ",".join(mine)
    return tuple(variables)


def missing(paths: Iterable[str]) -> str | None:
    """The first of ``paths`` that is not a file, or None."""
    return next((path for path in paths if not os.path.isfile(path)), None)
