"""Has a file changed since it was stamped?  A few microseconds per file.

Workers ask it of a module's file (changed since it was imported?), and the
polling watcher of every file it walks.

Size and mtime say so, except just after a write: file clocks are coarse
(a few milliseconds on Linux), so a second same-size save within the same
tick keeps both.  While a stamp is that young ("racy", as git calls it) the
content's hash is kept and compared too; once the file is older than any
clock tick, the stamp drops the hash and stat alone decides.
"""

from __future__ import annotations

import hashlib
import os
import time

from devserver.kit.frozen import record

RACY_NS = 50_000_000  # longer than any file clock's tick


@record
class Stamp:
    size: int
    mtime_ns: int
    digest: bytes | None  # kept while the file is younger than RACY_NS


def _digest(file: str) -> bytes | None:
    try:
        with open(file, "rb") as f:
            return hashlib.blake2b(f.read(), digest_size=16).digest()
    except OSError:
        return None


def take(file: str) -> Stamp | None:
    """The file's stamp now (None if it is gone)."""
    try:
        st = os.stat(file)
    except OSError:
        return None
    return of(file, st)


def of(file: str, st: os.stat_result) -> Stamp:
    """The stamp of ``file`` whose stat is ``st`` (a walk's ``DirEntry.stat()`` saves the second stat)."""
    racy = time.time_ns() - st.st_mtime_ns < RACY_NS
    return Stamp(st.st_size, st.st_mtime_ns, _digest(file) if racy else None)


def check(file: str, stamp: Stamp) -> Stamp | None:
    """``stamp`` (or a calmer one) if the file is unchanged; None if it changed or vanished."""
    try:
        st = os.stat(file)
    except OSError:
        return None
    return check_stat(file, st, stamp)


def check_stat(file: str, st: os.stat_result, stamp: Stamp) -> Stamp | None:
    """:func:`check` with the file's stat already taken."""
    if st.st_size != stamp.size or st.st_mtime_ns != stamp.mtime_ns:
        return None
    if stamp.digest is None:
        return stamp
    if _digest(file) != stamp.digest:
        return None
    if time.time_ns() - st.st_mtime_ns >= RACY_NS:
        return Stamp(stamp.size, stamp.mtime_ns, None)
    return stamp
