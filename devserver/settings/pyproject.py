"""The ``[tool.devserver]`` table of the working folder's pyproject.toml.

Only the working folder's file is read, as fastapi-cli reads ``[tool.fastapi]``:
no walk upward, so that a relative path in the table (``root``, ``app-dir``,
``env-file``) means what it means on the command line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

FILE = "pyproject.toml"
WHERE = f"{FILE} [tool.devserver]"


class ConfigError(Exception):
    """A bad setting: the message is one line saying what and where."""


def read_table(folder: str) -> Mapping[str, object]:
    """The table (empty without the file or the table); raises ConfigError for a file that is not TOML."""
    path = os.path.join(folder, FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{FILE}: cannot read it: {exc.strerror}") from None
    import tomllib  # here: only a folder with a pyproject.toml pays for it

    try:
        document = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{FILE}: not valid TOML: {exc}") from None
    tool = document.get("tool", {})
    table = tool.get("devserver", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{FILE}: [tool.devserver] must be a table, got {table!r}")
    return table
