"""The layer table of devserver/: which package may import which.

One table, read by tests/test_architecture.py (which fails on any import it does
not allow) and printed into docs/ARCHITECTURE.md (``python tests/layers.py``
prints it; the test fails when the doc's copy differs).

A layer is a package of devserver/ or one of its top-level modules.  A layer may
import itself and the layers before it, or only those named in ``only`` when the
layer promises less (the sans-IO HTTP code, the router apps use on any server).
``from devserver import __version__`` is allowed everywhere.  A layer's job is
the first line of its docstring (the package's ``__init__.py``), so the table
and the code say it once.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Layer:
    name: str  # a package of devserver/ or a top-level module, without .py
    only: tuple[str, ...] | None = None  # None: every layer before this one


LAYERS: tuple[Layer, ...] = (
    Layer("kit", only=()),
    Layer("http", only=("kit",)),
    Layer("tls", only=("kit",)),
    Layer("ipc"),
    Layer("debug"),
    Layer("settings"),
    Layer("probes"),
    Layer("handlers"),
    Layer("reload"),
    Layer("apps"),
    Layer("worker"),
    Layer("readout"),
    Layer("supervisor"),
    Layer("console"),
    Layer("router", only=()),
    Layer("frame", only=("router",)),
    Layer("entrypoints"),
    Layer("cli"),
    Layer("server"),
    Layer("__main__"),
    Layer("__init__"),
)

RANK = {layer.name: rank for rank, layer in enumerate(LAYERS)}


def may_import(importer: str, imported: str) -> bool:
    """Whether layer ``importer`` may import layer ``imported``."""
    if importer == imported:
        return True
    layer = LAYERS[RANK[importer]]
    allowed = layer.only if layer.only is not None else [one.name for one in LAYERS[:RANK[importer]]]
    return imported in allowed


def source_of(layer: Layer, root: Path = ROOT) -> Path:
    package = root / "devserver" / layer.name
    return package / "__init__.py" if package.is_dir() else root / "devserver" / f"{layer.name}.py"


def job_of(layer: Layer, root: Path = ROOT) -> str:
    """The first line of the layer's docstring, its reStructuredText roles and double backquotes as Markdown code."""
    doc = ast.get_docstring(ast.parse(source_of(layer, root).read_text())) or ""
    return re.sub(r":\w+:`", "`", doc.splitlines()[0]).replace("``", "`") if doc else ""


def shown_name(layer: Layer, root: Path = ROOT) -> str:
    return f"`{layer.name}/`" if (root / "devserver" / layer.name).is_dir() else f"`{layer.name}.py`"


def table(root: Path = ROOT) -> str:
    """The table as docs/ARCHITECTURE.md shows it (Markdown)."""
    rows = ["| # | layer | may import | job |", "|---|---|---|---|"]
    for rank, layer in enumerate(LAYERS):
        if layer.only is None:
            allowed = f"1-{rank}" if rank > 1 else ("1" if rank == 1 else "nothing")
        else:
            allowed = ", ".join(shown_name(LAYERS[RANK[name]], root) for name in layer.only) or "nothing"
        job = job_of(layer, root).replace("|", "\\|")
        rows.append(f"| {rank + 1} | {shown_name(layer, root)} | {allowed} | {job} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
