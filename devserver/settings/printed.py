"""``devserver --print-config``: every setting, its value and where it came from; then the ``.env`` variables.

Values of settings whose key looks secret, and every ``.env`` value, are
masked by the tracebacks' rule (:data:`devserver.debug.tracebacks.SECRET`).
"""

from __future__ import annotations

from devserver.debug.tracebacks import MASK, SECRET
from devserver.settings.envfile import Variable
from devserver.settings.layers import Resolved


def toml_text(value: object) -> str:
    """A value as it would be written in [tool.devserver]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_text(item) for item in value) + "]"
    if value is None:
        return "(not set)"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def lines(resolved: Resolved, variables: tuple[Variable, ...]) -> list[str]:
    rows = [("setting", "value", "from")]
    for option in resolved.options:
        value = toml_text(option.shown(getattr(resolved.args, option.dest)))
        rows.append((option.key, MASK if SECRET.search(option.key) else value, resolved.sources[option.dest]))
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    out = [f"{key:<{width[0]}}  {value:<{width[1]}}  {source}" for key, value, source in rows]
    if variables:
        out.append("")
        out.append("environment from .env files (values masked; a variable already set wins):")
        name_width = max(len(variable.name) for variable in variables)
        for variable in variables:
            note = "  (not used: set in the environment)" if variable.overridden else ""
            out.append(f"  {variable.name:<{name_width}}  {MASK}  {variable.file}{note}")
    return out
