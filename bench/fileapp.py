"""A small WSGI static-file app, so WSGI peers serve the same files as devserver.

Run it with any WSGI server as ``fileapp:application`` (``bench/`` on
``PYTHONPATH``); ``BENCH_FILE_ROOT`` names the folder to serve.  Per request
it resolves the path inside the root, stats, opens and reads the file, and
sets Content-Type and Content-Length; it hands the open file to
``wsgi.file_wrapper`` when the server offers one (gunicorn then uses sendfile).
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

ROOT = os.path.realpath(os.environ.get("BENCH_FILE_ROOT", "html_page"))
BLOCK = 64 * 1024
NOT_FOUND = b"File Not found\n"

StartResponse = Callable[..., Any]


class FileIterator:
    """Reads an open file in blocks; ``close()`` closes it (PEP 3333 iterable)."""

    def __init__(self, file: IO[bytes], block: int = BLOCK) -> None:
        self.file = file
        self.block = block

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.file.read(self.block):
            yield chunk

    def close(self) -> None:
        self.file.close()


def _not_found(start_response: StartResponse) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(NOT_FOUND)))])
    return [NOT_FOUND]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Serve the file under ROOT named by PATH_INFO, or 404."""
    relative = environ.get("PATH_INFO", "/").lstrip("/")
    path = os.path.realpath(os.path.join(ROOT, relative))
    if not path.startswith(ROOT + os.sep):
        return _not_found(start_response)
    try:
        file = open(path, "rb")
    except OSError:
        return _not_found(start_response)
    size = os.fstat(file.fileno()).st_size
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(size))])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(file, BLOCK)  # type: ignore[no-any-return]
    return FileIterator(file)
