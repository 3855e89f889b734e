"""The map stays true: the layer table, the module map and the sizes of docs/ARCHITECTURE.md.

Every import in devserver/ is parsed (at any depth of the file, type-checking
imports too) and checked against the layer table of tests/layers.py; the doc
shows that table and names every module of devserver/ and tui/.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from layers import LAYERS, RANK, ROOT, may_import, table

DOC = ROOT / "docs" / "ARCHITECTURE.md"
VERSION_IMPORT = ("devserver", "__version__")  # allowed everywhere: it is the first line of devserver/__init__.py
MAX_MODULES = 15  # per package
MAX_TOP_LEVEL = 10  # devserver/'s own modules


def module_name(path: Path, root: Path) -> str:
    """``devserver.http.parser`` for devserver/http/parser.py, ``devserver.http`` for its __init__.py."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path, top: str) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted((root / top).rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name, resolved to a module that exists where it can be
    line: int


def imports_in(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import of devserver in the file, at any depth (functions, ``if TYPE_CHECKING:``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "devserver"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved as the interpreter does, from the file's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] != "devserver":
                continue
            for alias in node.names:
                if (base, alias.name) == VERSION_IMPORT:
                    continue
                submodule = f"{base}.{alias.name}"
                found.append(Import(name, submodule if submodule in known else base, node.lineno))
    return found


def all_imports(root: Path = ROOT) -> list[Import]:
    known = modules(root, "devserver")
    return [one for name, path in known.items() for one in imports_in(name, path, set(known))]


def layer_of(module: str) -> str:
    """The layer a dotted name of devserver belongs to: its package, or the top-level module itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def forbidden(imports: list[Import]) -> list[str]:
    wrong = []
    for one in imports:
        importer, imported = layer_of(one.importer), layer_of(one.imported)
        if importer not in RANK or imported not in RANK:
            wrong.append(f"{one.importer}:{one.line} imports {one.imported}: "
                         f"{importer if importer not in RANK else imported} is not in the layer table (tests/layers.py)")
        elif not may_import(importer, imported):
            wrong.append(f"{one.importer}:{one.line} imports {one.imported}: layer {importer} may not import {imported}")
    return wrong


def test_every_import_is_one_the_layer_table_allows() -> None:
    wrong = forbidden(all_imports())
    assert not wrong, "\n".join(wrong)


def test_every_layer_is_in_the_table_and_every_entry_of_the_table_exists() -> None:
    on_disk = {layer_of(name) for name in modules(ROOT, "devserver") if name != "devserver"} | {"__init__"}
    assert on_disk == set(RANK)
    assert len(RANK) == len(LAYERS)


def test_a_narrower_layer_names_only_layers_before_it() -> None:
    for layer in LAYERS:
        for name in layer.only or ():
            assert RANK[name] < RANK[layer.name], (layer.name, name)


def test_http_imports_nothing_of_devserver_but_kit() -> None:
    """Sans-IO: the HTTP code is bytes and events, so it must not reach sockets, processes or handlers."""
    imported = {layer_of(one.imported) for one in all_imports() if layer_of(one.importer) == "http"}
    assert imported <= {"http", "kit"}


@pytest.mark.parametrize("line, layer", [
    ("from devserver.supervisor.core import Supervisor", "supervisor"),  # upward
    ("from devserver import cli", "cli"),  # a top-level module, by the package's name
    ("from ..worker import process", "worker"),  # relative
    ("import devserver.console.log", "console"),
    ("def later() -> None:\n    from devserver.apps.loader import load_app", "apps"),  # inside a function
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from devserver.handlers.wsgi import WSGIServer", "handlers"),
    ("from devserver.ipc.config import Config", "ipc"),  # not allowed to http either: only kit
])
def test_the_check_refuses_an_import_the_table_does_not_allow(tmp_path: Path, line: str, layer: str) -> None:
    package = tmp_path / "devserver"
    for folder in ("http", "kit", "worker", "supervisor", "console", "apps", "handlers", "ipc"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("")
    (package / "worker" / "process.py").write_text("")
    (package / "http" / "parser.py").write_text(f"from devserver import __version__\nfrom devserver.kit import frozen\n{line}\n")
    wrong = forbidden(all_imports(tmp_path))
    assert len(wrong) == 1 and wrong[0].startswith("devserver.http.parser:") and f"may not import {layer}" in wrong[0], wrong


def test_the_check_allows_what_the_table_allows(tmp_path: Path) -> None:
    (tmp_path / "devserver" / "worker").mkdir(parents=True)
    (tmp_path / "devserver" / "__init__.py").write_text("")
    (tmp_path / "devserver" / "worker" / "__init__.py").write_text("")
    (tmp_path / "devserver" / "worker" / "process.py").write_text(
        "from devserver import __version__\nfrom devserver.http.parser import RequestParser\nfrom . import accept\n"
        "from devserver.kit.frozen import record\nimport devserver.supervisor.listen\n")
    assert [line.split(": ", 1)[1] for line in forbidden(all_imports(tmp_path))] == [
        "layer worker may not import supervisor"]


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in modules(root, "devserver")}
    for one in all_imports(root):
        if one.imported != one.importer:
            edges[one.importer].add(one.imported)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_module_imports_one_that_imports_it_back() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, " → ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_devserver_never_imports_the_dashboard() -> None:
    for path in (ROOT / "devserver").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
        assert not any(name.split(".")[0] in ("tui", "textual") for name in names), path


def packages() -> list[Path]:
    return sorted(init.parent for top in ("devserver", "tui") for init in (ROOT / top).rglob("__init__.py"))


@pytest.mark.parametrize("package", packages(), ids=lambda path: str(path.relative_to(ROOT)))
def test_a_package_stays_small(package: Path) -> None:
    limit = MAX_TOP_LEVEL if package == ROOT / "devserver" else MAX_MODULES
    assert len(list(package.glob("*.py"))) <= limit


# -- the doc --------------------------------------------------------------------------------------------------------

MAP_HEADING = "## Module map and layers"
PACKAGE_HEADING = re.compile(r"^### `([\w/]+)/`")
MODULE_ROW = re.compile(r"^\| `([\w.]+\.\w+)` \| (.*\S) \|$")


def map_section(text: str) -> str:
    start = text.index(MAP_HEADING)
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def mapped(section: str) -> tuple[set[str], set[str]]:
    """The packages the module map has a heading for, and the modules it has a row for (paths from the repo)."""
    packages_seen: set[str] = set()
    files: set[str] = set()
    package = ""
    for line in section.splitlines():
        if heading := PACKAGE_HEADING.match(line):
            package = heading.group(1)
            packages_seen.add(package)
        elif (row := MODULE_ROW.match(line)) and package:
            files.add(f"{package}/{row.group(1)}")
    return packages_seen, files


def test_the_doc_shows_the_layer_table_as_it_is() -> None:
    """When this fails, paste the output of ``python tests/layers.py`` into docs/ARCHITECTURE.md."""
    assert table() in map_section(DOC.read_text()), "the doc's layer table differs: paste `python tests/layers.py` in"


def test_the_module_map_names_every_module_and_no_other() -> None:
    packages_seen, files = mapped(map_section(DOC.read_text()))
    on_disk = {str(path.relative_to(ROOT)) for top in ("devserver", "tui") for path in (ROOT / top).rglob("*")
               if path.suffix in (".py", ".js") and path.name != "__init__.py"}
    assert sorted(on_disk - files) == [], "modules the map does not name"
    assert sorted(files - on_disk) == [], "modules the map names that are not there"
    assert packages_seen == {str(path.relative_to(ROOT)) for path in packages()}


def test_the_map_reader_reads_rows_under_their_package() -> None:
    section = "\n".join([MAP_HEADING, "### `devserver/http/` sans-IO", "| module | job |", "|---|---|",
                         "| `parser.py` | bytes in, events out |", "| `dates.py` |  |", "### `tui/`", "| `app.py` | the app |"])
    assert mapped(section) == ({"devserver/http", "tui"}, {"devserver/http/parser.py", "tui/app.py"})


def test_no_test_imports_through_a_tests_package() -> None:
    """The README's command is a bare ``pytest``: it puts each test's folder on sys.path, never the repository's, so
    ``from tests.conftest import ...`` fails at collection on a fresh clone (``python -m pytest`` would hide it)."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for name in names if name.split(".")[0] == "tests"]
    assert found == []
