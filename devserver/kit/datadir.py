"""The user's data folder: where devserver keeps what outlives a run (exports, the local CA), never the project."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def user_data_folder(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_DATA_HOME/devserver``, or ``~/.local/share/devserver``.

    A relative XDG_DATA_HOME is ignored, as the XDG spec says.  Never the
    project, whose ``git status`` would list what is kept here.
    """
    data = env.get("XDG_DATA_HOME", "")
    base = Path(data) if os.path.isabs(data) else Path.home() / ".local" / "share"
    return base / "devserver"
