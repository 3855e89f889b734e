"""Helpers for the real-framework tests: a server with bytecode writing on, edits, polling, steady load."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Self

from conftest import REPO, LiveServer, proc_stats

DEADLINE = 60.0  # seconds: a busy 2-core CI machine starts Django slowly


def user_env() -> dict[str, str]:
    """The environment of a user's shell: bytecode written (this machine turns it off), our tree first."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env



def make_django_project(root: Path, project: str, app: str, files: dict[str, str]) -> Path:
    """A project as ``startproject`` and ``startapp`` make it, with ``files`` (paths under ``root``) written,
    ``app`` installed and its URLconf included at ``/app/``."""
    env = user_env()
    subprocess.run([sys.executable, "-m", "django", "startproject", project, str(root)], check=True, env=env)
    subprocess.run([sys.executable, "manage.py", "startapp", app], cwd=root, check=True, env=env)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.lstrip("\n"))
    edit(root / f"{project}/settings.py", "INSTALLED_APPS = [", f"INSTALLED_APPS = [\n    '{app}',")
    edit(root / f"{project}/urls.py", "from django.urls import path", "from django.urls import include, path")
    edit(root / f"{project}/urls.py", "urlpatterns = [", f"urlpatterns = [\n    path('{app}/', include('{app}.urls')),")
    return root

def start(project: Path, *args: str) -> LiveServer:
    return LiveServer(["--workers", "2", *args], project, user_env()).start(timeout=DEADLINE)


def get(server: LiveServer, path: str, timeout: float = DEADLINE) -> tuple[int, dict[str, str], str]:
    """One request on a new connection (so every worker gets its turn at accepting)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    except (OSError, http.client.HTTPException) as exc:
        raise AssertionError(f"GET {path} failed: {exc!r}; log:\n" + "\n".join(server.lines[-40:])) from exc
    finally:
        conn.close()


def edit(path: Path, old: str, new: str, server: LiveServer | None = None) -> None:
    """Replace ``old`` by ``new`` in ``path``; with ``server``, return once it has applied the save.

    "Applied" is the watcher's reload line (after the purge, or once restarted
    workers are ready): before it, a worker that had not loaded the app yet
    may already answer with the new code while another still has the old.
    """
    mark = len(server.lines) if server is not None else 0
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))
    if server is not None:
        server.wait_for(r"^(reloaded|reload failed) ", timeout=DEADLINE, start=mark)


def wait_for_body(server: LiveServer, path: str, text: str, timeout: float = DEADLINE) -> float:
    """Poll ``path`` until its body contains ``text``; returns the seconds it took."""
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout:
        status, _, body = get(server, path)
        if text in body:
            return time.monotonic() - started
        last = f"{status} {body[:300]}"
    raise AssertionError(f"{path} never contained {text!r}; last answer: {last}\nlog:\n" + "\n".join(server.lines[-30:]))


def assert_all_fresh(server: LiveServer, path: str, text: str, count: int = 8) -> None:
    """The next ``count`` requests (spread over the workers) all run the new code."""
    bodies = [get(server, path)[2] for _ in range(count)]
    stale = [body[:200] for body in bodies if text not in body]
    assert not stale, f"stale answers after the reload: {stale}\nlog:\n" + "\n".join(server.lines[-40:])


class SteadyLoad:
    """One client thread requesting ``path`` on new connections until stopped; counts what it got."""

    def __init__(self, server: LiveServer, path: str) -> None:
        self.server = server
        self.path = path
        self.outcomes: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _, _ = get(self.server, self.path, timeout=30)
                self.outcomes[str(status)] += 1
            except AssertionError as exc:
                cause = exc.__cause__
                kind = "refused" if isinstance(cause, ConnectionRefusedError) else f"failed: {type(cause).__name__}"
                self.outcomes[kind] += 1

    def assert_clean(self) -> None:
        bad = {k: v for k, v in self.outcomes.items() if k != "200"}
        assert self.outcomes["200"] > 0 and not bad, f"under load: {dict(self.outcomes)}"


class LiveReloadStream:
    """A browser's live-reload event stream: ``wait_app_changed()`` returns once the server says the app's pages
    are to reload (an "app" event)."""

    def __init__(self, server: LiveServer) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        self.sock.sendall(b"GET /__devserver__/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                          b"Accept: text/event-stream\r\n\r\n" % server.port)
        self.buffer = b""
        self._read_until(b"devserver live reload")  # the stream is open: later changes reach it

    def _read_until(self, marker: bytes) -> None:
        deadline = time.monotonic() + DEADLINE
        while marker not in self.buffer:
            assert time.monotonic() < deadline, f"no {marker!r} in {self.buffer[-500:]!r}"
            chunk = self.sock.recv(65536)
            assert chunk, f"stream closed before {marker!r}: {self.buffer[-500:]!r}"
            self.buffer += chunk

    def wait_app_changed(self) -> None:
        self._read_until(b"event: app")

    def close(self) -> None:
        self.sock.close()


class KeepAliveLoad(SteadyLoad):
    """One client thread reusing one ``http.client`` connection, as ``requests`` and browsers do.

    The connection is reused while the server allows it (a response with
    ``Connection: close`` makes http.client open the next one itself); a
    failure is counted and the next request goes on a new connection.  Each
    answer is kept as (connection number, reused, body), so a test can tell
    that one connection was answered by the old code and then by the new.
    """

    def __init__(self, server: LiveServer, path: str, pause: float = 0.0) -> None:
        super().__init__(server, path)
        self.pause = pause  # seconds between requests (0: back to back)
        self.answers: list[tuple[int, bool, str]] = []

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        number = 0
        while not self._stop.is_set():
            reused = conn.sock is not None
            if not reused:
                number += 1
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read().decode("utf-8", "replace")
                self.outcomes[str(response.status)] += 1
                self.answers.append((number, reused, body))
            except (OSError, http.client.HTTPException) as exc:
                self.outcomes[f"failed: {type(exc).__name__}{' (reused)' if reused else ''}"] += 1
                conn.close()
            self._stop.wait(self.pause)
        conn.close()

    def assert_clean(self) -> None:
        bad = {k: v for k, v in self.outcomes.items() if k != "200"}
        assert self.outcomes["200"] > 0 and not bad, f"keep-alive client: {dict(self.outcomes)}"

    def crossed(self, old: str, new: str) -> int:
        """How many times one connection answered ``old`` and then, reused, ``new``: it outlived a restart."""
        count = 0
        for (number, _, before), (then, reused, after) in zip(self.answers, self.answers[1:]):
            if number == then and reused and old in before and new in after:
                count += 1
        return count


def live_in_group(pgid: int) -> list[str]:
    """The processes of group ``pgid`` still running (zombies, already ended, are left out), as "pid name"."""
    return [f"{pid} {name}" for pid, name, fields in proc_stats() if int(fields[2]) == pgid and fields[0] != "Z"]
