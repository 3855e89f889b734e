"""The page of a folder that has no ``index.html``, as ``python -m http.server`` lists one.

Only what a request could then fetch is listed: :mod:`devserver.handlers.static`
passes the rule (``servable``: no hidden name, nothing whose real path
leaves the root, so a symlink pointing outside is left out), and only
folders and regular files are shown.  Every name is HTML-escaped in the text
and percent-encoded in its link; links are relative, so the page is right
under whatever prefix it is served.  The page is a static one for live
reload (the caller's ``html_transform`` puts the script in): a save under
the root reloads it.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{padding:.15em 1.5em .15em 0;text-align:left}td.size{text-align:right;font-variant-numeric:tabular-nums}"
          "th{border-bottom:1px solid #ccc}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One name in a folder, as listed."""

    name: str
    folder: bool
    size: int  # bytes (0 for a folder)
    mtime: float


def entries(folder: str, servable: Callable[[str, str], bool]) -> list[Entry]:
    """What ``folder`` holds that a request could fetch: folders first, then files, each by name.

    ``servable(name, real_path)`` says whether the server would serve that
    name at that real path (symlinks resolved).
    """
    found = []
    try:
        with os.scandir(folder) as scan:
            names = [item.name for item in scan]
    except OSError:
        names = []
    for name in names:
        real = os.path.realpath(os.path.join(folder, name))
        if not servable(name, real):
            continue
        try:
            st = os.stat(real)
        except OSError:
            continue  # a broken link, or gone since the scan
        if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
            is_folder = stat.S_ISDIR(st.st_mode)
            found.append(Entry(name, is_folder, 0 if is_folder else st.st_size, st.st_mtime))
    found.sort(key=lambda e: (not e.folder, e.name.casefold(), e.name))
    return found


def size_text(n: int) -> str:
    """``512 B``, ``1.2 KiB``, ``3.4 MiB``: sizes as people read them (the exact count is the cell's title)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def folder_page(url_path: str, listed: list[Entry], at_root: bool) -> bytes:
    """The HTML page listing ``listed`` for the folder at ``url_path`` (decoded, ending in ``/``)."""
    title = escape(f"Index of {url_path}")
    rows = [] if at_root else ['<tr><td><a href="../">../</a></td><td></td><td></td></tr>']
    for entry in listed:
        shown = entry.name + "/" if entry.folder else entry.name
        href = quote(entry.name, safe="") + ("/" if entry.folder else "")
        size = "" if entry.folder else f'<span title="{entry.size} bytes">{size_text(entry.size)}</span>'
        modified = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime))
        rows.append(f'<tr><td><a href="{escape(href)}">{escape(shown)}</a></td>'
                    f'<td class="size">{size}</td><td>{modified}</td></tr>')
    empty = "" if listed else "<p>This folder is empty.</p>"
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{title}</h1><table><thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{empty}<hr><address>devserver</address></body></html>\n"
    ).encode()
