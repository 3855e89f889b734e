"""Tests for devserver.handlers.static: path safety, validators, ranges, files, cache."""

from __future__ import annotations

import errno
import os
import time
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from devserver.handlers import static
from devserver.handlers.static import BadPath, StaticResponse, resolve, serve

SECRET = b"TOP SECRET"
TRUST_ALL = -(10**18)  # a racy window that trusts every file and folder, however fresh
TEN = b"0123456789"
INDEX = b"<html><body>home</body></html>"


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static, "_responses", static._Responses())
    monkeypatch.setattr(static, "_lookups", static._Lookups())


@pytest.fixture
def root(tmp_path: Path) -> str:
    """A site root next to an ``outside`` folder that must never be reachable."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    site = tmp_path / "site"
    files = {
        "index.html": INDEX,
        "ten.txt": TEN,
        "style.css": b"body{}",
        "sub/index.html": b"sub index",
        "a b/index.html": b"spaced",
        "\u00e9t\u00e9.txt": b"summer",
        "empty/.keep": b"",
        ".env": SECRET,
        ".hidden/secret.txt": SECRET,
        "zero.txt": b"",
    }
    for name, data in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    (site / "link_in.txt").symlink_to("style.css")
    (site / "link_dir").symlink_to("sub")
    (site / "link_out").symlink_to(outside / "secret.txt")
    (site / "link_out_dir").symlink_to(outside)
    (site / "peek").symlink_to(".hidden")
    (site / "evil").mkdir()
    (site / "evil" / "index.html").symlink_to(outside / "secret.txt")
    os.mkfifo(site / "fifo")
    return os.path.realpath(site)


@pytest.fixture(params=["first request", "from the cache"])
def either_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a test twice: each get() is the file's first request, or is answered from the response cache."""
    if request.param == "from the cache":
        monkeypatch.setattr(static, "_responses", static._Responses(racy_ns=TRUST_ALL))
        monkeypatch.setattr(static, "_lookups", static._Lookups(racy_ns=TRUST_ALL))
        monkeypatch.setitem(PRIME, "on", True)


PRIME = {"on": False}  # get() first asks for the file plainly, so that the response cache holds it


def get(root: str, path: str, method: str = "GET", **kw: object) -> StaticResponse:
    headers = {k.replace("_", "-"): str(v) for k, v in kw.items() if k not in ("html_transform", "inline_limit")}
    opts = {k: v for k, v in kw.items() if k in ("html_transform", "inline_limit")}
    if PRIME["on"]:
        plain = serve(root, "GET", path, {}, **opts)  # type: ignore[arg-type]
        if plain.file is not None:
            plain.file.close()
        elif plain.status == 200 and plain.path == lexical(root, path) and os.stat(plain.path).st_mtime < time.time():
            # No link on the way and no mtime in the future: the cache must hold it now.
            assert static._responses.get(root, path, opts.get("html_transform")) is not None, "not cached"
    return serve(root, method, path, headers, **opts)  # type: ignore[arg-type]


def lexical(root: str, path: str) -> str:
    """The file a URL path names under ``root`` if no link is followed (a folder: its index.html)."""
    name = unquote_to_bytes(path.encode("latin-1")).decode()
    full = os.path.join(root, name.lstrip("/"))
    return os.path.join(full, "index.html") if name.endswith("/") else full


def header(resp: StaticResponse, name: str) -> str | None:
    found = [v for k, v in resp.headers if k.lower() == name.lower()]
    assert len(found) <= 1, f"duplicate {name}"
    return found[0] if found else None


def content(resp: StaticResponse) -> bytes:
    """The bytes the caller would send, closing ``file`` if there is one."""
    if resp.file is None:
        return resp.body
    with resp.file as f:
        f.seek(resp.offset)
        return f.read(resp.length)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------------------------- mapping

@pytest.mark.parametrize("path, body", [
    ("/", INDEX),
    ("/index.html", INDEX),
    ("/sub/", b"sub index"),
    ("/sub/index.html", b"sub index"),
    ("/a%20b/", b"spaced"),
    ("/%C3%A9t%C3%A9.txt", b"summer"),
    ("/\u00c3\u00a9t\u00c3\u00a9.txt", b"summer"),  # raw UTF-8 bytes, latin-1 decoded by the caller
    ("/link_in.txt", b"body{}"),  # symlink that stays inside: allowed
    ("/link_dir/", b"sub index"),
    ("/link_dir/index.html", b"sub index"),
    ("/zero.txt", b""),
])
@pytest.mark.usefixtures("either_way")
def test_serves_files(root: str, path: str, body: bytes) -> None:
    resp = get(root, path)
    assert resp.status == 200
    assert content(resp) == body
    assert header(resp, "Content-Length") == str(len(body))
    assert resp.path is not None and resp.path.startswith(root)


@pytest.mark.parametrize("path, location", [
    ("/sub", "/sub/"),
    ("/a%20b", "/a%20b/"),
    ("/link_dir", "/link_dir/"),
    ("/\u00c3\u00a9x", None),  # not a folder: 404, no redirect
])
@pytest.mark.usefixtures("either_way")
def test_folder_redirect(root: str, path: str, location: str | None) -> None:
    resp = get(root, path)
    assert resp.status == (301 if location else 404)
    assert header(resp, "Location") == location


def test_redirect_location_is_encoded(root: str, tmp_path: Path) -> None:
    (Path(root) / "\u00e9").mkdir()
    (Path(root) / "\u00e9" / "index.html").write_bytes(b"x")
    resp = get(root, "/\u00c3\u00a9")
    assert resp.status == 301
    assert header(resp, "Location") == "/%C3%A9/"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.usefixtures("either_way")
def test_not_found_page(root: str, method: str) -> None:
    resp = get(root, "/nope.html", method)
    assert resp.status == 404
    assert header(resp, "Content-Type") == "text/html; charset=utf-8"
    assert header(resp, "Cache-Control") == "no-cache"
    page = static.error_page(404, "File Not found: /nope.html")
    assert header(resp, "Content-Length") == str(len(page))
    assert resp.body == (page if method == "GET" else b"")
    assert b"File Not found" in page
    assert resp.path is None


@pytest.mark.parametrize("path, status", [
    ("/../outside/secret.txt", 404),
    ("/%2e%2e/outside/secret.txt", 404),
    ("/%2E%2E/outside/secret.txt", 404),
    ("/.%2e/outside/secret.txt", 404),
    ("/sub/../../outside/secret.txt", 404),
    ("/sub/..%2f..%2foutside%2fsecret.txt", 404),
    ("/sub%2f..%2f..%2foutside%2fsecret.txt", 404),
    ("/..%5c..%5coutside%5csecret.txt", 404),
    ("/sub\\..\\..\\outside\\secret.txt", 404),
    ("//etc/passwd", 404),
    ("/%2fetc/passwd", 404),
    ("/sub//index.html", 404),
    ("/C:/Windows/win.ini", 404),
    ("/c%3a/Windows/win.ini", 404),
    ("/link_out", 404),  # symlink leading out of the root
    ("/link_out_dir/secret.txt", 404),
    ("/evil/", 404),  # index.html is a symlink out
    ("/evil", 404),
    ("/.env", 404),
    ("/%2eenv", 404),
    ("/.hidden/secret.txt", 404),
    ("/peek/secret.txt", 404),  # symlink into a hidden folder
    ("/fifo", 404),
    ("/ten.txt/", 404),
    ("/empty", 301),  # folder without index.html: to the slash form, which lists it (tests/test_listing.py) ...
    ("/empty/", 200),  # ... while resolve(), the APP's "files win" test, still finds nothing
    ("relative.txt", 404),
    ("*", 404),
    ("/%00", 400),
    ("/ten.txt%00.html", 400),
    ("/ten.txt\x00", 400),
    ("/%zz", 400),
    ("/%4", 400),
    ("/%", 400),
    ("/%C3%28", 400),  # invalid UTF-8
    ("/%ED%A0%80", 400),  # an encoded surrogate is not UTF-8
    ("/\u0100", 400),  # cannot come from a latin-1 decoded request line
])
@pytest.mark.usefixtures("either_way")
def test_nothing_escapes_the_root(root: str, path: str, status: int) -> None:
    for method in ("GET", "HEAD"):
        resp = get(root, path, method)
        assert resp.status == status
        assert header(resp, "Content-Type") == "text/html; charset=utf-8"
        assert SECRET not in resp.body and resp.file is None and resp.path is None
    if status == 400:
        with pytest.raises(BadPath) as info:
            resolve(root, path)
        assert isinstance(info.value, ValueError) and info.value.status == 400
    else:
        assert resolve(root, path) is None


@pytest.mark.parametrize("path, real", [
    ("/", "index.html"),
    ("/sub", "sub/index.html"),
    ("/sub/", "sub/index.html"),
    ("/link_in.txt", "style.css"),
    ("/link_dir/", "sub/index.html"),
])
def test_resolve(root: str, path: str, real: str) -> None:
    assert resolve(root, path) == os.path.join(root, real)


# ------------------------------------------------------------------------- methods

@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get"])
def test_method_not_allowed(root: str, method: str) -> None:
    resp = get(root, "/ten.txt", method)
    assert resp.status == 405
    assert header(resp, "Allow") == "GET, HEAD"
    assert header(resp, "Content-Type") == "text/html; charset=utf-8"


@pytest.mark.parametrize("inline_limit", [256 * 1024, 4])
@pytest.mark.usefixtures("either_way")
def test_head_has_get_headers_and_no_body(root: str, inline_limit: int) -> None:
    got = get(root, "/ten.txt", inline_limit=inline_limit)
    head = get(root, "/ten.txt", "HEAD", inline_limit=inline_limit)
    content(got)
    assert head.status == 200 and head.headers == got.headers
    assert head.body == b"" and head.file is None and head.length == 0
    assert header(head, "Content-Length") == "10"


# --------------------------------------------------------------------- media types

@pytest.mark.parametrize("name, ctype", [
    ("a.html", "text/html; charset=utf-8"),
    ("a.css", "text/css; charset=utf-8"),
    ("a.txt", "text/plain; charset=utf-8"),
    ("a.js", "text/javascript; charset=utf-8"),
    ("a.mjs", "text/javascript; charset=utf-8"),
    ("a.json", "application/json; charset=utf-8"),
    ("a.svg", "image/svg+xml; charset=utf-8"),
    ("a.PNG", "image/png"),
    ("a.woff2", "font/woff2"),
    ("a.wasm", "application/wasm"),
    ("a.tar.gz", "application/gzip"),
    ("README", "application/octet-stream"),
    ("a.unknownext", "application/octet-stream"),
])
@pytest.mark.usefixtures("either_way")
def test_content_type(root: str, name: str, ctype: str) -> None:
    (Path(root) / name).write_bytes(b"x")
    assert header(get(root, "/" + name), "Content-Type") == ctype


@pytest.mark.usefixtures("either_way")
def test_content_type_follows_the_requested_name(root: str) -> None:
    (Path(root) / "data.json").symlink_to("ten.txt")
    assert header(get(root, "/data.json"), "Content-Type") == "application/json; charset=utf-8"


# ---------------------------------------------------------------------- validators

@pytest.mark.usefixtures("either_way")
def test_validator_headers(root: str) -> None:
    path = Path(root) / "ten.txt"
    os.utime(path, ns=(1_600_000_000_123_456_789,) * 2)
    resp = get(root, "/ten.txt")
    st = path.stat()
    assert header(resp, "ETag") == f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'
    assert header(resp, "Last-Modified") == formatdate(1_600_000_000, usegmt=True)
    assert header(resp, "Cache-Control") == "no-cache"
    assert header(resp, "Accept-Ranges") == "bytes"
    assert header(resp, "Content-Length") == "10"
    os.utime(path, ns=(1_600_000_000_123_456_790,) * 2)
    assert header(get(root, "/ten.txt"), "ETag") != header(resp, "ETag")


@pytest.mark.usefixtures("either_way")
def test_last_modified_never_in_the_future(root: str) -> None:
    path = Path(root) / "ten.txt"
    os.utime(path, (4_000_000_000, 4_000_000_000))
    lm = header(get(root, "/ten.txt"), "Last-Modified")
    assert lm is not None and static._http_date(lm) is not None
    assert static._http_date(lm) < 4_000_000_000  # type: ignore[operator]


EARLY = "Sun, 06 Nov 1994 08:49:37 GMT"
LATE = "Fri, 01 Jan 2100 00:00:00 GMT"


@pytest.mark.parametrize("conditions, status", [
    ({"if-none-match": "{etag}"}, 304),
    ({"if-none-match": "W/{etag}"}, 304),  # weak comparison
    ({"if-none-match": '"other", {etag}'}, 304),
    ({"if-none-match": "*"}, 304),
    ({"if-none-match": '"other"'}, 200),
    ({"if-none-match": "garbage"}, 200),
    ({"if-modified-since": "{lm}"}, 304),
    ({"if-modified-since": LATE}, 304),
    ({"if-modified-since": EARLY}, 200),
    ({"if-modified-since": "Sunday, 06-Nov-94 08:49:37 GMT"}, 200),
    ({"if-modified-since": "not a date"}, 200),  # §13.1.3: ignored
    ({"if-none-match": '"other"', "if-modified-since": "{lm}"}, 200),  # INM wins
    ({"if-none-match": "{etag}", "if-modified-since": EARLY}, 304),
    ({"if-match": "{etag}"}, 200),
    ({"if-match": "*"}, 200),
    ({"if-match": '"other"'}, 412),
    ({"if-match": "W/{etag}"}, 412),  # strong comparison
    ({"if-unmodified-since": EARLY}, 412),
    ({"if-unmodified-since": "{lm}"}, 200),
    ({"if-unmodified-since": "bogus"}, 200),
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.usefixtures("either_way")
def test_conditional_requests(root: str, conditions: dict[str, str], status: int, method: str) -> None:
    first = get(root, "/ten.txt")
    etag, lm = header(first, "ETag"), header(first, "Last-Modified")
    hdrs = {k: v.replace("{etag}", etag or "").replace("{lm}", lm or "") for k, v in conditions.items()}
    resp = serve(root, method, "/ten.txt", hdrs)
    assert resp.status == status
    if status == 304:
        assert resp.body == b"" and resp.file is None
        assert header(resp, "Content-Length") is None
        assert header(resp, "ETag") == etag
        assert header(resp, "Last-Modified") == lm
        assert header(resp, "Cache-Control") == "no-cache"
    elif status == 200:
        assert resp.body == (TEN if method == "GET" else b"")


def test_request_headers_keeps_what_serve_reads() -> None:
    pairs = [("Host", "x"), ("IF-None-Match", '"a"'), ("Range", "bytes=0-1"), ("Referer", "/r"),
             ("If-None-Match", '"b"'), ("if-modified-since", EARLY), ("Accept", "*/*"), ("If-Range", '"c"'),
             ("If-Match", "*"), ("If-Unmodified-Since", LATE), ("I", "short"), ("", "empty")]
    assert static.request_headers(pairs) == {
        "if-none-match": '"b"', "range": "bytes=0-1", "if-modified-since": EARLY, "if-range": '"c"',
        "if-match": "*", "if-unmodified-since": LATE,
    }
    assert static.request_headers([("Host", "x"), ("User-Agent", "wrk")]) == {}


# -------------------------------------------------------------------------- ranges

@pytest.mark.parametrize("spec, status, body, crange", [
    ("bytes=0-3", 206, b"0123", "bytes 0-3/10"),
    ("bytes=5-", 206, b"56789", "bytes 5-9/10"),
    ("bytes=-3", 206, b"789", "bytes 7-9/10"),
    ("bytes=-20", 206, TEN, "bytes 0-9/10"),
    ("bytes=8-100", 206, b"89", "bytes 8-9/10"),
    ("bytes=9-9", 206, b"9", "bytes 9-9/10"),
    ("BYTES = 0-0", 206, b"0", "bytes 0-0/10"),
    ("bytes=10-", 416, None, "bytes */10"),
    ("bytes=10-20", 416, None, "bytes */10"),
    ("bytes=-0", 416, None, "bytes */10"),
    ("bytes=0-1,3-4", 200, TEN, None),  # several ranges: whole file
    ("bytes=3-1", 200, TEN, None),
    ("bytes=abc", 200, TEN, None),
    ("bytes=", 200, TEN, None),
    ("bytes=-", 200, TEN, None),
    ("items=0-1", 200, TEN, None),
    ("bytes=0-" + "9" * 5000, 200, TEN, None),
])
@pytest.mark.parametrize("inline_limit", [256 * 1024, 4])
@pytest.mark.usefixtures("either_way")
def test_ranges(root: str, spec: str, status: int, body: bytes | None, crange: str | None,
                inline_limit: int) -> None:
    resp = get(root, "/ten.txt", range=spec, inline_limit=inline_limit)
    assert resp.status == status
    assert header(resp, "Content-Range") == crange
    if body is not None:
        assert content(resp) == body
        assert header(resp, "Content-Length") == str(len(body))
    else:
        assert header(resp, "Content-Type") == "text/html; charset=utf-8"


@pytest.mark.usefixtures("either_way")
def test_range_ignored_on_head_and_empty_file(root: str) -> None:
    assert get(root, "/ten.txt", "HEAD", range="bytes=0-1").status == 200
    assert get(root, "/zero.txt", range="bytes=0-").status == 200


@pytest.mark.parametrize("if_range, status", [
    ("{etag}", 206),
    ('"stale"', 200),
    ("W/{etag}", 200),  # a weak tag never matches If-Range
    ("{lm}", 206),
    (EARLY, 200),
    ("nonsense", 200),
])
@pytest.mark.usefixtures("either_way")
def test_if_range(root: str, if_range: str, status: int) -> None:
    first = get(root, "/ten.txt")
    value = if_range.replace("{etag}", header(first, "ETag") or "").replace("{lm}", header(first, "Last-Modified") or "")
    resp = get(root, "/ten.txt", range="bytes=2-4", if_range=value)
    assert resp.status == status
    assert resp.body == (b"234" if status == 206 else TEN)


# --------------------------------------------------------------------- large files

@pytest.mark.parametrize("spec, offset, length", [
    (None, 0, 100),
    ("bytes=10-19", 10, 10),
    ("bytes=-5", 95, 5),
])
def test_large_file_is_returned_open(root: str, spec: str | None, offset: int, length: int) -> None:
    data = bytes(range(100))
    (Path(root) / "big.bin").write_bytes(data)
    kw = {"range": spec} if spec else {}
    resp = get(root, "/big.bin", inline_limit=16, **kw)
    assert resp.body == b"" and resp.file is not None and not resp.file.closed
    assert (resp.offset, resp.length) == (offset, length)
    assert header(resp, "Content-Length") == str(length)
    assert resp.path == os.path.join(root, "big.bin")
    assert content(resp) == data[offset:offset + length]


@pytest.mark.parametrize("method, kw, status", [
    ("HEAD", {}, 200),
    ("GET", {"if_none_match": "*"}, 304),
    ("GET", {"range": "bytes=500-"}, 416),
    ("GET", {"if_match": '"x"'}, 412),
])
def test_large_file_closed_when_not_sent(root: str, method: str, kw: dict[str, str], status: int) -> None:
    (Path(root) / "big.bin").write_bytes(b"x" * 100)
    before = open_fds()
    resp = get(root, "/big.bin", method, inline_limit=16, **kw)
    assert resp.status == status and resp.file is None
    assert open_fds() == before


# ------------------------------------------------------------------ html_transform

def inject(data: bytes) -> bytes:
    return data.replace(b"</body>", b"<script>reload()</script></body>")


@pytest.mark.usefixtures("either_way")
def test_html_transform(root: str) -> None:
    plain = get(root, "/")
    resp = get(root, "/", html_transform=inject)
    assert resp.body == inject(INDEX)
    assert header(resp, "Content-Length") == str(len(inject(INDEX)))
    assert header(resp, "ETag") != header(plain, "ETag")
    other = get(root, "/", html_transform=lambda b: b + b"<!-- v2 -->")
    assert header(other, "ETag") not in (header(resp, "ETag"), header(plain, "ETag"))
    # Validators belong to the transformed representation.
    assert get(root, "/", html_transform=inject, if_none_match=header(resp, "ETag")).status == 304
    assert get(root, "/", html_transform=inject, if_none_match=header(plain, "ETag")).status == 200
    head = get(root, "/", "HEAD", html_transform=inject)
    assert head.headers == resp.headers and head.body == b""


@pytest.mark.usefixtures("either_way")
def test_html_transform_only_for_html_and_ranges_use_transformed_bytes(root: str) -> None:
    assert get(root, "/style.css", html_transform=inject).body == b"body{}"
    resp = get(root, "/", html_transform=inject, range="bytes=-16")
    assert resp.status == 206 and resp.body == inject(INDEX)[-16:]


def test_html_transform_reads_large_html_whole(root: str) -> None:
    page = b"<html><body>" + b"x" * 1000 + b"</body></html>"
    (Path(root) / "big.html").write_bytes(page)
    resp = get(root, "/big.html", html_transform=inject, inline_limit=16)
    assert resp.file is None and resp.body == inject(page)


def test_html_transform_failure_is_500(root: str) -> None:
    def broken(data: bytes) -> bytes:
        raise RuntimeError("boom")

    resp = get(root, "/", html_transform=broken)
    assert resp.status == 500 and b"boom" in resp.body
    assert header(resp, "Content-Type") == "text/html; charset=utf-8"


# -------------------------------------------------------------------------- errors

@pytest.mark.parametrize("err, status", [
    (errno.EACCES, 403),
    (errno.EPERM, 403),
    (errno.ENOENT, 404),  # deleted between resolve and open
    (errno.EIO, 500),
])
@pytest.mark.parametrize("inline_limit", [256 * 1024, 4])
def test_open_errors(root: str, monkeypatch: pytest.MonkeyPatch, err: int, status: int, inline_limit: int) -> None:
    # Tests run as root, which reads chmod 000 files, so make open() fail instead.
    target = os.path.join(root, "ten.txt")
    real_open = os.open

    def fake_open(path: str, flags: int, *args: int) -> int:
        if os.fspath(path) == target:
            raise OSError(err, os.strerror(err), path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(static.os, "open", fake_open)
    resp = get(root, "/ten.txt", inline_limit=inline_limit)
    assert resp.status == status and resp.file is None and resp.path is None
    assert header(resp, "Content-Type") == "text/html; charset=utf-8"
    assert TEN not in resp.body


# --------------------------------------------------------------------------- cache

def test_rewrite_same_size_same_mtime_is_never_stale(root: str) -> None:
    path = Path(root) / "hot.txt"
    stamp = 1_700_000_000_000_000_000
    for text in (b"aaaa", b"bbbb", b"cccc"):
        path.write_bytes(text)
        os.utime(path, ns=(stamp, stamp))
        assert get(root, "/hot.txt").body == text


def test_fresh_files_are_not_cached(root: str) -> None:
    (Path(root) / "new.txt").write_bytes(b"new")
    get(root, "/new.txt")
    assert static._responses._entries == {}


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file and folder old enough to be kept (no racy window); returns the paths os.open opened."""
    monkeypatch.setattr(static, "_responses", static._Responses(racy_ns=TRUST_ALL))
    monkeypatch.setattr(static, "_lookups", static._Lookups(racy_ns=TRUST_ALL))
    opens: list[str] = []
    real_open = os.open

    def counting_open(path: str, flags: int, *args: int) -> int:
        opens.append(os.fspath(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(static.os, "open", counting_open)
    return opens


def test_cache_hit_skips_open_and_change_invalidates(root: str, trusted: list[str]) -> None:
    path = Path(root) / "hot.txt"
    path.write_bytes(b"one")
    assert get(root, "/hot.txt").body == b"one"
    assert get(root, "/hot.txt").body == b"one"
    assert len(trusted) == 1
    path.write_bytes(b"two")
    os.utime(path, ns=(1, 1))
    assert get(root, "/hot.txt").body == b"two"
    assert len(trusted) == 2


def test_a_cached_file_saved_again_in_the_same_second_is_served_at_once(root: str, trusted: list[str]) -> None:
    """Same size, same second: only mtime_ns (and ctime) tell the two saves apart."""
    path = Path(root) / "hot.txt"
    second = 1_700_000_000 * 10**9
    path.write_bytes(b"v1")
    os.utime(path, ns=(second + 1, second + 1))
    assert get(root, "/hot.txt").body == b"v1"
    assert get(root, "/hot.txt").body == b"v1" and len(trusted) == 1  # from the cache
    path.write_bytes(b"v2")
    os.utime(path, ns=(second + 2, second + 2))
    resp = get(root, "/hot.txt")
    assert resp.body == b"v2" and len(trusted) == 2
    assert header(resp, "Last-Modified") == formatdate(1_700_000_000, usegmt=True)


def test_a_kept_large_file_is_opened_per_response_and_never_held_open(root: str, trusted: list[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """After its first request a large file's headers are kept: a response opens it, HEAD and 304 do not."""
    data = bytes(range(256)) * 4
    (Path(root) / "big.bin").write_bytes(data)
    built: list[object] = []
    real = static._representation
    monkeypatch.setattr(static, "_representation", lambda *args: built.append(args) or real(*args))
    before = open_fds()
    assert content(get(root, "/big.bin", inline_limit=16)) == data
    first, second = get(root, "/big.bin", inline_limit=16), get(root, "/big.bin", inline_limit=16, range="bytes=10-19")
    assert first.file is not None and second.file is not None and first.file.fileno() != second.file.fileno()
    assert content(first) == data and first.file.closed and not second.file.closed  # each its own to close
    assert (second.status, content(second)) == (206, data[10:20])
    assert len(trusted) == 3 and len(built) == 1
    for method, kw in (("HEAD", {}), ("GET", {"if_none_match": header(first, "ETag")})):
        answer = get(root, "/big.bin", method, inline_limit=16, **kw)
        assert answer.status in (200, 304) and answer.file is None and answer.length == 0
    assert len(trusted) == 3 and len(built) == 1 and open_fds() == before


@pytest.mark.parametrize("save", ["in place, same size and mtime", "replaced by a rename"])
def test_a_large_file_kept_open_and_saved_is_sent_new(root: str, trusted: list[str], save: str) -> None:
    path = Path(root) / "big.bin"
    stamp = 1_700_000_000 * 10**9
    path.write_bytes(b"a" * 100)
    os.utime(path, ns=(stamp, stamp))
    assert content(get(root, "/big.bin", inline_limit=16)) == b"a" * 100
    etag = header(get(root, "/big.bin", "HEAD", inline_limit=16), "ETag")
    if save == "replaced by a rename":
        (Path(root) / "new.bin").write_bytes(b"b" * 120)
        os.replace(Path(root) / "new.bin", path)
    else:
        with open(path, "r+b") as f:
            f.write(b"b" * 100)
        os.utime(path, ns=(stamp, stamp))
    resp = get(root, "/big.bin", inline_limit=16)
    assert content(resp) == path.read_bytes() and header(resp, "Content-Length") == str(path.stat().st_size)
    assert header(resp, "ETag") != etag or save.startswith("in place")  # the etag is inode, size and mtime
    assert get(root, "/big.bin", inline_limit=16, if_none_match=etag).status == (304 if save.startswith("in place")
                                                                                  else 200)


def test_a_kept_large_file_saved_between_its_check_and_its_open_is_not_sent_under_old_headers(
        root: str, trusted: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(root) / "big.bin"
    path.write_bytes(b"a" * 100)
    content(get(root, "/big.bin", inline_limit=16))
    real = static._Responses.file_of

    def saved_first(ready: object) -> object:
        (Path(root) / "new.bin").write_bytes(b"b" * 150)
        os.replace(Path(root) / "new.bin", path)
        return real(ready)  # type: ignore[arg-type]

    monkeypatch.setattr(static._Responses, "file_of", staticmethod(saved_first))
    resp = get(root, "/big.bin", inline_limit=16)
    assert content(resp) == b"b" * 150 and header(resp, "Content-Length") == "150"


def test_a_cached_file_deleted_is_404(root: str, trusted: list[str]) -> None:
    assert get(root, "/sub/index.html").body == b"sub index"
    assert get(root, "/sub/").body == b"sub index"
    os.unlink(os.path.join(root, "sub", "index.html"))
    assert get(root, "/sub/index.html").status == 404
    listed = get(root, "/sub/")  # the folder's listing now, without the page
    assert listed.status == 200 and b"Index of /sub/" in listed.body and b"sub index" not in listed.body
    assert resolve(root, "/sub/") is None


def test_a_cached_file_swapped_for_a_link_out_of_the_root_is_refused(root: str, trusted: list[str]) -> None:
    assert get(root, "/ten.txt").body == TEN
    assert get(root, "/ten.txt").body == TEN and len(trusted) == 1
    os.unlink(os.path.join(root, "ten.txt"))
    os.symlink(os.path.join(os.path.dirname(root), "outside", "secret.txt"), os.path.join(root, "ten.txt"))
    resp = get(root, "/ten.txt")
    assert resp.status == 404 and SECRET not in resp.body


def test_a_folder_moved_out_and_linked_back_is_refused(root: str, trusted: list[str]) -> None:
    """The file keeps its inode and times, and so does its folder: only the folder above changes."""
    deep = Path(root, "a", "b")
    deep.mkdir(parents=True)
    (deep / "c.txt").write_bytes(b"was inside")
    assert get(root, "/a/b/c.txt").body == b"was inside"
    assert resolve(root, "/a/b/c.txt") == str(deep / "c.txt")
    outside = os.path.join(os.path.dirname(root), "outside")
    os.rename(os.path.join(root, "a"), os.path.join(outside, "a"))
    os.symlink(os.path.join(outside, "a"), os.path.join(root, "a"))
    assert resolve(root, "/a/b/c.txt") is None
    resp = get(root, "/a/b/c.txt")
    assert resp.status == 404 and b"was inside" not in resp.body


def test_a_file_reached_by_a_link_is_not_cached(root: str, trusted: list[str]) -> None:
    """Retargeting a link changes only its folder, which a cached file's check does not look at."""
    assert get(root, "/link_in.txt").body == b"body{}"
    assert get(root, "/link_in.txt").body == b"body{}" and len(trusted) == 2
    os.unlink(os.path.join(root, "link_in.txt"))
    os.symlink("ten.txt", os.path.join(root, "link_in.txt"))
    assert get(root, "/link_in.txt").body == TEN


def test_cached_html_is_kept_per_transform(root: str, trusted: list[str]) -> None:
    calls: list[bytes] = []

    def counting(data: bytes) -> bytes:
        calls.append(data)
        return inject(data)

    for _ in range(3):
        assert get(root, "/", html_transform=counting).body == inject(INDEX)
    assert len(calls) == 1  # transformed once, then served from the cache
    assert get(root, "/").body == INDEX  # the untransformed page is another entry
    assert get(root, "/", html_transform=lambda b: b + b"<!-- v2 -->").body == INDEX + b"<!-- v2 -->"
    (Path(root) / "index.html").write_bytes(b"<html><body>new</body></html>")
    assert get(root, "/", html_transform=counting).body == inject(b"<html><body>new</body></html>")
    assert len(calls) == 2


def test_cache_is_bounded(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = static._Responses(max_bytes=20, max_file=10, max_entries=3, racy_ns=TRUST_ALL)
    monkeypatch.setattr(static, "_responses", cache)
    monkeypatch.setattr(static, "_lookups", static._Lookups(racy_ns=TRUST_ALL))
    for name in "abcd":
        (Path(root) / f"{name}.txt").write_bytes(name.encode() * 8)
        assert get(root, f"/{name}.txt").body == name.encode() * 8
    assert [key[1] for key in cache._entries] == ["/c.txt", "/d.txt"]  # 8 + 8 bytes: a third would pass 20
    assert cache._bytes == 16
    for name in "ef":
        (Path(root) / f"{name}.txt").write_bytes(b"e")
        get(root, f"/{name}.txt")
    assert [key[1] for key in cache._entries] == ["/d.txt", "/e.txt", "/f.txt"]  # at most 3 entries
    (Path(root) / "big.txt").write_bytes(b"x" * 11)  # over max_file: never kept
    assert get(root, "/big.txt").body == b"x" * 11
    assert "/big.txt" not in [key[1] for key in cache._entries]
    assert cache._bytes == sum(len(e.rep.data or b"") for e in cache._entries.values()) == 10


# ------------------------------------------------------------ remembered misses ("files win" for an APP)

RACY_NS = 30_000_000  # a short racy window for these tests; the default is 2 s


@pytest.fixture
def locates(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Misses remembered after RACY_NS; returns the list of paths _locate walked."""
    monkeypatch.setattr(static, "_lookups", static._Lookups(racy_ns=RACY_NS))
    walked: list[str] = []
    real_locate = static._locate

    def counting(root: str, raw_path: str) -> object:
        walked.append(raw_path)
        return real_locate(root, raw_path)

    monkeypatch.setattr(static, "_locate", counting)
    return walked


def settle(*folders: str) -> None:
    """Wait (bounded) until every folder's last change is older than the racy window."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        newest = max(max(os.stat(f).st_mtime_ns, os.stat(f).st_ctime_ns) for f in folders)
        if time.time_ns() - newest > RACY_NS:
            return
        time.sleep(0.005)
    raise AssertionError("folders never settled")


def test_a_miss_is_not_walked_again(root: str, locates: list[str]) -> None:
    settle(root)
    for _ in range(10):
        assert resolve(root, "/api/items/7") is None
    assert locates == ["/api/items/7"]


@pytest.mark.parametrize("path, create", [
    ("/new.txt", "new.txt"),
    ("/sub/new.txt", "sub/new.txt"),
    ("/deep/er/new.txt", "deep/er/new.txt"),
    ("/empty/", "empty/index.html"),
    ("/empty", "empty/index.html"),
])
def test_a_file_created_after_a_miss_is_found_at_once(root: str, locates: list[str], path: str,
                                                       create: str) -> None:
    settle(root, os.path.join(root, "sub"), os.path.join(root, "empty"))
    assert resolve(root, path) is None
    assert resolve(root, path) is None
    assert locates == [path]  # the second answer came from the remembered miss
    target = Path(root, create)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"new")
    assert resolve(root, path) == str(target)


def test_a_removed_and_recreated_folder_is_seen(root: str, locates: list[str]) -> None:
    sub = Path(root, "sub")
    settle(root, str(sub))
    assert resolve(root, "/sub/later.txt") is None
    (sub / "index.html").unlink()
    sub.rmdir()
    sub.mkdir()
    (sub / "later.txt").write_bytes(b"x")
    assert resolve(root, "/sub/later.txt") == str(sub / "later.txt")


def test_misses_below_a_symlink_are_not_remembered(root: str, locates: list[str]) -> None:
    settle(root, os.path.join(root, "sub"))
    assert resolve(root, "/link_dir/missing.txt") is None
    assert resolve(root, "/link_dir/missing.txt") is None
    assert locates == ["/link_dir/missing.txt"] * 2


def test_a_folder_changed_within_the_racy_window_is_not_trusted(root: str, locates: list[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static._lookups, "racy_ns", 60_000_000_000)  # the root changed less than a minute ago
    assert resolve(root, "/missing.txt") is None
    assert resolve(root, "/missing.txt") is None
    assert locates == ["/missing.txt"] * 2


def test_a_root_that_does_not_exist_answers_without_a_walk_until_it_is_made(tmp_path: Path,
                                                                           locates: list[str]) -> None:
    # An APP run in a project folder with no html_page/: its "files win" lookup is one check of the root.
    root = str(tmp_path / "html_page")
    for _ in range(3):
        assert resolve(root, "/") is None
        assert resolve(root, "/api/items/7") is None
        assert get(root, "/api/items/7").status == 404
    assert locates == []
    with pytest.raises(BadPath):
        resolve(root, "/bad%zz")  # refused as under a root that exists
    assert get(root, "/bad%zz").status == 400
    os.mkdir(root)
    Path(root, "api").mkdir()
    Path(root, "api", "items").write_bytes(b"a file now")  # files win: the next request serves it
    assert resolve(root, "/api/items") == os.path.join(root, "api", "items")
    assert get(root, "/api/items").body == b"a file now"
    Path(root, "index.html").write_bytes(b"<p>home</p>")
    assert resolve(root, "/") == os.path.join(root, "index.html")


def test_a_file_found_is_not_walked_again(root: str, locates: list[str]) -> None:
    settle(root, os.path.join(root, "sub"))
    for _ in range(5):
        assert get(root, "/ten.txt").body == TEN
        assert get(root, "/sub/").body == b"sub index"
    assert locates == ["/ten.txt", "/sub/"]


def test_a_file_removed_after_it_was_found_is_gone_at_once(root: str, locates: list[str]) -> None:
    settle(root)
    assert resolve(root, "/ten.txt") == os.path.join(root, "ten.txt")
    os.unlink(os.path.join(root, "ten.txt"))
    assert resolve(root, "/ten.txt") is None
    assert get(root, "/ten.txt").status == 404


def test_a_file_swapped_for_a_link_out_of_the_root_is_not_served(root: str, locates: list[str]) -> None:
    settle(root)
    assert get(root, "/ten.txt").body == TEN
    os.unlink(os.path.join(root, "ten.txt"))
    os.symlink(os.path.join(os.path.dirname(root), "outside", "secret.txt"), os.path.join(root, "ten.txt"))
    response = get(root, "/ten.txt")
    assert response.status == 404 and SECRET not in response.body


def test_a_page_that_is_a_link_is_not_remembered(root: str, locates: list[str]) -> None:
    settle(root, os.path.join(root, "evil"))
    assert get(root, "/evil/").status == 404  # its index.html leads outside
    assert get(root, "/evil/").status == 404
    assert locates == ["/evil/", "/evil/"]
