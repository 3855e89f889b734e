"""``DEVSERVER_*`` variables: one per setting, named ``DEVSERVER_`` and the key in capitals with ``_``.

Other ``DEVSERVER_`` names are not an error: the server's own switches
(``DEVSERVER_RESTART_TIMELINE``, ...) share the prefix.
"""

from __future__ import annotations

from collections.abc import Mapping

from devserver.settings.options import Option


def values_for(options: tuple[Option, ...], environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """dest -> (variable, text) for each setting given in ``environ``."""
    return {option.dest: (option.variable, environ[option.variable])
            for option in options if option.variable in environ}
