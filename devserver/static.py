"""Static files: map a URL path to a file under the root and build the response.

Pure logic, no sockets: :func:`serve` returns a :class:`StaticResponse` and the
caller frames and writes it (``body`` bytes, or ``file`` for ``os.sendfile``).

Path safety (decided by :func:`resolve`)
----------------------------------------
The raw path is split on ``/`` *before* percent-decoding, so an encoded slash
never makes a new segment.  Then, per segment:

* bad escape (``%zz``, ``%4``), invalid UTF-8 or NUL (``%00``)  -> 400 (BadPath)
* ``.``, ``..``, ``%2e%2e``, any name starting with ``.``       -> 404
* ``%2f``, ``%5c`` or a literal backslash inside a segment       -> 404
* an empty segment (``//etc/passwd``, ``/a//b``), a drive letter  -> 404

A 400 says "not a path at all"; a 404 reveals nothing about what lies outside
the root.  The *real* path (symlinks resolved) must be inside ``root`` with no
hidden segment below it: a symlink that stays inside is served, one that leads
out is a 404.  Only regular files are served (a FIFO is a 404).  A folder
serves its ``index.html``; named without the trailing slash it gets a 301 to
the slash form (so relative links resolve); without ``index.html`` it is 404.

Other decisions
---------------
* Any method but GET/HEAD is 405 with ``Allow: GET, HEAD``.  HEAD gets GET's
  headers, no body, and Range is ignored for it (RFC 9110 §14.2: GET only).
* Several ranges, a malformed Range, or any Range on an empty file: ignored,
  the whole file is sent (RFC 9110 §14.2 allows ignoring Range).
* ``html_transform`` output *is* the representation: its ETag gets a hash
  suffix, Content-Length is its length and Range slices it, so a 206 never
  mixes two representations under one validator.  Such HTML is read whole.
* The small-file cache is checked against a fresh stat on every request
  (mtime_ns, ctime_ns, size, inode, device) and only holds files whose
  timestamps are older than ``racy_ns``: two writes within one timestamp tick
  look identical, so a just-written file is never trusted (git's "racy clean").
* Where a URL path led is remembered, a file or nothing, so neither a file
  nor an APP's route (the "files win" test) costs a walk of the filesystem
  per request.  A remembered answer is checked with one ``stat`` of the
  deepest folder along the path (for a file, its folder): creating,
  removing or renaming anything in a folder changes its mtime/ctime, so a
  file that appears or goes is seen at once.  Paths with a symlink on the
  way are never remembered (a link's target can change without its folder
  changing), nor those whose folder changed within ``racy_ns`` (a second
  change in the same timestamp tick would not show).
* Error pages carry ``Cache-Control: no-cache``: a 404 is heuristically
  cacheable (RFC 9110 §15.1), which is wrong for a dev server.
"""

from __future__ import annotations

import errno
import hashlib
import mimetypes
import os
import re
import stat
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache
from typing import BinaryIO, NamedTuple
from urllib.parse import quote

from devserver.httpdate import imf_fixdate
from devserver.pages import error_page

__all__ = ["BadPath", "StaticResponse", "content_type", "resolve", "serve"]

HTML = "text/html; charset=utf-8"
ALLOW = "GET, HEAD"
NO_CACHE = ("Cache-Control", "no-cache")  # a dev server wants revalidation every time


class BadPath(ValueError):
    """The request path is not a well-formed percent-encoded UTF-8 path."""

    status = 400


@dataclass(slots=True)
class StaticResponse:
    """What to send: ``body`` bytes, or ``length`` bytes of ``file`` from ``offset``.

    ``headers`` include Content-Length (except on 304) but no Date, Server or
    Connection.  When ``file`` is set the caller owns it and must close it.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    file: BinaryIO | None = None
    offset: int = 0
    length: int = 0
    path: str | None = None


# --------------------------------------------------------------------------- paths

# A decoded segment matching this is never served (see the module docstring):
# leading dot (., .., hidden), either slash (it was encoded, so it must not
# split), and a drive letter (on Windows os.path.join would jump drives).
_FORBIDDEN_SEGMENT = re.compile(r"^\.|[/\\]|^[A-Za-z]:")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class _Target(NamedTuple):
    path: str  # real path of the regular file to serve
    name: str  # the name the client asked for; it decides the Content-Type
    redirect: bool  # a folder named without its trailing slash


def _unquote(segment: str) -> str:
    """Percent-decode one segment as UTF-8 (RFC 3986 §2.1), strictly."""
    try:
        raw = segment.encode("latin-1")  # the request line's bytes, as the caller decoded them
    except UnicodeEncodeError:
        raise BadPath(f"non-latin-1 character in path: {segment!r}") from None
    head, *rest = raw.split(b"%")
    out = [head]
    for part in rest:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise BadPath(f"bad percent-escape in {segment!r}")
        out.append(bytes.fromhex(part[:2].decode("ascii")) + part[2:])
    data = b"".join(out)
    if b"\x00" in data:
        raise BadPath("NUL in path")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath(f"path is not UTF-8: {segment!r}") from None


def _inside(root: str, real: str) -> bool:
    """Is ``real`` the root or below it, with no hidden segment below the root?"""
    if real == root:
        return True
    prefix = root.rstrip(os.sep) + os.sep
    if not real.startswith(prefix):
        return False
    return not any(part.startswith(".") for part in real[len(prefix):].split(os.sep))


def _regular_file(root: str, path: str) -> str | None:
    """The real path of ``path`` if it is a regular file inside ``root``."""
    real = os.path.realpath(path)
    if not _inside(root, real):
        return None
    try:
        return real if stat.S_ISREG(os.stat(real).st_mode) else None
    except OSError:
        return None


def _locate(root: str, raw_path: str) -> _Target | None:
    """Find what ``raw_path`` names under ``root``; raises BadPath if malformed."""
    if not raw_path.startswith("/"):
        return None
    # Split before decoding so that %2F stays inside its segment.
    segments = [_unquote(s) for s in raw_path[1:].split("/")]
    slash = segments[-1] == ""
    if slash:
        segments.pop()
    if any(s == "" or _FORBIDDEN_SEGMENT.search(s) for s in segments):
        return None
    real = os.path.realpath(os.path.join(root, *segments))
    if not _inside(root, real):
        return None
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        index = _regular_file(root, os.path.join(real, "index.html"))
        redirect = not slash and bool(segments)
        return _Target(index, "index.html", redirect) if index else None
    if slash or not stat.S_ISREG(mode):  # "/file.txt/" names a folder that is not there
        return None
    return _Target(real, segments[-1], False)


class _FolderKey(NamedTuple):
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int


def _folder_key(st: os.stat_result) -> _FolderKey:
    return _FolderKey(st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


_UNKNOWN = object()  # what _Lookups.get answers for a path it cannot vouch for


class _Lookups:
    """Where URL paths led: (root, path) → (target or None, the folder whose state proves it, its key).

    Bounded: when full it is emptied (lookups are cheap to learn again).  Plain
    dict operations only, so threads may share it.
    """

    def __init__(self, max_entries: int = 4096, racy_ns: int = 2_000_000_000) -> None:
        self.max_entries = max_entries
        self.racy_ns = racy_ns
        self._entries: dict[tuple[str, str], tuple[_Target | None, str, _FolderKey]] = {}

    def get(self, root: str, raw_path: str) -> _Target | None | object:
        """The remembered target (or None for a miss) if its folder is unchanged, else ``_UNKNOWN``."""
        entry = self._entries.get((root, raw_path))
        if entry is None:
            return _UNKNOWN
        target, folder, key = entry
        try:
            if _folder_key(os.stat(folder)) == key:
                return target
        except OSError:
            pass
        self._entries.pop((root, raw_path), None)
        return _UNKNOWN

    def learn(self, root: str, raw_path: str, target: _Target | None) -> None:
        """Remember where ``raw_path`` led, if one ``stat`` can later prove it still does."""
        witness = _deepest_folder(root, raw_path)
        if witness is None:
            return
        folder, st = witness
        try:  # a folder's page, found or not, depends on its index: that must not be a link either
            if stat.S_ISLNK(os.lstat(os.path.join(folder, "index.html")).st_mode):
                return
        except OSError:
            pass  # no index.html: creating one changes the folder
        if target is not None and os.path.dirname(target.path) != folder:
            return  # not the lexical place: some link was involved after all
        if max(st.st_mtime_ns, st.st_ctime_ns) >= time.time_ns() - self.racy_ns:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[(root, raw_path)] = (target, folder, _folder_key(st))

    def clear(self) -> None:
        self._entries.clear()


def _deepest_folder(root: str, raw_path: str) -> tuple[str, os.stat_result] | None:
    """The deepest folder along ``raw_path`` under ``root`` and its stat; None if a symlink is on the way.

    Walks down from the root with lstat, so a link anywhere (whose target may
    change without its folder changing) means "do not remember".  For a file
    that exists this is its folder: the entry that names it lives there.
    """
    try:
        segments = [_unquote(s) for s in raw_path[1:].split("/")]
        folder = root
        st = os.lstat(folder)
        for segment in segments:
            if segment == "" or _FORBIDDEN_SEGMENT.search(segment):
                break  # never served, whatever the disk holds: the folder so far is witness enough
            try:
                child = os.lstat(os.path.join(folder, segment))
            except OSError:
                break  # the segment does not exist in ``folder``: creating it would change ``folder``
            if stat.S_ISLNK(child.st_mode):
                return None
            if not stat.S_ISDIR(child.st_mode):
                break  # a file (or FIFO...) stands there: replacing or removing it changes ``folder``
            folder = os.path.join(folder, segment)
            st = child
    except (BadPath, OSError, ValueError):
        return None
    return (folder, st) if stat.S_ISDIR(st.st_mode) else None


_lookups = _Lookups()


def _locate_remembered(root: str, raw_path: str) -> _Target | None:
    """:func:`_locate`, through the remembered lookups (see the module docstring)."""
    known = _lookups.get(root, raw_path)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    target = _locate(root, raw_path)
    _lookups.learn(root, raw_path, target)
    return target


def resolve(root: str, raw_path: str) -> str | None:
    """Map a URL path to the real path of a file inside ``root``, or None.

    ``raw_path`` is still percent-encoded and has no query.  A folder maps to
    its ``index.html`` (with or without the trailing slash).  Raises
    :class:`BadPath` (status 400) for bad escapes, NUL or invalid UTF-8.
    Lookups are remembered (see the module docstring), so asking again for a
    path costs one ``stat``.
    """
    target = _locate_remembered(root, raw_path)
    return target.path if target else None


# ---------------------------------------------------------------------- media types

# Built-in table only: same answer on every machine.  A MimeTypes() reads the system's mime.types files into the
# module's global tables first (mimetypes.init(): milliseconds of every start) unless mimetypes.inited says done.
_inited, mimetypes.inited = mimetypes.inited, True
_TYPES = mimetypes.MimeTypes()
mimetypes.inited = _inited
for _ext, _type in {
    ".js": "text/javascript",  # RFC 9239 §6: application/javascript is obsolete
    ".mjs": "text/javascript",
    ".map": "application/json",
    ".md": "text/markdown",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
}.items():
    _TYPES.add_type(_type, _ext)

# Textual types outside text/* that browsers would otherwise decode by guessing.
_CHARSET_TYPES = frozenset({
    "application/javascript", "application/json", "application/manifest+json",
    "application/xml", "image/svg+xml",
})
# A compressed file is sent as itself; Content-Encoding would make browsers
# silently unpack a download.
_ENCODING_TYPES = {
    "gzip": "application/gzip", "bzip2": "application/x-bzip2",
    "xz": "application/x-xz", "compress": "application/x-compress", "br": "application/x-brotli",
}


@lru_cache(maxsize=1024)  # guess_type costs more than the rest of a cached small-file hit
def content_type(name: str) -> str:
    """The Content-Type for a file name, with charset for textual types."""
    ctype, encoding = _TYPES.guess_type(name, strict=False)
    if encoding:
        return _ENCODING_TYPES.get(encoding, "application/octet-stream")
    if ctype is None:
        return "application/octet-stream"
    if ctype.startswith("text/") or ctype in _CHARSET_TYPES:
        return f"{ctype}; charset=utf-8"
    return ctype


# -------------------------------------------------------------------- small-file cache

class _CacheKey(NamedTuple):
    mtime_ns: int
    ctime_ns: int
    size: int
    ino: int
    dev: int


def _cache_key(st: os.stat_result) -> _CacheKey:
    return _CacheKey(st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


class _SmallFileCache:
    """A thread-safe LRU of small file contents, bounded in bytes and entries."""

    def __init__(self, max_bytes: int = 32 << 20, max_entries: int = 1024,
                 racy_ns: int = 2_000_000_000) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.racy_ns = racy_ns  # at least the coarsest timestamp tick we expect (FAT: 2 s)
        self._entries: OrderedDict[str, tuple[_CacheKey, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: str, st: os.stat_result) -> bytes | None:
        with self._lock:
            entry = self._entries.get(path)
            if entry is None or entry[0] != _cache_key(st):
                return None
            self._entries.move_to_end(path)
            return entry[1]

    def put(self, path: str, st: os.stat_result, data: bytes) -> None:
        newest = max(st.st_mtime_ns, st.st_ctime_ns)
        if len(data) > self.max_bytes // 8 or newest >= time.time_ns() - self.racy_ns:
            return  # too big to be worth it, or too fresh to be told apart from the next write
        with self._lock:
            old = self._entries.pop(path, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._entries[path] = (_cache_key(st), data)
            self._bytes += len(data)
            while self._bytes > self.max_bytes or len(self._entries) > self.max_entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


_cache = _SmallFileCache()


class _Entity(NamedTuple):
    st: os.stat_result
    data: bytes | None  # the whole file, or None when ``file`` is to be sent
    file: BinaryIO | None


def _open_entity(path: str, inline_limit: int, whole: bool) -> _Entity:
    """Stat, then read ``path`` (small, or ``whole``) or leave it open (large)."""
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode) and (whole or st.st_size <= inline_limit):
        cached = _cache.get(path, st)
        if cached is not None:
            return _Entity(st, cached, None)
    # O_NONBLOCK: if a FIFO was swapped in since resolve(), opening must not hang.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    f: BinaryIO = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)  # describes exactly the file we will read
        if not stat.S_ISREG(st.st_mode):
            raise FileNotFoundError(errno.ENOENT, "not a regular file", path)
        os.set_blocking(fd, True)
        if not whole and st.st_size > inline_limit:
            return _Entity(st, None, f)
        data = f.read(st.st_size)
        f.close()
    except BaseException:
        f.close()
        raise
    if len(data) == st.st_size:  # a short read means it is being rewritten: don't keep it
        _cache.put(path, st, data)
    return _Entity(st, data, None)


# ----------------------------------------------------------------- validators (§8.8)

def _etag(st: os.stat_result) -> str:
    """A strong entity tag (RFC 9110 §8.8.3) from inode, size and mtime_ns."""
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


def _transformed_etag(etag: str, body: bytes) -> str:
    return f'{etag[:-1]}-{hashlib.blake2b(body, digest_size=6).hexdigest()}"'


_ETAG_RE = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


def _tags(value: str) -> list[tuple[bool, str]]:
    """Parse a list of entity tags (RFC 9110 §8.8.3) into (weak, opaque) pairs."""
    return [(bool(m.group(1)), m.group(2)) for m in _ETAG_RE.finditer(value)]


def _match(value: str, etag: str, *, weak: bool) -> bool:
    """Does a header list of tags (or ``*``) match ``etag`` (RFC 9110 §8.8.3.2)?"""
    if value.strip() == "*":
        return True
    _, ours = _tags(etag)[0]
    return any(tag == ours and (weak or not is_weak) for is_weak, tag in _tags(value))


@lru_cache(maxsize=1024)
def _imf_date(seconds: int) -> str:
    """IMF-fixdate (RFC 9110 §5.6.7); files keep their mtime, so this repeats."""
    return imf_fixdate(seconds)


def _http_date(value: str) -> int | None:
    """Seconds since the epoch for an HTTP-date (RFC 9110 §5.6.7), None if invalid."""
    # Here, not at the top: only conditional requests need the email package, and every start would wait for it.
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # asctime form carries no zone; HTTP dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _precondition(method: str, headers: Mapping[str, str], etag: str, mtime: int) -> int | None:
    """Evaluate RFC 9110 §13.2.2 steps 1-4; returns 412, 304 or None (go on)."""
    if (value := headers.get("if-match")) is not None:  # step 1, strong comparison
        if not _match(value, etag, weak=False):
            return 412
    elif (value := headers.get("if-unmodified-since")) is not None:  # step 2
        date = _http_date(value)
        if date is not None and mtime > date:
            return 412
    if (value := headers.get("if-none-match")) is not None:  # step 3, weak comparison
        if _match(value, etag, weak=True):
            return 304 if method in ("GET", "HEAD") else 412
    elif method in ("GET", "HEAD") and (value := headers.get("if-modified-since")) is not None:
        date = _http_date(value)  # step 4; §13.1.3: an invalid date is ignored
        if date is not None and mtime <= date:
            return 304
    return None


# ------------------------------------------------------------------- ranges (§14)

class _Unsatisfiable(Exception):
    status = 416


_RANGE_RE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


def _if_range(value: str, etag: str, mtime: int) -> bool:
    """RFC 9110 §13.1.5: a strong etag match, or a date equal to Last-Modified."""
    if value.lstrip().startswith(('"', "W/")):
        return _match(value, etag, weak=False)
    return _http_date(value) == mtime


def _byte_range(headers: Mapping[str, str], etag: str, mtime: int, size: int) -> tuple[int, int] | None:
    """The single inclusive range to send, or None for the whole file.

    Raises _Unsatisfiable (416).  Multiple, malformed or invalid ranges are
    ignored (RFC 9110 §14.2), as is any range on an empty file.
    """
    value = headers.get("range")
    if value is None or size == 0:
        return None
    if (cond := headers.get("if-range")) is not None and not _if_range(cond, etag, mtime):
        return None  # the client's copy is stale: send it all
    m = _RANGE_RE.fullmatch(value)
    if m is None or m.group(1) == m.group(2) == "":
        return None
    try:
        first = int(m.group(1)) if m.group(1) else None
        last = int(m.group(2)) if m.group(2) else None
    except ValueError:  # more digits than int() will parse
        return None
    if first is None:  # suffix range "-n" (§14.1.2)
        assert last is not None  # the pattern and the check above leave at least one number
        if last == 0:
            raise _Unsatisfiable
        return max(0, size - last), size - 1
    if last is not None and last < first:
        return None  # invalid, so ignored
    if first >= size:
        raise _Unsatisfiable
    return first, size - 1 if last is None else min(last, size - 1)


# ------------------------------------------------------------------------ responses

def _error(status: int, method: str, message: str, detail: str | None = None,
           extra: tuple[tuple[str, str], ...] = ()) -> StaticResponse:
    page = error_page(status, message, detail)
    headers = [("Content-Type", HTML), ("Content-Length", str(len(page))), NO_CACHE, *extra]
    return StaticResponse(status, headers, b"" if method == "HEAD" else page)


# errno -> status when opening or reading a resolved file fails; else 500.
_OSERROR_STATUS = {
    errno.ENOENT: 404, errno.ENOTDIR: 404, errno.ELOOP: 404,  # changed since resolve()
    errno.EACCES: 403, errno.EPERM: 403,
}
_MESSAGES = {404: "File Not found", 403: "Forbidden: the file is not readable", 500: "Could not read the file"}


def _build(target: _Target, method: str, headers: Mapping[str, str], entity: _Entity,
           html_transform: Callable[[bytes], bytes] | None) -> StaticResponse:
    """The response for a file that exists and could be opened."""
    ctype = content_type(target.name)
    st, data, _ = entity
    etag = _etag(st)
    if html_transform is not None and data is not None:
        data = html_transform(data)
        etag = _transformed_etag(etag, data)
    size = st.st_size if data is None else len(data)
    # §8.8.2.1: never claim a modification time later than now.
    mtime = min(int(st.st_mtime), int(time.time()))
    validators = [("ETag", etag), ("Last-Modified", _imf_date(mtime)), NO_CACHE]

    status = _precondition(method, headers, etag, mtime)
    if status == 304:  # §15.4.5: validators and Cache-Control, no Content-Length
        return StaticResponse(304, validators, path=target.path)
    if status == 412:
        return _error(412, method, "Precondition Failed")
    try:
        span = _byte_range(headers, etag, mtime, size) if method == "GET" else None
    except _Unsatisfiable:
        return _error(416, method, "Range Not Satisfiable", extra=(("Content-Range", f"bytes */{size}"),))

    out = [("Content-Type", ctype), ("Accept-Ranges", "bytes"), *validators]
    start, end = span if span else (0, size - 1)
    length = end - start + 1
    if span:
        out.append(("Content-Range", f"bytes {start}-{end}/{size}"))  # §14.4
    out.append(("Content-Length", str(length)))
    status = 206 if span else 200
    if method == "HEAD":
        return StaticResponse(status, out, path=target.path)
    if data is not None:
        return StaticResponse(status, out, data[start:end + 1], path=target.path)
    return StaticResponse(status, out, file=entity.file, offset=start, length=length, path=target.path)


def serve(root: str, method: str, raw_path: str, headers: Mapping[str, str], *,
          html_transform: Callable[[bytes], bytes] | None = None,
          inline_limit: int = 256 * 1024) -> StaticResponse:
    """Answer a GET or HEAD for a static file under ``root``; never raises.

    ``headers`` maps lower-cased request header names to latin-1 decoded
    values.  Files up to ``inline_limit`` bytes come back in ``body``; larger
    ones as an open ``file`` plus ``offset``/``length`` the caller sends (with
    ``os.sendfile``) and closes.  ``html_transform`` rewrites text/html files
    (e.g. to inject the live-reload script).
    """
    if method not in ("GET", "HEAD"):
        return _error(405, method, f"{method} is not allowed here", extra=(("Allow", ALLOW),))
    try:
        target = _locate_remembered(root, raw_path)
    except BadPath as exc:
        return _error(exc.status, method, "Bad Request: malformed path", str(exc))
    except OSError:  # realpath/stat trouble (name too long, say): nothing to serve
        target = None
    if target is None:
        return _error(404, method, f"File Not found: {raw_path}")
    if target.redirect:
        # The raw path has no empty segment, so this cannot become "//host".
        location = quote(raw_path.encode("latin-1"), safe="/%:@!$&'()*+,;=-._~") + "/"
        return _error(301, method, f"Moved to {location}", extra=(("Location", location),))

    transform = html_transform if content_type(target.name).startswith("text/html") else None
    try:
        entity = _open_entity(target.path, inline_limit, whole=transform is not None)
    except OSError as exc:
        status = _OSERROR_STATUS.get(exc.errno or 0, 500)
        return _error(status, method, f"{_MESSAGES[status]}: {raw_path}",
                      None if status == 404 else f"{type(exc).__name__}: {exc}")
    response: StaticResponse | None = None
    try:
        response = _build(target, method, headers, entity, transform)
    except Exception:  # noqa: BLE001 - html_transform is caller code; its failure is a page, not a crash
        response = _error(500, method, "Could not build the response", traceback.format_exc())
    finally:
        if entity.file is not None and (response is None or response.file is None):
            entity.file.close()
    return response
