"""The live-reload middleware: full HTML documents get the script whatever the body iterable; others pass."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from devserver.handlers.inject import LIMIT, with_livereload
from devserver.handlers.livereload import APP_SCRIPT_TAG, SCRIPT_TAG

PAGE = b"<!DOCTYPE html><html><body><h1>hi</h1></body></html>"


def call(app: Any, method: str = "GET") -> tuple[str, dict[str, str], bytes, list[str]]:
    """Run ``app`` as a server would; returns status, headers, body and the calls seen."""
    seen: list[str] = []
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"], started["headers"] = status, headers
        seen.append("start")
        return lambda data: seen.append("write")

    result = with_livereload(app)({"REQUEST_METHOD": method}, start_response)
    chunks = []
    for chunk in result:
        assert "start" in seen, "a body chunk before start_response"
        chunks.append(chunk)
    if hasattr(result, "close"):
        result.close()
    return started["status"], dict(started["headers"]), b"".join(chunks), seen


def html_app(body_parts: Iterable[bytes], content_type: str = "text/html; charset=utf-8",
             extra: list[tuple[str, str]] | None = None, length: bool = True) -> Any:
    parts = list(body_parts)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        headers = [("Content-Type", content_type), *(extra or [])]
        if length:
            headers.append(("Content-Length", str(sum(map(len, parts)))))
        start_response("200 OK", headers)
        return iter(parts)  # neither list nor tuple: what Flask and Django hand back

    return app


def test_generator_body_gets_script_and_right_length() -> None:
    _, headers, body, _ = call(html_app([PAGE[:20], PAGE[20:]]))
    assert body == PAGE.replace(b"</body>", APP_SCRIPT_TAG + b"</body>")  # marked: module saves reload it
    assert headers["Content-Length"] == str(len(body))


def test_lazy_start_response_and_close_are_kept() -> None:
    closed = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            self.start("200 OK", [("Content-Type", "text/html")])
            yield PAGE

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        body = Body()
        body.start = start_response  # type: ignore[attr-defined]
        return body

    _, headers, body, _ = call(app)
    assert APP_SCRIPT_TAG in body and headers["Content-Length"] == str(len(body)) and closed == [True]


def test_fragments_json_compressed_and_head_pass_untouched() -> None:
    fragment = b"<li>one</li>"
    assert call(html_app([fragment]))[2] == fragment
    assert call(html_app([b'{"a": "</body>"}'], "application/json"))[2] == b'{"a": "</body>"}'
    assert call(html_app([PAGE], extra=[("Content-Encoding", "gzip")]))[2] == PAGE
    _, headers, body, _ = call(html_app([PAGE]), method="HEAD")
    assert body == PAGE and headers["Content-Length"] == str(len(PAGE))


def test_big_or_streamed_pages_pass_through_unchanged() -> None:
    big = PAGE[:-14] + b"x" * (LIMIT + 10) + b"</body></html>"
    _, headers, body, _ = call(html_app([big], length=True))
    assert body == big and headers["Content-Length"] == str(len(big))
    chunks = [PAGE[:-14]] + [b"y" * 65536] * 20 + [b"</body></html>"]  # 1.25 MiB, length unknown
    _, headers, body, _ = call(html_app(chunks, length=False))
    assert body == b"".join(chunks) and "Content-Length" not in headers


def test_list_bodies_that_are_not_html_keep_the_fast_path() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"plain"]

    result = with_livereload(app)({"REQUEST_METHOD": "GET"}, lambda *a: None)
    assert result == [b"plain"]


def test_a_page_that_already_has_the_script_gets_no_second_one() -> None:
    page = PAGE.replace(b"</body>", SCRIPT_TAG + b"</body>")
    assert call(html_app([page]))[2].count(b"/__devserver__/livereload.js") == 1
