"""Small HTML pages the server itself answers with (errors, tracebacks)."""

from __future__ import annotations

from html import escape

from devserver.debug.tracebacks import REPORT_CSS, report_html
from devserver.http.statuses import reason
from devserver.ipc.reports import ErrorReport

# Markup every page ends with, added once per process by a feature that must
# be on the server's own pages too (live reload's script, so an error page
# refreshes by itself once the error is fixed).
_footers: list[str] = []


def add_footer(markup: str) -> None:
    """End every page built from now on with ``markup`` (added once)."""
    if markup not in _footers:
        _footers.append(markup)


def error_page(status: int, message: str, detail: str | None = None, report: ErrorReport | None = None) -> bytes:
    """An HTML error page; ``detail`` (a traceback, say) is shown preformatted, or ``report`` in full."""
    title = f"{status} {escape(reason(status))}"
    pre = f"<pre>{escape(detail)}</pre>" if detail else ""
    if report is not None:
        pre = f"<style>{REPORT_CSS}</style>{report_html(report)}"
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
        f"<title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head>"
        f"<body><h1>{title}</h1><p>{escape(message)}</p>{pre}"
        f"<hr><address>devserver</address>{''.join(_footers)}</body></html>\n"
    ).encode()
