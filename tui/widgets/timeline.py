"""The detail's Timeline tab: where a request's time went, what it did inside the app, and its profile.

Bars first (server, app, and inside the app: SQL, outbound calls,
templates, the app's own code), from ``duration_ms`` and the request's
:class:`InsideRecord`; then the repeated queries ("N+1: 12 similar queries
from catalog/views.py:40"); then every query, call and template in the order
they started, in a table whose highlighted row shows its full statement and
source below it; then the profile's call tree when the request was profiled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static, Tree
from textual.widgets.tree import TreeNode

from devserver.ipc.events import (
    InsideRecord,
    OutboundRecord,
    ProfileNode,
    ProfileRecord,
    QueryRecord,
    RepeatedQuery,
    RequestEvent,
    TemplateRecord,
)
from devserver.kit.safetext import escape_controls
from tui import format as fmt

LABEL_CELLS = 12
FIGURE_CELLS = 9
WHAT_CELLS = 60  # characters of a statement or URL in the table (the row's detail has it whole)


class Share(NamedTuple):
    """One bar: a part of the request's time, indented under the part it is in."""

    label: str
    ms: float
    indent: int = 0
    note: str = ""


def shares(request: RequestEvent) -> list[Share]:
    """The bars of ``request``: total, server and app; inside the app SQL, outbound, templates and the rest."""
    total = request.duration_ms
    inside = request.inside
    if inside is None:
        return [Share("total", total)]
    app = min(inside.app_ms, total)
    parts = [Share("SQL", inside.sql_ms, 1, _count(len(inside.queries), "query", "queries")),
             Share("outbound", inside.outbound_ms, 1, _count(len(inside.outbound), "call", "calls")),
             Share("templates", inside.templates_ms, 1, _count(len(inside.templates), "template", "templates"))]
    own = max(0.0, app - sum(p.ms for p in parts))
    return [Share("total", total), Share("server", max(0.0, total - app)), Share("app", app),
            *(p for p in parts if p.note), Share("app code", own, 1)]


def _count(n: int, one: str, many: str) -> str:
    return "" if not n else f"{n} {one if n == 1 else many}"


class Bars:
    """The shares as bars scaled to the total, as wide as the tab (a Rich renderable)."""

    def __init__(self, rows: list[Share]) -> None:
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        total = max((r.ms for r in self.rows), default=0.0) or 1.0
        notes = max((len(r.note) for r in self.rows), default=0)
        room = max(4, options.max_width - LABEL_CELLS - FIGURE_CELLS - 2 - (notes + 2 if notes else 0))
        for row in self.rows:
            label = ("  " * row.indent + row.label)[:LABEL_CELLS].ljust(LABEL_CELLS)
            cells = round(room * row.ms / total)
            bar = "█" * cells if cells or not row.ms else "▏"
            line = Text(label, style="bold" if not row.indent else "")
            line.append(fmt.duration(row.ms).rjust(FIGURE_CELLS) + "  ")
            line.append(bar.ljust(room), style="cyan" if row.indent else "green")
            if row.note:
                line.append("  " + row.note, style="dim")
            yield line


def repeated_text(repeated: Iterable[RepeatedQuery]) -> str:
    """One line per repeated statement: "N+1: 12 similar queries from catalog/views.py:40 (34 ms): SELECT …"."""
    lines = []
    for r in repeated:
        where = f" from {r.source}" if r.source else ""
        lines.append(f"N+1: {r.count} similar queries{where} ({fmt.duration(r.ms)}): {r.shape}")
    return escape_controls("\n".join(lines), multiline=False) if lines else ""


Item = QueryRecord | OutboundRecord | TemplateRecord


def _query_row(q: QueryRecord) -> tuple[str, str]:
    return "SQL", q.sql


def _outbound_row(c: OutboundRecord) -> tuple[str, str]:
    status = str(c.status) if c.status else "—"
    return "HTTP", f"{c.method} {c.url} → {status}"


def _template_row(t: TemplateRecord) -> tuple[str, str]:
    return "tmpl", t.name


def _query_detail(q: QueryRecord) -> list[str]:
    rows = "" if q.rows is None else f" · {q.rows} rows"
    return [q.sql, f"{fmt.duration(q.ms)}{rows} · {q.database or 'database'}", *([f"error: {q.error}"] if q.error else [])]


def _outbound_detail(c: OutboundRecord) -> list[str]:
    answer = f"{c.status}" if c.status else "no answer"
    return [f"{c.method} {c.url}", f"{answer} · {fmt.duration(c.ms)} · {fmt.size(c.bytes_received)} received"
            f"{' · ' + c.client if c.client else ''}", *([f"error: {c.error}"] if c.error else [])]


def _template_detail(t: TemplateRecord) -> list[str]:
    return [t.name, f"{fmt.duration(t.ms)}{' · ' + t.engine if t.engine else ''}"]


ROWS: dict[type, Callable[[Item], tuple[str, str]]] = {
    QueryRecord: _query_row, OutboundRecord: _outbound_row, TemplateRecord: _template_row,  # type: ignore[dict-item]
}
DETAILS: dict[type, Callable[[Item], list[str]]] = {
    QueryRecord: _query_detail, OutboundRecord: _outbound_detail, TemplateRecord: _template_detail,  # type: ignore[dict-item]
}


def items_of(inside: InsideRecord) -> list[Item]:
    """Queries, calls and templates in the order they started."""
    return sorted([*inside.queries, *inside.outbound, *inside.templates], key=lambda item: item.started_ms)


def item_detail(item: Item) -> str:
    """What the table row cannot hold: the whole statement or URL, figures, and the app frame that ran it."""
    lines = DETAILS[type(item)](item)
    lines.append(f"from {item.source}" if item.source else "from no frame of the app's (a library or the server)")
    return escape_controls("\n".join(lines))


def _short(text: str, cells: int = WHAT_CELLS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= cells else text[: cells - 1] + "…"


def profile_tree(tree: Tree[ProfileNode], profile: ProfileRecord) -> None:
    """Fill ``tree`` from the profile's depth-first nodes, all expanded (the app's own calls in bold)."""
    tree.root.set_label(Text(escape_controls(f"{profile.route}: {profile.samples} samples every "
                                             f"{profile.interval_ms:g} ms ({profile.profiler})", multiline=False)))
    stack: list[TreeNode[ProfileNode]] = [tree.root]
    for node in profile.nodes:
        del stack[node.depth + 1:]
        parent = stack[-1]
        label = Text(f"{fmt.duration(node.ms):>8}  ", style="bold" if node.app else "dim")
        label.append(escape_controls(f"{node.function}  {node.location}", multiline=False),
                     style="" if node.app else "dim")
        if node.self_ms:
            label.append(f"  (self {fmt.duration(node.self_ms)})", style="dim")
        child = parent.add(label, data=node, expand=True)
        stack.append(child)
    for added in stack[1:]:
        added.allow_expand = bool(added.children)
    tree.root.expand()


class Timeline(VerticalScroll):
    """The Timeline tab's content for one request."""

    def __init__(self, request: RequestEvent, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.request = request
        self.items: list[Item] = items_of(request.inside) if request.inside is not None else []

    def compose(self) -> ComposeResult:
        r, inside = self.request, self.request.inside
        yield Static("Where the time went", classes="section-title")
        yield Static(Bars(shares(r)), id="timeline-bars", classes="section-body")
        if inside is None:
            yield Static("Nothing was recorded inside the app for this request (queries, calls and templates are "
                         "recorded while the dashboard or a JSON log is watching).", classes="section-body note",
                         id="timeline-none")
            return
        if flags := repeated_text(inside.repeated):
            yield Static(flags, id="timeline-repeated", classes="section-body warning", markup=False)
        if self.items:
            title = (f"{_count(len(inside.queries), 'query', 'queries') or 'no queries'} · "
                     f"{_count(len(inside.outbound), 'outbound call', 'outbound calls') or 'no outbound calls'} · "
                     f"{_count(len(inside.templates), 'template', 'templates') or 'no templates'}")
            if inside.dropped:
                title += f" · {inside.dropped} more not kept"
            yield Static(title + " (↑↓ picks one)", classes="section-title", id="timeline-items-title")
            yield DataTable(id="timeline-items", cursor_type="row", zebra_stripes=True)
            yield Static(item_detail(self.items[0]), id="timeline-item", classes="section-body", markup=False)
        if inside.profile is not None:
            yield Static("Profile: the call tree (Enter folds a call)", classes="section-title", id="profile-title")
            yield Tree[ProfileNode]("profile", id="profile-tree")

    def on_mount(self) -> None:
        if self.items:
            table = self.query_one("#timeline-items", DataTable)
            table.add_columns("kind", "at", "took", "from", "what")
            for index, item in enumerate(self.items):
                kind, what = ROWS[type(item)](item)
                cells = (kind, fmt.duration(item.started_ms), fmt.duration(item.ms),
                         escape_controls(item.source, multiline=False) or "—", escape_controls(_short(what), multiline=False))
                table.add_row(*(Text(cell) for cell in cells), key=str(index))  # Text: a str cell is read as markup
        inside = self.request.inside
        if inside is not None and inside.profile is not None:
            profile_tree(self.query_one("#profile-tree", Tree), inside.profile)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.query_one("#timeline-item", Static).update(item_detail(self.items[int(event.row_key.value)]))
