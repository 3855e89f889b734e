"""Static files through a real server whose response cache is warm: a save is served by the next request.

The worker keeps a small file's response once the file and its folders are
older than the racy window (2 s); these tests wait for that, ask twice (the
second answer comes from the cache), then change the file and ask again at
once, on the same keep-alive connection.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from conftest import http_exchange

RACY_S = 2.0  # devserver.handlers.static's default racy window
SECRET = b"outside the root"


def settled(*paths: Path) -> None:
    """Wait (bounded) until every path's last change is older than the server's racy window."""
    deadline = time.monotonic() + RACY_S + 10
    while time.monotonic() < deadline:
        newest = max(max(p.lstat().st_mtime_ns, p.lstat().st_ctime_ns) for p in paths)
        if time.time_ns() - newest > (RACY_S + 0.2) * 1e9:
            return
        time.sleep(0.05)
    raise AssertionError("the files never got older than the racy window")


def ask(sock, path: str, extra: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    request = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n"
    [answer] = http_exchange(sock, request)
    return answer


@pytest.fixture
def hot(site: Path) -> Path:
    """html_page/ with a text file and a page in a subfolder, written before the server starts."""
    root = site / "html_page"
    (root / "hot.txt").write_bytes(b"version 1")
    (root / "pages").mkdir()
    (root / "pages" / "index.html").write_bytes(b"<html><body>page 1</body></html>")
    (site / "outside.txt").write_bytes(SECRET)
    return root


def test_a_cached_file_saved_again_is_served_by_the_next_request(server_factory, hot: Path) -> None:
    server = server_factory("--workers", "1")
    settled(hot, hot / "hot.txt")
    with server.connect() as sock:
        first = ask(sock, "/hot.txt")
        again = ask(sock, "/hot.txt")
        assert first[2] == again[2] == b"version 1" and first[1]["etag"] == again[1]["etag"]
        stamp = (hot / "hot.txt").stat().st_mtime_ns
        (hot / "hot.txt").write_bytes(b"version 2")  # same size, same second
        os.utime(hot / "hot.txt", ns=(stamp + 1, stamp + 1))
        status, headers, body = ask(sock, "/hot.txt")
        assert (status, body) == (200, b"version 2") and headers["etag"] != first[1]["etag"]
        assert ask(sock, "/hot.txt", b"If-None-Match: " + headers["etag"].encode() + b"\r\n")[0] == 304
        assert ask(sock, "/hot.txt", b"Range: bytes=8-\r\n")[2] == b"2"
        os.unlink(hot / "hot.txt")
        assert ask(sock, "/hot.txt")[0] == 404
        os.symlink(hot.parent / "outside.txt", hot / "hot.txt")
        status, _, body = ask(sock, "/hot.txt")
        assert status == 404 and SECRET not in body


def test_a_cached_page_edited_is_served_at_once_with_the_live_reload_script(server_factory, hot: Path) -> None:
    server = server_factory("--workers", "1")
    settled(hot, hot / "pages", hot / "pages" / "index.html")
    with server.connect() as sock:
        status, _, first = ask(sock, "/pages/")
        assert status == 200 and b"page 1" in first and b"<script" in first
        assert ask(sock, "/pages/")[2] == first
        (hot / "pages" / "index.html").write_bytes(b"<html><body>page 2</body></html>")
        status, _, body = ask(sock, "/pages/")
        assert status == 200 and b"page 2" in body and b"<script" in body


def test_large_files_leave_whole_and_in_order_when_the_socket_fills(server_factory, site: Path) -> None:
    """An 8 MiB file is more than a socket takes at once: the rest is sent as room appears, in order.

    Two requests pipelined on one connection (the whole file, then a range of
    it) and a small receive buffer: the first answer's bytes wait in the
    kernel while the second is queued behind it.
    """
    data = os.urandom(8 * 1024 * 1024)
    (site / "html_page" / "large.bin").write_bytes(data)
    server = server_factory("--workers", "1")
    with server.connect(timeout=60) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        pipelined = (b"GET /large.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"
                     b"GET /large.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=1000000-5999999\r\n\r\n")
        whole, part = http_exchange(sock, pipelined, responses=2, timeout=60)
        again = ask(sock, "/large.bin")
    assert (whole[0], len(whole[2])) == (200, len(data)) and whole[2] == data
    assert (part[0], part[1]["content-range"]) == (206, f"bytes 1000000-5999999/{len(data)}")
    assert part[2] == data[1000000:6000000]
    assert again[0] == 200 and again[2] == data


def test_a_large_file_kept_open_and_saved_is_served_new_by_the_next_request(server_factory, site: Path) -> None:
    """A large file's descriptor is kept once the file is settled; saves (rename or in place) are seen at once."""
    root = site / "html_page"
    path = root / "kept.bin"
    first = os.urandom(2 * 1024 * 1024)
    path.write_bytes(first)
    server = server_factory("--workers", "1")
    settled(root, path)
    with server.connect(timeout=60) as sock:
        assert ask(sock, "/kept.bin")[2] == first
        status, headers, body = ask(sock, "/kept.bin")  # from the kept descriptor
        assert (status, body) == (200, first)
        renamed = os.urandom(3 * 1024 * 1024)
        (root / "kept.tmp").write_bytes(renamed)
        os.replace(root / "kept.tmp", path)  # an editor's save: a new inode under the old name
        status, again, body = ask(sock, "/kept.bin")
        assert (status, body) == (200, renamed) and again["etag"] != headers["etag"]
        in_place = os.urandom(len(renamed))
        with open(path, "r+b") as f:  # the same inode, rewritten
            f.write(in_place)
        status, _, body = ask(sock, "/kept.bin", b"Range: bytes=1000-1999\r\n")
        assert (status, body) == (206, in_place[1000:2000])
        assert ask(sock, "/kept.bin")[2] == in_place
        os.unlink(path)
        assert ask(sock, "/kept.bin")[0] == 404
