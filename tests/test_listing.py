"""Folders without ``index.html`` are listed, as ``python -m http.server`` lists them (issue 20, item 14).

Live servers, a keep-alive client that follows the page's own links, hostile
names (markup, quotes, percent signs, '#', '?'), hidden files and symlinks
leading out of the root; and in memory, the rules of :func:`static.serve`.
"""

from __future__ import annotations

import http.client
import os
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
from conftest import LiveServer

from devserver.handlers import static
from devserver.handlers.listing import size_text

HOSTILE = ('<img src=x onerror=alert(1)>.txt', 'a&b "quoted" \'single\'.txt', "100% #1?x=y.txt", "ünï cödé.txt")


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs)["href"]

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data))
            self._href = None


def links(body: bytes) -> list[tuple[str, str]]:
    parser = Links()
    parser.feed(body.decode("utf-8"))
    return parser.links


def build_tree(top: Path, outside: Path) -> None:
    for name in HOSTILE:
        (top / name).write_text(f"content of {name}")
    (top / "big.bin").write_bytes(b"\0" * 3000)
    (top / ".env").write_text("SECRET=1")
    (top / ".git").mkdir()
    (top / "sub").mkdir()
    (top / "sub" / "inner.txt").write_text("inner")
    (top / "Zebra").mkdir()
    outside.mkdir()
    (outside / "passwords.txt").write_text("nope")
    (top / "leak").symlink_to(outside)  # a folder outside the root
    (top / "leak.txt").symlink_to(outside / "passwords.txt")  # a file outside
    (top / "alias").symlink_to(top / "sub")  # stays inside: listed and served


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    top = tmp_path / "project"
    top.mkdir()
    build_tree(top, tmp_path / "elsewhere")
    return top


def fetch(conn: http.client.HTTPConnection, target: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn.request(method, target)
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_a_folder_without_layout_lists_itself_and_every_link_leads_to_what_it_names(folder: Path) -> None:
    server = LiveServer(["--workers", "1"], folder).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)  # one keep-alive connection
        status, headers, body = fetch(conn, "/")
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
        shown = [text for _, text in links(body)]
        # Folders first, then files, by name regardless of case; no parent link at the root.
        assert shown == ["alias/", "sub/", "Zebra/", *sorted([*HOSTILE, "big.bin"], key=str.casefold)]
        assert b"<img" not in body and b"&lt;img src=x onerror=alert(1)&gt;.txt" in body
        assert not any(text.startswith(".") or "leak" in text for text in shown)  # hidden, or leading out
        assert b'title="3000 bytes">2.9 KiB<' in body
        for href, text in links(body):
            status, _, content = fetch(conn, urljoin("/", href))
            assert status == 200, (href, status)
            if not text.endswith("/"):
                assert content == f"content of {text}".encode() or text == "big.bin"
        for never in ("/leak/", "/leak/passwords.txt", "/leak.txt", "/.git/", "/.env"):
            assert fetch(conn, never)[0] == 404, never
        status, headers, _ = fetch(conn, "/sub")  # like http.server: the slash form, so relative links resolve
        assert status == 301 and headers["location"] == "/sub/"
        status, _, body = fetch(conn, "/sub/")
        assert links(body) == [("../", "../"), ("inner.txt", "inner.txt")]
        assert fetch(conn, "/sub/inner.txt")[2] == b"inner"
        status, headers, body = fetch(conn, "/", "HEAD")
        assert status == 200 and body == b"" and int(headers["content-length"]) > 0
        conn.close()
    finally:
        server.stop()


def test_a_new_file_is_listed_by_the_next_request(folder: Path) -> None:
    server = LiveServer(["--workers", "1"], folder).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert "new.txt" not in [text for _, text in links(fetch(conn, "/sub/")[2])]
        (folder / "sub" / "new.txt").write_text("fresh")
        assert "new.txt" in [text for _, text in links(fetch(conn, "/sub/")[2])]
        conn.close()
    finally:
        server.stop()


def test_folders_of_html_page_without_an_index_are_listed_too(site: Path) -> None:
    (site / "html_page" / "images").mkdir()
    (site / "html_page" / "images" / "logo.png").write_bytes(b"\x89PNG")
    server = LiveServer(["--workers", "1"], site).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        status, _, body = fetch(conn, "/images/")
        assert status == 200 and links(body) == [("../", "../"), ("logo.png", "logo.png")]
        assert b"fixture index" in fetch(conn, "/")[2]  # a folder with index.html serves it, as before
        conn.close()
    finally:
        server.stop()


APP = '''\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app answered " + environ["PATH_INFO"].encode()]
'''


def test_with_an_app_a_folder_without_index_goes_to_the_app(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(APP)
    (tmp_path / "html_page" / "static").mkdir(parents=True)
    (tmp_path / "html_page" / "static" / "site.css").write_text("body{}")
    server = LiveServer(["shop:app", "--workers", "1"], tmp_path).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        status, _, body = fetch(conn, "/static/")
        assert (status, body) == (200, b"app answered /static/")  # files win only for files
        assert fetch(conn, "/static/site.css")[2] == b"body{}"
        conn.close()
    finally:
        server.stop()


# -- in memory ---------------------------------------------------------------------------------------------------

def test_names_no_url_can_reach_are_not_listed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_text("ok")
    os.mkfifo(root / "pipe")  # neither a folder nor a regular file
    (root / "dangling").symlink_to(root / "gone")
    (root / "back\\slash.txt").write_text("x")  # a backslash never makes a segment
    bad = os.fsencode(str(root)) + b"/not-utf8-\xff.txt"
    with open(bad, "wb") as f:
        f.write(b"x")
    response = static.serve(os.path.realpath(root), "GET", "/", {})
    assert response.status == 200
    assert [text for _, text in links(response.body)] == ["ok.txt"]


def test_the_listing_gets_the_html_transform_and_is_never_kept(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    root = os.path.realpath(tmp_path)
    old = time.time() - 10
    os.utime(tmp_path, (old, old))  # old enough that a cache would keep it
    marked = static.serve(root, "GET", "/", {}, html_transform=lambda page: page.replace(b"</body>", b"<i>x</i></body>"))
    assert b"<i>x</i></body>" in marked.body
    (tmp_path / "b.txt").write_text("b")
    assert "b.txt" in [t for _, t in links(static.serve(root, "GET", "/", {}).body)]
    assert static.serve(root, "POST", "/", {}).status == 405


def test_sizes_read_as_people_read_them() -> None:
    assert [size_text(n) for n in (0, 1023, 1024, 1536, 5 * 1024**2, 3 * 1024**4)] == \
        ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 TiB"]
