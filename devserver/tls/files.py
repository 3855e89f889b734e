"""Writing key and certificate files: private ones created readable by the user alone, each replaced whole."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def private_folder(folder: Path) -> Path:
    """``folder``, made (with its parents) with mode 0700 if missing."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock: two devservers starting at once make one CA, not a key of one and a cert of the other.

    ``flock`` where there is one (not on Windows, where the files are made unlocked).
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(private_folder(folder) / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a new file created with ``mode`` (never chmod after), then rename.

    A reader (another devserver starting) sees the old file or the new one,
    never half of one; the umask can only take permissions away.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a run that died here
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
