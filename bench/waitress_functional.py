"""Waitress's own functional tests (tests/test_functional.py), run against devserver.

Waitress ships its tests in its source tree, not in the wheel: point this at
a checkout or an unpacked sdist of waitress (the folder holding ``tests/``).
Each fixture app is served as ``devserver tests.fixtureapps.NAME:app`` (one
worker, an empty ``--root``), and every raw request the tests write gets a
``Host: localhost`` line when it has none, since devserver answers a request
without one with 400 (RFC 9112 §3.2) where waitress serves it.  Only the TCP
classes run (devserver does not listen on Unix sockets).  Prints one line per
test and the count passed; the exit status is 0 whatever the count, since
some tests assert waitress's own choices (its Server header, its error pages).

    python bench/waitress_functional.py /path/to/waitress       # every TCP test
    python bench/waitress_functional.py /path/to/waitress -k BadContentLength
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on http://(\S+):(\d+)/")
REQUEST_HEAD = re.compile(rb"([A-Z]+ [^ \r\n]+ HTTP/1\.[01]\r\n)((?:[^\r\n]+\r\n)*\r\n)")


def with_host(data: bytes) -> bytes:
    """``data`` with a Host line added to every request head that has none."""
    def add(match: re.Match[bytes]) -> bytes:
        line, rest = match.group(1), match.group(2)
        if re.search(rb"(?im)^host:", rest):
            return match.group(0)
        return line + b"Host: localhost\r\n" + rest
    return REQUEST_HEAD.sub(add, data)


class HostSocket(socket.socket):
    """A client socket that adds the Host line waitress's raw requests leave out."""

    def send(self, data: Any, *args: Any) -> int:  # type: ignore[override]
        super().sendall(with_host(bytes(data)), *args)
        return len(data)

    def sendall(self, data: Any, *args: Any) -> None:  # type: ignore[override]
        super().sendall(with_host(bytes(data)), *args)


class Devserver:
    def __init__(self, app_module: str, cwd: Path) -> None:
        root = cwd / "empty_root"
        root.mkdir(exist_ok=True)
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{cwd}", PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "devserver", f"{app_module}:app", "--no-tui", "--port", "0", "--workers", "1",
               "--root", str(root), "--dynamic", str(root), "--no-reload"]
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.address: tuple[str, int] | None = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30) or self.address is None:
            self.stop()
            raise RuntimeError("devserver did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            match = LISTENING.search(line)
            if match and self.address is None:
                self.address = (match.group(1).strip("[]"), int(match.group(2)))
                self.ready.set()
        self.ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def patch(functional: Any, cwd: Path) -> None:
    """Start devserver where waitress's tests start their fixture server."""
    base = functional.SubprocessTests

    def start_subprocess(self: Any, target: Any, **kw: Any) -> None:
        self.devserver = Devserver(target.__module__, cwd)
        self.bound_to = self.devserver.address
        self.sock = self.create_socket()

    def stop_subprocess(self: Any) -> None:
        self.sock.close()
        self.devserver.stop()

    def create_socket(self: Any) -> socket.socket:
        return HostSocket(socket.AF_INET, socket.SOCK_STREAM)

    base.start_subprocess = start_subprocess
    base.stop_subprocess = stop_subprocess
    base.create_socket = create_socket


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("waitress", type=Path, help="a waitress source folder (holding tests/test_functional.py)")
    parser.add_argument("-k", default="", help="run only tests whose id contains this text")
    args = parser.parse_args()
    source = args.waitress / "tests"
    if not (source / "test_functional.py").is_file():
        parser.error(f"{source / 'test_functional.py'} does not exist")
    with tempfile.TemporaryDirectory(prefix="waitress-functional-") as tmp:
        cwd = Path(tmp)
        shutil.copytree(source, cwd / "tests")
        sys.path.insert(0, str(cwd))
        import tests.test_functional as functional  # type: ignore[import-not-found]

        patch(functional, cwd)
        loader = unittest.TestLoader()
        suite = unittest.TestSuite()
        for name in sorted(dir(functional)):
            cls = getattr(functional, name)
            if isinstance(cls, type) and issubclass(cls, unittest.TestCase) and name.startswith("Tcp"):
                for test in loader.loadTestsFromTestCase(cls):
                    if args.k in test.id():
                        suite.addTest(test)
        started = time.monotonic()
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
        passed = result.testsRun - len(result.failures) - len(result.errors) - len(result.skipped)
        print(f"waitress functional tests against devserver: {passed}/{result.testsRun} passed "
              f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
