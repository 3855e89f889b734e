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
the slash form (so relative links resolve); without ``index.html`` it is
listed (:mod:`devserver.handlers.listing`: what a request could fetch, no hidden
name, no link that leads out), unless an APP is given: then only files win
(:func:`resolve` maps such a folder to nothing) and the APP answers.

Other decisions
---------------
* Any method but GET/HEAD is 405 with ``Allow: GET, HEAD``.  HEAD gets GET's
  headers, no body, and Range is ignored for it (RFC 9110 §14.2: GET only).
* Several ranges, a malformed Range, or any Range on an empty file: ignored,
  the whole file is sent (RFC 9110 §14.2 allows ignoring Range).
* ``html_transform`` output *is* the representation: its ETag gets a hash
  suffix, Content-Length is its length and Range slices it, so a 206 never
  mixes two representations under one validator.  Such HTML is read whole.
* Where a URL path led is remembered, a file or nothing, so neither a file
  nor an APP's route (the "files win" test) costs a walk of the filesystem
  per request.  A remembered answer is checked with a ``stat`` of every
  folder from the root down to the deepest one along the path (for a file,
  its folder): creating, removing or renaming anything in a folder changes
  its mtime/ctime, so a file that appears or goes is seen at once, and so is
  a folder moved out of the root and linked back (only its parent changes).
  Paths with a symlink on the way are never remembered (a link's target can
  change without its folder changing), nor those whose folders changed
  within ``racy_ns`` (a second change in the same timestamp tick would not
  show).  A root that does not exist (an APP run in a folder with no
  ``html_page/``) holds nothing: one ``stat`` of it answers every path.
* Small files' whole responses are kept (bytes after ``html_transform``,
  validators, headers) per (root, URL path, transform) when the path was
  remembered as above and the file's timestamps are older than ``racy_ns``
  (two writes within one timestamp tick look identical: git's "racy clean").
  Every use checks an ``lstat`` of the file (mtime_ns, ctime_ns, size,
  inode, device), which any save changes, also a same-size save within the
  same second, and a ``stat`` of each folder above the file's own (the
  file's inode says its own entry is unchanged).  A GET or HEAD with no
  condition and no Range gets a ready-made response; the rest are decided
  per request from the kept validators and bytes.
* Large files (sent by sendfile) are kept the same way, checked the same
  way, without their bytes: each response opens the file, and an ``fstat``
  of what it opened must show the kept state (a save between the check and
  the open is not sent under the old headers).  No descriptor is held
  between requests: a shared one would share its file position, which
  asyncio's read-and-write sendfile (over TLS) moves.
* Error pages carry ``Cache-Control: no-cache``: a 404 is heuristically
  cacheable (RFC 9110 §15.1), which is wrong for a dev server.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from functools import lru_cache
from typing import BinaryIO, NamedTuple
from urllib.parse import quote

from devserver.handlers.pages import error_page
from devserver.http.dates import imf_fixdate
from devserver.kit import interpreter
from devserver.kit.frozen import record

__all__ = ["CONDITIONAL_HEADERS", "BadPath", "StaticResponse", "content_type", "request_headers", "resolve", "serve"]

HTML = "text/html; charset=utf-8"
ALLOW = "GET, HEAD"
NO_CACHE = ("Cache-Control", "no-cache")  # a dev server wants revalidation every time


class BadPath(ValueError):
    """The request path is not a well-formed percent-encoded UTF-8 path."""

    status = 400


@dataclass(slots=True)  # not frozen: a frozen dataclass costs four times as much to build
class StaticResponse:
    """What to send: ``body`` bytes, or ``length`` bytes of ``file`` from ``offset``.

    ``headers`` include Content-Length (except on 304) but no Date, Server or
    Connection.  When ``file`` is set the caller owns it and must close it.
    The plain 200 of a cached file is the same object for every request:
    never change it, nor its ``headers``.
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


class _Place(NamedTuple):
    real: str  # the real path ``raw_path`` leads to, inside the root
    segments: list[str]  # the decoded segments
    slash: bool  # the path ends with "/"


def _place(root: str, raw_path: str) -> _Place | None:
    """Where ``raw_path`` leads under ``root`` (existing or not), None if never served; raises BadPath if malformed."""
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
    return _Place(real, segments, slash) if _inside(root, real) else None


def _locate(root: str, raw_path: str) -> _Target | None:
    """Find what ``raw_path`` names under ``root``; raises BadPath if malformed."""
    place = _place(root, raw_path)
    if place is None:
        return None
    real, segments, slash = place
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


# Changes closer together than this may share a timestamp: at least the coarsest tick we expect (FAT: 2 s).
RACY_NS = 2_000_000_000
# A folder's state as one tuple (mtime_ns, ctime_ns, ino, dev): creating, removing or renaming an entry changes it.
_FolderKey = tuple[int, int, int, int]
# Folders from the root down to where a path's answer lies, each with its state when the answer was learned.
_Witnesses = tuple[tuple[str, _FolderKey], ...]


def _folder_key(st: os.stat_result) -> _FolderKey:
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _unchanged(witnesses: _Witnesses) -> bool:
    """Is every folder still as it was?  One ``stat`` each, stopping at the first change."""
    try:
        for folder, key in witnesses:
            st = os.stat(folder)
            if _folder_key(st) != key:
                return False
    except OSError:
        return False
    return True


class _Lookups:
    """Where URL paths led: (root, path) → (target or None, the folders whose state proves it).

    Bounded: when full it is emptied (lookups are cheap to learn again).  Plain
    dict operations only, so threads may share it.
    """

    def __init__(self, max_entries: int = 4096, racy_ns: int = RACY_NS) -> None:
        self.max_entries = max_entries
        self.racy_ns = racy_ns
        self._entries: dict[tuple[str, str], tuple[_Target | None, _Witnesses]] = {}

    def get(self, root: str, raw_path: str) -> tuple[_Target | None, _Witnesses] | None:
        """What ``raw_path`` led to (a target, or None for a miss) and its witnesses, if they are unchanged."""
        entry = self._entries.get((root, raw_path))
        if entry is None:
            return None
        if _unchanged(entry[1]):
            return entry
        self._entries.pop((root, raw_path), None)
        return None

    def learn(self, root: str, raw_path: str, target: _Target | None) -> _Witnesses | None:
        """Remember where ``raw_path`` led, if ``stat``s of its folders can later prove it still does.

        Returns the witnesses (None when the answer cannot be vouched for).
        """
        witnesses = _witnesses(root, raw_path)
        if witnesses is None:
            return None
        folder = witnesses[-1][0]
        try:  # a folder's page, found or not, depends on its index: that must not be a link either
            if stat.S_ISLNK(os.lstat(os.path.join(folder, "index.html")).st_mode):
                return None
        except OSError:
            pass  # no index.html: creating one changes the folder
        if target is not None and os.path.dirname(target.path) != folder:
            return None  # not the lexical place: some link was involved after all
        recent = time.time_ns() - self.racy_ns
        if any(key[0] >= recent or key[1] >= recent for _, key in witnesses):
            return None
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[(root, raw_path)] = (target, witnesses)
        return witnesses

    def clear(self) -> None:
        self._entries.clear()


def _witnesses(root: str, raw_path: str) -> _Witnesses | None:
    """Every folder from ``root`` down to the deepest one along ``raw_path``, with its state; None if a link is on the way.

    Walks down from the root with lstat, so a link anywhere (whose target may
    change without its folder changing) means "do not remember".  For a file
    that exists the last folder is its own: the entry that names it lives there.
    Every folder on the way is a witness, not only the last: moving a folder
    out of the root and linking it back changes only its parent.
    """
    try:
        segments = [_unquote(s) for s in raw_path[1:].split("/")]
        folder = root
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            return None
        chain = [(folder, _folder_key(st))]
        for segment in segments:
            if segment == "" or _FORBIDDEN_SEGMENT.search(segment):
                break  # never served, whatever the disk holds: the folders so far are witness enough
            try:
                child = os.lstat(os.path.join(folder, segment))
            except OSError:
                break  # the segment does not exist in ``folder``: creating it would change ``folder``
            if stat.S_ISLNK(child.st_mode):
                return None
            if not stat.S_ISDIR(child.st_mode):
                break  # a file (or FIFO...) stands there: replacing or removing it changes ``folder``
            folder = os.path.join(folder, segment)
            chain.append((folder, _folder_key(child)))
    except (BadPath, OSError, ValueError):
        return None
    return tuple(chain)


_lookups = _Lookups()


def _locate_remembered(root: str, raw_path: str) -> tuple[_Target | None, _Witnesses | None]:
    """:func:`_locate`, through the remembered lookups (see the module docstring).

    Also returns the folders that vouch for the answer (None when nothing
    does), for the response cache to keep beside a response.
    """
    known = _lookups.get(root, raw_path)
    if known is not None:
        return known
    if _missing(root):
        if raw_path.startswith("/"):
            for segment in raw_path[1:].split("/"):
                _unquote(segment)  # a malformed path is refused (BadPath) as under a root that exists
        return None, None
    target = _locate(root, raw_path)
    return target, _lookups.learn(root, raw_path, target)


def _missing(root: str) -> bool:
    """True if there is no ``root`` to reach (an APP run in a project folder with no html_page/).

    Then nothing is served from it, whatever the path: one ``access`` call
    (no exception made when it fails) answers, where walking to the answer
    cost 50-110 us a request (a realpath of a path that is not there, then the
    witnesses' lstats) and no folder could be remembered as vouching for it.
    Asked on every request, so the request after the root is made sees it.
    """
    return not os.access(root, os.F_OK)


def resolve(root: str, raw_path: str) -> str | None:
    """Map a URL path to the real path of a file inside ``root``, or None.

    ``raw_path`` is still percent-encoded and has no query.  A folder maps to
    its ``index.html`` (with or without the trailing slash).  Raises
    :class:`BadPath` (status 400) for bad escapes, NUL or invalid UTF-8.
    Lookups are remembered (see the module docstring), so asking again for a
    path costs a ``stat`` per folder from the root down to its deepest one.
    """
    target, _ = _locate_remembered(root, raw_path)
    return target.path if target else None


# ---------------------------------------------------------------------- media types

_TYPES = interpreter.builtin_mime_types()  # the same answer on every machine
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


# ------------------------------------------------------------------------- reading

class _Entity(NamedTuple):
    st: os.stat_result  # of the file read (fstat of the descriptor)
    data: bytes | None  # the whole file, or None when ``file`` is to be sent
    file: BinaryIO | None
    complete: bool  # ``data`` has the size the stat announced (a short read: being rewritten); always, for a file left open


# O_NONBLOCK: if a FIFO was swapped in since resolve(), opening must not hang.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _open_entity(path: str, inline_limit: int, whole: bool) -> _Entity:
    """Read ``path`` (small, or ``whole``) or leave it open (large)."""
    fd = os.open(path, _OPEN_FLAGS)
    f: BinaryIO = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)  # describes exactly the file we will read
        if not stat.S_ISREG(st.st_mode):
            raise FileNotFoundError(errno.ENOENT, "not a regular file", path)
        os.set_blocking(fd, True)
        if not whole and st.st_size > inline_limit:
            return _Entity(st, None, f, True)
        data = f.read(st.st_size)
        f.close()
    except BaseException:
        f.close()
        raise
    return _Entity(st, data, None, len(data) == st.st_size)


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
    if value == etag or value.strip() == "*":  # the first: a browser revalidating what we sent
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


@record
class _Representation:
    """A file as it is sent (HTML after ``html_transform``), its validators and its headers."""

    path: str  # the real path of the file
    etag: str
    mtime: int  # Last-Modified, seconds since the epoch
    size: int
    data: bytes | None  # the whole representation, or None when ``file`` is sent
    file: BinaryIO | None
    validators: tuple[tuple[str, str], ...]  # ETag, Last-Modified, Cache-Control: what a 304 carries
    fields: tuple[tuple[str, str], ...]  # Content-Type, Accept-Ranges and the validators
    whole: tuple[tuple[str, str], ...]  # ``fields`` and the Content-Length of the whole representation


def _representation(target: _Target, entity: _Entity,
                    html_transform: Callable[[bytes], bytes] | None) -> _Representation:
    st, data, file, _ = entity
    etag = _etag(st)
    if html_transform is not None and data is not None:
        data = html_transform(data)
        etag = _transformed_etag(etag, data)
    size = st.st_size if data is None else len(data)
    # §8.8.2.1: never claim a modification time later than now.
    mtime = min(int(st.st_mtime), int(time.time()))
    validators = (("ETag", etag), ("Last-Modified", _imf_date(mtime)), NO_CACHE)
    fields = (("Content-Type", content_type(target.name)), ("Accept-Ranges", "bytes"), *validators)
    return _Representation(target.path, etag, mtime, size, data, file, validators, fields,
                           (*fields, ("Content-Length", str(size))))


def _respond(rep: _Representation, method: str, headers: Mapping[str, str],
             not_modified: StaticResponse | None = None) -> StaticResponse:
    """The response to a GET or HEAD of ``rep``: conditions (§13) and range (§14) applied.

    ``not_modified``: the 304 to answer, ready made.
    """
    status = _precondition(method, headers, rep.etag, rep.mtime) if headers else None
    if status == 304:  # §15.4.5: validators and Cache-Control, no Content-Length
        return not_modified or StaticResponse(304, list(rep.validators), path=rep.path)
    if status == 412:
        return _error(412, method, "Precondition Failed")
    size = rep.size
    try:
        span = _byte_range(headers, rep.etag, rep.mtime, size) if method == "GET" and headers else None
    except _Unsatisfiable:
        return _error(416, method, "Range Not Satisfiable", extra=(("Content-Range", f"bytes */{size}"),))
    if span is None:
        start, length, out = 0, size, list(rep.whole)
        status = 200
    else:
        start, end = span
        length = end - start + 1
        out = [*rep.fields, ("Content-Range", f"bytes {start}-{end}/{size}"), ("Content-Length", str(length))]  # §14.4
        status = 206
    if method == "HEAD":
        return StaticResponse(status, out, path=rep.path)
    if rep.data is not None:
        return StaticResponse(status, out, rep.data if span is None else rep.data[start:start + length], path=rep.path)
    return StaticResponse(status, out, file=rep.file, offset=start, length=length, path=rep.path)


def _to_folder(method: str, raw_path: str) -> StaticResponse:
    """The 301 from a folder named without its trailing slash to the slash form (so relative links resolve)."""
    # The raw path has no empty segment, so this cannot become "//host".
    location = quote(raw_path.encode("latin-1"), safe="/%:@!$&'()*+,;=-._~") + "/"
    return _error(301, method, f"Moved to {location}", extra=(("Location", location),))


def _servable(root: str, name: str, real: str) -> bool:
    """Would a request for ``name`` in a listed folder be served (``real``: where it leads)?"""
    if _FORBIDDEN_SEGMENT.search(name) or not _inside(root, real):
        return False
    try:
        name.encode("utf-8")  # a name that is not UTF-8 (surrogate-escaped) has no URL the server takes
    except UnicodeEncodeError:
        return False
    return True


def _folder_listing(root: str, method: str, raw_path: str,
                    html_transform: Callable[[bytes], bytes] | None) -> StaticResponse | None:
    """The page of a folder without ``index.html`` (see :mod:`devserver.handlers.listing`), None if not a folder.

    Built on every request, never kept: it is a page for people, not a hot path.
    """
    try:
        place = _place(root, raw_path)
        if place is None or not os.path.isdir(place.real):
            return None
        if os.path.lexists(os.path.join(place.real, "index.html")):
            return None  # a page that is not served (a link out of the root): a 404, not the folder laid bare
    except (BadPath, OSError, ValueError):
        return None
    if not place.slash and place.segments:
        return _to_folder(method, raw_path)
    from devserver.handlers import listing  # a page for people: its module is loaded by the first one, not at start

    listed = listing.entries(place.real, lambda name, real: _servable(root, name, real))
    page = listing.folder_page("/" + "".join(s + "/" for s in place.segments), listed, at_root=not place.segments)
    try:
        page = html_transform(page) if html_transform is not None else page
    except Exception:  # noqa: BLE001 - caller code, as in serve()
        return _error(500, method, "Could not build the response", traceback.format_exc())
    headers = [("Content-Type", HTML), ("Content-Length", str(len(page))), NO_CACHE]
    return StaticResponse(200, headers, b"" if method == "HEAD" else page)


# ------------------------------------------------------------------ response cache

# The state of a file that changes when it is written, replaced or touched: (mtime_ns, ctime_ns, size, ino, dev).
_FileKey = tuple[int, int, int, int, int]


def _file_key(st: os.stat_result) -> _FileKey:
    """What any save, rename or link swap of a file changes (a same-size save in the same second too)."""
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


@record
class _Ready:
    """A representation kept in memory, with what proves it is still what the path names."""

    witnesses: _Witnesses  # the folders above the file's: the path still leads to its folder
    key: _FileKey  # the file itself: its entry and its bytes are still these
    rep: _Representation
    get: StaticResponse  # the answer to a GET without conditions or range, ready made (a large file's: no file)
    head: StaticResponse  # and to such a HEAD
    not_modified: StaticResponse  # the 304 to a browser revalidating its copy


class _Responses:
    """Files' representations by (root, URL path, html_transform), each checked on use.

    A small file's bytes are kept; a large one's (sent by sendfile) are
    not: :meth:`file_of` opens it for each response that sends them.

    A hit costs a ``stat`` of every folder from the root down to the file and
    an ``lstat`` of the file: any save, rename, removal or link swap changes
    one of them, so an edited file is served at once.  Only files whose
    timestamps are older than ``racy_ns`` are kept: two writes within one
    timestamp tick look identical (git's "racy clean").  ``html_transform``
    is part of the key and is taken to be a pure function of its input.

    Bounded in bytes and entries; when full the oldest entries go.  A hit
    takes no lock: plain dict reads are safe across threads.
    """

    def __init__(self, max_bytes: int = 4 << 20, max_file: int = 256 * 1024, max_entries: int = 1024,
                 racy_ns: int = RACY_NS) -> None:
        self.max_bytes = max_bytes
        self.max_file = max_file
        self.max_entries = max_entries
        self.racy_ns = racy_ns
        self._entries: dict[tuple[str, str, object], _Ready] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, root: str, raw_path: str, transform: object) -> _Ready | None:
        ready = self._entries.get((root, raw_path, transform))
        if ready is None:
            return None
        if not ready.witnesses or _unchanged(ready.witnesses):
            try:
                st = os.lstat(ready.rep.path)
            except OSError:
                pass
            else:
                if _file_key(st) == ready.key:
                    return ready
        self._drop((root, raw_path, transform))
        return None

    def put(self, root: str, raw_path: str, transform: object, witnesses: _Witnesses,
            st: os.stat_result, rep: _Representation) -> None:
        """Keep ``rep``, of the file ``st`` describes, which ``raw_path`` names with no link on the way."""
        data = rep.data
        if data is not None and len(data) > self.max_file:
            return
        if max(st.st_mtime_ns, st.st_ctime_ns) >= time.time_ns() - self.racy_ns:
            return  # too fresh to be told apart from the next write
        key = (root, raw_path, transform)
        # The file's own folder needs no witness: no link led here (see _witnesses), so the file's identity
        # (inode, device, ctime) says the entry that names it is unchanged.
        ready = _Ready(witnesses[:-1], _file_key(st), replace(rep, file=None),  # the request's own file is its caller's
                       StaticResponse(200, list(rep.whole), data or b"", length=rep.size if data is None else 0, path=rep.path),
                       StaticResponse(200, list(rep.whole), path=rep.path),
                       StaticResponse(304, list(rep.validators), path=rep.path))
        with self._lock:
            self._forget(key)
            self._entries[key] = ready
            self._bytes += len(data or b"")
            while self._bytes > self.max_bytes or len(self._entries) > self.max_entries:
                self._forget(next(iter(self._entries)))  # the oldest

    @staticmethod
    def file_of(ready: _Ready) -> BinaryIO | None:
        """``ready``'s large file opened for one response (the caller closes it); None if it is not that file now."""
        try:
            fd = os.open(ready.rep.path, _OPEN_FLAGS)
        except OSError:
            return None
        try:
            same = _file_key(os.fstat(fd)) == ready.key  # saved since get()'s check: not under the kept headers
        except OSError:
            same = False
        if not same:
            os.close(fd)
            return None
        # The kept regular file (its inode says so): O_NONBLOCK changes nothing for it, no need to clear it.
        return open(fd, "rb", buffering=0)  # unbuffered: sendfile reads the descriptor, not a buffer

    def _drop(self, key: tuple[str, str, object]) -> None:
        with self._lock:
            self._forget(key)

    def _forget(self, key: tuple[str, str, object]) -> None:
        """Remove ``key``'s entry and its bytes from the count (the caller holds the lock)."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.rep.data or b"")

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


_responses = _Responses()

# Request headers serve() reads: the conditions of §13 and Range (§14).
CONDITIONAL_HEADERS = frozenset({"if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
                                 "range", "if-range"})
_CONDITIONAL_INITIALS = frozenset("iIrR")


def request_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers :func:`serve` reads, by lower-cased name, from a request's (name, value) pairs.

    Most requests carry none of them, and serve() answers those without
    evaluating any condition; the rest of the request's headers need no dict.
    """
    found = {}
    for name, value in pairs:
        if name[:1] in _CONDITIONAL_INITIALS:  # cheaper than lower-casing every name
            lname = name.lower()
            if lname in CONDITIONAL_HEADERS:
                found[lname] = value  # a repeated field: the last one counts, as in a dict of all headers
    return found


def serve(root: str, method: str, raw_path: str, headers: Mapping[str, str], *,
          html_transform: Callable[[bytes], bytes] | None = None,
          inline_limit: int = 256 * 1024) -> StaticResponse:
    """Answer a GET or HEAD for a static file under ``root``; never raises.

    ``headers`` maps lower-cased request header names to latin-1 decoded
    values (only those in ``CONDITIONAL_HEADERS`` are read: see
    :func:`request_headers`).  Files up to ``inline_limit`` bytes come back in
    ``body``; larger ones as an open ``file`` plus ``offset``/``length`` the
    caller sends (with ``os.sendfile``) and closes.  ``html_transform``
    rewrites text/html files (e.g. to inject the live-reload script); it must
    be a pure function of its input, as its output is kept for the next request.
    """
    if method != "GET" and method != "HEAD":
        return _error(405, method, f"{method} is not allowed here", extra=(("Allow", ALLOW),))
    ready = _responses.get(root, raw_path, html_transform)
    if ready is not None:
        if not headers:  # the usual request: no condition, no range
            kept = ready.get if method == "GET" else ready.head
        else:
            kept = _respond(ready.rep, method, headers, ready.not_modified)
        if not kept.length:  # bytes or no body: the answer as it is
            return kept
        file = _responses.file_of(ready)
        if file is not None:
            return StaticResponse(kept.status, kept.headers, file=file, offset=kept.offset, length=kept.length,
                                  path=kept.path)
    try:
        target, witnesses = _locate_remembered(root, raw_path)
    except BadPath as exc:
        return _error(exc.status, method, "Bad Request: malformed path", str(exc))
    except OSError:  # realpath/stat trouble (name too long, say): nothing to serve
        target, witnesses = None, None
    if target is None:
        return _folder_listing(root, method, raw_path, html_transform) or \
            _error(404, method, f"File Not found: {raw_path}")
    if target.redirect:
        return _to_folder(method, raw_path)

    transform = html_transform if content_type(target.name).startswith("text/html") else None
    try:
        entity = _open_entity(target.path, inline_limit, whole=transform is not None)
    except OSError as exc:
        status = _OSERROR_STATUS.get(exc.errno or 0, 500)
        return _error(status, method, f"{_MESSAGES[status]}: {raw_path}",
                      None if status == 404 else f"{type(exc).__name__}: {exc}")
    response: StaticResponse | None = None
    try:
        rep = _representation(target, entity, transform)
        if witnesses is not None and entity.complete:
            _responses.put(root, raw_path, html_transform, witnesses, entity.st, rep)
        response = _respond(rep, method, headers)
    except Exception:  # noqa: BLE001 - html_transform is caller code; its failure is a page, not a crash
        response = _error(500, method, "Could not build the response", traceback.format_exc())
    finally:
        if entity.file is not None and (response is None or response.file is None):
            entity.file.close()
    return response
