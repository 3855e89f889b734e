"""Small HTML pages the server itself answers with (errors, tracebacks)."""

from __future__ import annotations

from html import escape
from http import HTTPStatus

from .tracebacks import REPORT_CSS, ErrorReport, report_html


def reason(status: int) -> str:
    """The standard reason phrase for ``status`` ("Unknown" if none)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


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
        "<hr><address>devserver</address></body></html>\n"
    ).encode("utf-8")
