"""The cost of each step of devserver's request cycle, called alone in this process (no sockets, no threads).

Each step is timed with ``timeit`` on a typical wrk request (GET, four short
headers), ``--repeat`` times; the best run is kept, which is what the code
costs when nothing else competes for the core, so the figures hold on a
busy machine too.  What the steps leave out (the socket syscalls, the event
loop, waking the pool thread) is what bench/profile_request.py measures
under load.

    python bench/micro.py [--repeat 7] [--number 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's devserver, unless on PYTHONPATH

import pickle

from devserver.debug import requestlogs
from devserver.handlers import static
from devserver.handlers.routes import script_route
from devserver.handlers.wsgi import ErrorStream, WSGIServer, build_environ
from devserver.http.framing import BodyWriter, framing_of
from devserver.http.hostcheck import HostPolicy
from devserver.http.parser import RequestParser, response_head
from devserver.ipc.events import RequestEvent
from devserver.kit import filestamp
from devserver.worker.connection import Exchange

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8899\r\nUser-Agent: wrk\r\nAccept: */*\r\nX-Bench: 1\r\n\r\n"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "14")]


def steps(root: str) -> dict[str, Callable[[], object]]:
    parser = RequestParser()
    request = parser.feed(REQUEST)[0].request  # type: ignore[union-attr]
    exchange = Exchange(request)
    conn = SimpleNamespace(worker=SimpleNamespace(server_address=("127.0.0.1", 8899)), client="127.0.0.1:50000")
    static.resolve(root, "/")  # a miss; remembered if the folder is old enough
    server = WSGIServer(None, ("127.0.0.1", 8899), True, lambda line: None, None)  # type: ignore[arg-type]
    errors = ErrorStream(server.log_line)
    hosts = HostPolicy.for_bind("127.0.0.1", ())
    module = str(Path(root, "one_k.txt"))
    stamp = filestamp.take(module)
    assert stamp is not None

    def respond() -> bytes:
        writer = BodyWriter(framing_of(200, HEADERS, method="GET", version="1.1", close=False, body_length=14))
        return writer.framing.head + writer.data(b"Hello, world!\n") + writer.end()

    def event() -> RequestEvent:
        return RequestEvent(time=0.0, worker_pid=1, client=conn.client, method=request.method, target=request.target,
                            http_version=request.version, status=200, bytes_sent=170, duration_ms=0.1,
                            request_headers=tuple(request.headers), response_headers=tuple(HEADERS))

    return {
        "parse: RequestParser.feed (httptools + Request)": lambda: parser.feed(REQUEST),
        "parse: Exchange()": lambda: Exchange(request),
        "routing: script_route('/')": lambda: script_route("/"),
        "routing: static.resolve('/') (files win, miss)": lambda: static.resolve(root, "/"),
        "routing: static._locate('/') (the walk, uncached)": lambda: static._locate(root, "/"),
        "static: serve('/one_k.txt') (1 KiB, in the small-file cache)":
            lambda: static.serve(root, "GET", "/one_k.txt", {}),
        "routing: Host check": lambda: hosts.allows("127.0.0.1:8899"),
        "freshness: filestamp.check (one module)": lambda: filestamp.check(module, stamp),
        "environ: build_environ": lambda: build_environ(conn, exchange, "", "/", errors, server),  # type: ignore[arg-type]
        "app call: requestlogs.call_with (context)": lambda: requestlogs.call_with(requestlogs.LineCollector(), len, ()),
        "response: response_head": lambda: response_head(200, HEADERS),
        "response: frame + BodyWriter (head and body)": respond,
        "event: RequestEvent()": event,
        "event: pickle RequestEvent (worker) + unpickle (supervisor)": lambda: pickle.loads(pickle.dumps(event())),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.realpath(tmp)
        Path(root, "one_k.txt").write_bytes(b"x" * 1024)
        os.utime(Path(root, "one_k.txt"), ns=(0, 0))
        os.utime(root, ns=(0, 0))  # mtime long ago; ctime is now, so misses are remembered after 2 s at most
        print(f"| step | µs per call (best of {opts.repeat} × {opts.number:,}) |")
        print("| --- | ---: |")
        for name, step in steps(root).items():
            best = min(timeit.repeat(step, number=opts.number, repeat=opts.repeat)) / opts.number
            print(f"| {name} | {best * 1e6:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
