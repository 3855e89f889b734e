"""Where a running server's channel socket lives, and how a client finds it.

One private folder per user: ``$XDG_RUNTIME_DIR/devserver`` (else
``/tmp/devserver-<uid>``), mode 0700 and owned by the user, refused otherwise:
only the user can reach a socket in it.  One socket per running server, named
by its port and its folder (``8000-<hash of the folder>.sock``), so a client
finds the server of the folder it runs in (or of a parent folder), or the one
on ``--port``.  A socket no server answers on any more is removed when found.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import stat
import tempfile
from pathlib import Path

SUFFIX = ".sock"


class NoServer(LookupError):
    """No running server matches; the text says what was looked for."""


def private_folder(create: bool = True) -> Path:
    """The user's socket folder, made 0700 when missing; OSError when it is not private."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime, "devserver") if runtime else Path(tempfile.gettempdir(), f"devserver-{os.getuid()}")
    if create:
        try:
            folder.mkdir(mode=0o700, parents=False)
        except FileExistsError:
            pass
        except FileNotFoundError:  # XDG_RUNTIME_DIR named a folder that is gone
            folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise OSError(errno.EPERM, "not a private folder of this user (0700, owned by it)", str(folder))
    return folder


def folder_key(folder: str) -> str:
    return hashlib.sha256(os.path.realpath(folder).encode()).hexdigest()[:16]


def socket_path(port: int, folder: str) -> Path:
    return private_folder() / f"{port}-{folder_key(folder)}{SUFFIX}"


def answers(path: Path) -> bool:
    """Whether a server listens on the socket ``path``; a dead one's socket is removed."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return False
    except OSError:
        return False
    finally:
        probe.close()


def clean_stale() -> None:
    """Remove the sockets of servers that are gone (killed before they could remove their own)."""
    for path in private_folder().glob(f"*{SUFFIX}"):
        answers(path)


def find_socket(folder: str, port: int | None = None) -> Path:
    """The socket of the running server for ``folder`` (or a parent of it), or on ``port``."""
    try:
        sockets = sorted(private_folder(create=False).glob(f"*{SUFFIX}"))
    except FileNotFoundError:
        sockets = []
    if port is not None:
        for path in sockets:
            if path.name.startswith(f"{port}-") and answers(path):
                return path
        raise NoServer(f"no devserver is running on port {port} (for this user)")
    here = Path(os.path.realpath(folder))
    for candidate in (here, *here.parents):
        key = folder_key(str(candidate))
        for path in sockets:
            if path.name.endswith(f"-{key}{SUFFIX}") and answers(path):
                return path
    raise NoServer(f"no devserver is running for {here} or a folder above it (start one there, or give --port)")
